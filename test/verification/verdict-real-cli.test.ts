// Receipts and verdicts with the pinned real claude CLI against the loopback Messages API stub, the stub playing the sub-agents.
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REAL_CLAUDE, claudeProject, tempDir, useMarkerStub } from '../support/claude-fixtures.ts';
import { stubEnv } from '../support/messages-api-stub.ts';
import { run } from '../support/project.ts';
import { readEvents } from '../../scripts/lib/state/events.ts';
import type { ReceiptDocument } from '../../scripts/lib/verification/receipt-file.ts';

const { stub } = useMarkerStub();

async function setup() {
  const project = await claudeProject('dto-verdict-');
  const home = await tempDir('dto-verdict-home-');
  const env = { ...stubEnv(stub(), home), CLAUDE_BIN: REAL_CLAUDE };
  return { ...project, env };
}

describe('receipts and verdicts of real claude sub-agents', () => {
  it('a sub-agent that answers "Done, all tests pass" with no tool call: unverified in the state, the final summary and aggregate (exit 1)', async () => {
    const p = await setup();
    await writeFile(
      path.join(p.dir, 'plan.yaml'),
      'tasks:\n  - { id: lazy, goal: "Fix the failing test in src/math.ts. [[stub:lazy:x]]" }\n',
    );
    const orchestrated = await run('orchestrate', ['plan.yaml', '--agent', 'claude', '--backoff_ms', '0'], p.dir, p.env);
    expect(orchestrated.exitCode, orchestrated.all).toBe(0);
    expect(orchestrated.stdout).toMatch(/1 of 1 completed \(1 unverified\)/);
    const task = (await p.state())!.tasks.lazy!;
    expect(task.status).toBe('completed');
    expect(task.verdict).toEqual({
      value: 'unverified',
      evidence: ['the answer claims the tests pass, but no test command ran', 'no tool call at all', 'the answer only restates the goal'],
    });
    expect(task.receipts).toMatchObject({ tool_calls: { read: 0, search: 0, edit: 0, bash: 0, web: 0, other: 0 }, commands: 0 });
    const completed = (await readEvents(p.paths.eventsPath)).find((e) => e.type === 'completed')!;
    expect(completed).toMatchObject({ verdict: 'unverified', evidence: task.verdict!.evidence });

    const aggregate = await run('aggregate', [], p.dir);
    expect(aggregate.exitCode, aggregate.all).toBe(1);
    expect(aggregate.stdout).toContain(
      'Unverified: 1 task (lazy: the answer claims the tests pass, but no test command ran; no tool call at all; the answer only restates the goal)',
    );
    expect(aggregate.stdout).toContain('Unverified (success claimed without evidence: do not present as done): lazy (');
    const report = await readFile(path.join(p.dir, '.agent/final_output.md'), 'utf8');
    expect(report).toContain('Verdict: **unverified**');
  });

  it('a sub-agent that writes its declared file and runs npm test: verified, with 1 write and 1 command (exit 0) in its receipts', async () => {
    const p = await setup();
    await mkdir(path.join(p.dir, 'src'));
    await writeFile(path.join(p.dir, 'package.json'), JSON.stringify({ name: 'x', scripts: { test: 'node -e "console.log(1)"' } }));
    const spawned = await run(
      'spawn-agent',
      [
        '--task_name',
        'add',
        '--goal',
        'Add src/add.ts and run the tests. [[stub:diligent:add]]',
        '--files',
        'src/add.ts',
        '--permission_mode',
        'acceptEdits',
        '--allowed_tools',
        'Bash(npm test)',
        '--backoff_ms',
        '0',
      ],
      p.dir,
      p.env,
    );
    expect(spawned.exitCode, spawned.all).toBe(0);
    expect(await readFile(path.join(p.dir, 'src/add.ts'), 'utf8')).toBe('export const ok = 1;\n');
    const task = (await p.state())!.tasks.add!;
    expect(task.verdict?.value, JSON.stringify(task.verdict)).toBe('verified');
    expect(task.verdict!.evidence).toEqual(['ran `npm test` (exit 0)', 'changed src/add.ts', '1 edit (1 file, +1 -0), 1 command']);
    expect(task.receipts).toEqual({
      tool_calls: { read: 0, search: 0, edit: 1, bash: 1, web: 0, other: 0 },
      files_written: 1,
      commands: 1,
      commands_failed: 0,
      denials: 0,
      lines_added: 1,
      lines_removed: 0,
      lines_from: 'edits',
      simulated: false,
    });
    const receipt = JSON.parse(await readFile(path.join(p.dir, '.agent/results/add.receipt.json'), 'utf8')) as ReceiptDocument;
    expect(receipt.attempts).toEqual([
      {
        attempt: 1,
        tool_calls: { read: 0, search: 0, edit: 1, bash: 1, web: 0, other: 0 },
        files: [{ path: 'src/add.ts', tool: 'Write', ok: true, lines_added: 1, lines_removed: 0 }],
        commands: [{ command: 'npm test', exit: 0, denied: false, interrupted: false }],
        denials: [],
        simulated: false,
      },
    ]);
    expect(receipt.declared_files).toEqual([{ path: 'src/add.ts', change: 'changed' }]);
    const result = await readFile(path.join(p.dir, '.agent/results/add.md'), 'utf8');
    expect(result).toMatch(/^verdict: verified$/m);
    expect(result).toMatch(/^receipts: '1 edit \(1 file, \+1 -0\), 1 command'$/m);

    // poll-session --json and aggregate --json carry the same receipts and verdict; aggregate exits 0.
    const polled = await run('poll-session', ['--json', '--once'], p.dir);
    const summary = JSON.parse(polled.stdout.trim().split('\n').at(-1)!) as { tasks: Array<{ receipts: unknown; verdict: unknown }> };
    expect(summary.tasks[0]).toMatchObject({ receipts: task.receipts, verdict: task.verdict });
    const aggregate = await run('aggregate', ['--json'], p.dir);
    expect(aggregate.exitCode, aggregate.all).toBe(0);
    expect((JSON.parse(aggregate.stdout) as { tasks: Array<{ verdict: unknown }> }).tasks[0]!.verdict).toEqual(task.verdict);
  });
});
