// Receipts read from the real CLI's stream-json output (fixtures captured from Claude Code 2.1.330 against the loopback stub).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReceiptCollector } from '../../scripts/lib/agents/claude-receipts.ts';
import { StreamTracker } from '../../scripts/lib/agents/claude-stream.ts';
import { describeReceipt, lineCount, summarize, toolKind } from '../../scripts/lib/verification/receipts.ts';

const streams = JSON.parse(readFileSync(path.join(import.meta.dirname, '../fixtures/claude-2.1.330-tool-streams.json'), 'utf8')) as Record<
  string,
  string
>;

function collect(name: string) {
  const collector = new ReceiptCollector(1, '/PROJECT');
  const tracker = new StreamTracker(undefined, collector);
  for (const line of streams[name]!.split('\n')) tracker.push(line);
  return collector.receipt();
}

describe('receipts from the stream of Claude Code 2.1.330', () => {
  it('counts tool calls by kind, files written with exact lines, and each command with its exit code', () => {
    const receipt = collect('bash_allowed');
    expect(receipt.tool_calls).toEqual({ read: 1, search: 0, edit: 2, bash: 3, web: 0, other: 0 });
    expect(receipt.files).toEqual([
      { path: 'out/a.txt', tool: 'Write', ok: true, lines_added: 3, lines_removed: 0 },
      { path: 'out/a.txt', tool: 'Edit', ok: true, lines_added: 2, lines_removed: 1 },
    ]);
    expect(receipt.commands.slice(0, 2)).toEqual([
      { command: 'echo hi', exit: 0, denied: false, interrupted: false },
      { command: 'echo bad; exit 3', exit: 3, denied: false, interrupted: false },
    ]);
    expect(receipt.commands[2]).toEqual({ command: 'rm -rf /tmp/nothing-here-x', exit: 0, denied: false, interrupted: false });
    expect(receipt.denials).toEqual([]);
    const summary = summarize([receipt]);
    expect(summary).toMatchObject({ files_written: 1, commands: 3, commands_failed: 1, denials: 0, lines_added: 5, lines_removed: 1 });
    expect(describeReceipt(summary)).toBe('1 read, 2 edits (1 file, +5 -1), 3 commands (1 failed)');
  });

  it('records a denied command once, from system/permission_denied and the result line alike', () => {
    const receipt = collect('bash_echo_only');
    expect(receipt.commands.map((c) => [c.command, c.exit, c.denied])).toEqual([
      ['echo hi', 0, false],
      ['echo bad; exit 3', null, true],
      ['rm -rf /tmp/nothing-here-x', null, true],
    ]);
    expect(receipt.denials).toEqual([
      { tool: 'Bash', target: 'echo bad; exit 3' },
      { tool: 'Bash', target: 'rm -rf /tmp/nothing-here-x' },
    ]);
    expect(describeReceipt(summarize([receipt]))).toBe('1 read, 2 edits (1 file, +5 -1), 3 commands, 2 denials');
  });

  it('a run cut before a tool result keeps the call with an unknown outcome; parallel calls match their results by id', () => {
    const collector = new ReceiptCollector(2, '/p');
    const assistant = {
      type: 'assistant',
      message: {
        id: 'm1',
        content: [
          { type: 'tool_use', id: 'a', name: 'Write', input: { file_path: '/p/src/x.ts', content: 'x\n' } },
          { type: 'tool_use', id: 'b', name: 'Bash', input: { command: 'npm test' } },
          { type: 'tool_use', id: 'c', name: 'Grep', input: { pattern: 'x' } },
        ],
      },
    };
    collector.take(assistant);
    collector.take(assistant); // printed again: counted once
    collector.take({
      type: 'user',
      message: {
        content: [{ type: 'tool_result', tool_use_id: 'b', is_error: true, content: [{ type: 'text', text: 'Exit code 1\nFAIL' }] }],
      },
    });
    const receipt = collector.receipt();
    expect(receipt.attempt).toBe(2);
    expect(receipt.tool_calls).toMatchObject({ edit: 1, bash: 1, search: 1 });
    expect(receipt.files).toEqual([{ path: 'src/x.ts', tool: 'Write', ok: null, lines_added: 1, lines_removed: 0 }]);
    expect(receipt.commands).toEqual([{ command: 'npm test', exit: 1, denied: false, interrupted: false }]);
    // An edit without a confirmed result is not counted as written.
    expect(summarize([receipt]).files_written).toBe(0);
  });

  it('names tool kinds as Claude Code counts them, and counts lines as an editor does', () => {
    expect(['Read', 'Grep', 'Glob', 'MultiEdit', 'NotebookEdit', 'PowerShell', 'WebFetch', 'Task', 'mcp__x__y'].map(toolKind)).toEqual([
      'read',
      'search',
      'search',
      'edit',
      'edit',
      'bash',
      'web',
      'other',
      'other',
    ]);
    expect([lineCount(''), lineCount('a'), lineCount('a\n'), lineCount('a\nb')]).toEqual([0, 1, 1, 2]);
    expect(describeReceipt(summarize([]))).toBe('no tool calls');
  });
});
