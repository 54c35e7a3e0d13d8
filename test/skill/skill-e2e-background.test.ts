// SKILL.md's background-mode block, run as written (only S filled in) with a fake claude: the Bash call that
// started the agents is killed with SIGKILL, and the documented wait and verify blocks still see every task complete.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { runClaudeAsClient } from '../support/claude-fixtures.ts';
import { startMessagesApiStub, type MessagesApiStub } from '../support/messages-api-stub.ts';
import { blockFollowingModel } from '../support/scripted-model.ts';
import { BASE_PLACEHOLDER, ROOT, skillBlock } from '../support/skill-blocks.ts';

const FAKE_CLAUDE = path.join(ROOT, 'test', 'support', 'fake-claude', 'claude');

describe("SKILL.md's background mode, run verbatim", () => {
  it("survives SIGKILL of the starting call's process group; slices of the documented wait end in exit 0; the report is clean", async () => {
    const start = (await skillBlock('spawn-agent --session_id', '&', 'wait')).replaceAll(BASE_PLACEHOLDER, ROOT);
    // SKILL.md: "In background mode add --expect N (the number of tasks you started)"; a 3 s slice keeps the test short.
    const waitBlock = (await skillBlock('poll-session --timeout 90'))
      .replaceAll(BASE_PLACEHOLDER, ROOT)
      .replace('--timeout 90', '--expect 5 --timeout 3');
    const verify = (await skillBlock('scripts/run" aggregate')).replaceAll(BASE_PLACEHOLDER, ROOT);
    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-e2e-bg-'));
    try {
      await execa('git', ['init', '-q'], { cwd: project });
      const env = { CLAUDE_BIN: FAKE_CLAUDE, FAKE_CLAUDE_DELAY_MS: '1500' };
      // The Bash tool's call: its own process group, as Claude Code runs it.
      const call = execa('bash', ['-c', start], { cwd: project, env, detached: true, reject: false, stdin: 'ignore' });
      call.catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 1500));
      process.kill(-call.pid!, 'SIGKILL');
      const killed = await call;
      expect(killed.signal).toBe('SIGKILL');

      const exits: number[] = [];
      const printed: string[] = [];
      for (let slice = 0; slice < 15; slice++) {
        const result = await execa('bash', ['-c', waitBlock], { cwd: project, reject: false });
        exits.push(result.exitCode!);
        printed.push(`--- slice ${slice}: exit ${result.exitCode}\n${result.stdout}\n${result.stderr}`);
        expect(Buffer.byteLength(result.stdout)).toBeLessThanOrEqual(3 * 1024);
        if (result.exitCode !== 3) break;
      }
      // What the slices printed is the diagnosis when this fails (a failure on a loaded CI machine once said only "1").
      expect(exits.at(-1), printed.join('\n')).toBe(0);
      expect(
        exits.slice(0, -1).every((code) => code === 3),
        printed.join('\n'),
      ).toBe(true);

      const report = await execa('bash', ['-c', verify], { cwd: project, reject: false });
      expect(report.exitCode, report.stderr).toBe(0);
      expect(report.stdout).toContain('Completed: 5 of 5 tasks');
      expect(report.stdout).toContain('Permission denials: none.');
      expect(report.stdout).toContain('Empty results: none.');
      expect(report.stdout).not.toMatch(/REHEARSAL/);
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("SKILL.md's background mode in the real claude CLI (scripted model, Bash limit 20 s, fake claude agents)", () => {
  let home: string | undefined;
  let stub: MessagesApiStub | undefined;
  afterAll(async () => {
    await stub?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('starts the block with run_in_background: true, waits in --expect slices, and verifies a clean report', async () => {
    home = await mkdtemp(path.join(os.tmpdir(), 'dto-e2e-bg-home-'));
    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-e2e-bg-project-'));
    await execa('git', ['init', '-q'], { cwd: project });
    const marker = '[[e2e:background-mode]]';
    const fill = (block: string) => block.replaceAll(BASE_PLACEHOLDER, ROOT);
    const start = fill(await skillBlock('spawn-agent --session_id', '&', 'wait'));
    const waitBlock = fill(await skillBlock('poll-session --timeout 90')).replace('--timeout 90', '--expect 5 --timeout 15');
    const verify = fill(await skillBlock('scripts/run" aggregate'));
    // The start block goes to the Bash tool with run_in_background: true, as SKILL.md says; then waits and verify.
    const model = blockFollowingModel(marker, (_body, calls) => {
      if (calls.length === 0) {
        calls.push({ kind: 'start', id: 'toolu_bg_start', command: start });
        return {
          type: 'tool_use',
          id: 'toolu_bg_start',
          name: 'Bash',
          input: { command: start, description: 'start the agents', run_in_background: true },
        };
      }
      return { start: '', wait: waitBlock, verify };
    });
    stub = await startMessagesApiStub(model.reply);
    const { result, lines } = await runClaudeAsClient({
      cwd: project,
      input: `Review src/ with several agents. ${marker}`,
      stub,
      home,
      maxTurns: 60,
      allowedTools: 'Bash',
      bashLimitMs: 20_000,
      env: { CLAUDE_BIN: FAKE_CLAUDE, FAKE_CLAUDE_DELAY_MS: '10000' },
    });
    const final = lines.at(-1);
    expect(final, `stderr: ${result.stderr}`).toMatchObject({ type: 'result', is_error: false, result: 'Done: the rehearsal finished.' });
    const waits = model.calls.filter((c) => c.kind === 'wait').map((c) => model.results.get(c.id)!);
    for (const w of waits) expect(w.text).toMatch(/^\[poll\] .*\(exit [03]\)\.?$/m);
    expect(waits.length).toBeGreaterThanOrEqual(2);
    expect(waits.slice(0, -1).every((w) => /Exit code 3\b/.test(w.text))).toBe(true);
    expect(waits.at(-1)!.text).toMatch(/^\[poll\] All 5 tasks ended: 5 completed; .*\(exit 0\)\.$/m);
    const verified = model.results.get(model.calls.at(-1)!.id)!;
    expect(verified.text).toContain('Completed: 5 of 5 tasks');
    expect(verified.text).toContain('Permission denials: none.');
    await rm(project, { recursive: true, force: true });
  }, 180_000);
});
