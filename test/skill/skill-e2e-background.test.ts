// SKILL.md's background-mode block (spawn-agent --detach commands joined with &&), run as written with a fake claude:
// it returns at once with every task registered, the agents outlive the call's process group, and the documented
// background wait ends in exit 0 with the report written. Then the same block in the real CLI, default permission
// mode, only the skill allowed: no approval asked.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { runClaudeAsClient } from '../support/claude-fixtures.ts';
import { skillFollowingModel } from '../support/background-model.ts';
import { startMessagesApiStub, type MessagesApiStub } from '../support/messages-api-stub.ts';
import { fillSkillDir, installSkillCopy, ROOT, skillBlock } from '../support/skill-blocks.ts';

const FAKE_CLAUDE = path.join(ROOT, 'test', 'support', 'fake-claude', 'claude');

describe("SKILL.md's background mode, run verbatim", () => {
  it("returns at once with every task registered; the agents outlive the call's process group; the background wait ends in exit 0", async () => {
    const start = fillSkillDir(await skillBlock('spawn-agent --session_id', '--detach', '&&'), ROOT);
    // SKILL.md: "In background mode add --expect N (the number of tasks you started)".
    const waitBlock = `${fillSkillDir(await skillBlock('poll-session --until_done'), ROOT).trimEnd()} --expect 5`;
    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-e2e-bg-'));
    try {
      await execa('git', ['init', '-q'], { cwd: project });
      const env = { CLAUDE_BIN: FAKE_CLAUDE, FAKE_CLAUDE_DELAY_MS: '1500' };
      // The Bash tool's call: its own process group, as Claude Code runs it.
      const running = execa('bash', ['-c', start], { cwd: project, env, detached: true, reject: false, stdin: 'ignore' });
      const call = await running;
      expect(call.exitCode, call.stderr).toBe(0);
      const state = YAML.parse(await readFile(path.join(project, '.agent/sessions/latest.yaml'), 'utf8')) as {
        tasks: Record<string, { status: string }>;
      };
      expect(Object.keys(state.tasks)).toEqual(['scan', 'quality', 'security', 'performance', 'report']);
      // Whatever is left in the call's process group dies, as when Claude Code ends a call; the agents run in sessions of their own.
      try {
        process.kill(-running.pid!, 'SIGKILL');
      } catch {
        // Nothing left in the group.
      }
      const waited = await execa('bash', ['-c', waitBlock], { cwd: project, env, reject: false });
      expect(waited.exitCode, `${waited.stdout}\n${waited.stderr}`).toBe(0);
      expect(Buffer.byteLength(waited.stdout)).toBeLessThanOrEqual(2048);
      // The fake agents answer without a tool call: their success is claimed without evidence, and the digest says so.
      expect(waited.stdout).toMatch(/^\[until_done\] All 5 tasks ended: 5 completed \(5 unverified\); /);
      const report = await readFile(path.join(project, '.agent/final_output.md'), 'utf8');
      expect(report).toMatch(/Completed: \*\*5 of 5\*\*/);
      expect(report).not.toMatch(/REHEARSAL/);
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("SKILL.md's background mode in the real claude CLI (default permission mode, only the skill allowed, fake claude agents)", () => {
  let home: string | undefined;
  let stub: MessagesApiStub | undefined;
  afterAll(async () => {
    await stub?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('starts the && block unrefused, waits in the background with --expect, and reads the report at the wake-up', async () => {
    ({ home } = await installSkillCopy('dto-e2e-bg-home-'));
    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-e2e-bg-project-'));
    try {
      await execa('git', ['init', '-q'], { cwd: project });
      const marker = '[[e2e:background-mode]]';
      const model = skillFollowingModel({
        marker,
        skill: 'distributed-task-orchestrator',
        plan: '',
        backgroundMode: { expect: 5 },
        project,
      });
      stub = await startMessagesApiStub(model.reply);
      const { result, lines } = await runClaudeAsClient({
        cwd: project,
        input: `Review src/ with several agents. ${marker}`,
        stub,
        home,
        maxTurns: 40,
        allowedTools: 'Skill(distributed-task-orchestrator)',
        permissionMode: 'default',
        bashLimitMs: 120_000,
        env: { CLAUDE_BIN: FAKE_CLAUDE, FAKE_CLAUDE_DELAY_MS: '5000' },
      });
      const final = lines.at(-1) as { result?: string; permission_denials?: unknown[] } | undefined;
      const trace = `steps: ${JSON.stringify(model.steps.map((s) => s.kind))}\nstderr: ${result.stderr.slice(-600)}`;
      expect(final, trace).toMatchObject({ type: 'result', is_error: false, result: 'Done: the run ended and the report is read.' });
      expect(final!.permission_denials, trace).toEqual([]);
      expect(model.steps.map((s) => s.kind)).toEqual(['skill', 'start', 'wait', 'end_turn', 'read', 'answer']);
      const started = model.results.get(model.steps[1]!.id)!;
      expect(started.isError, started.text).toBe(false);
      expect(started.text).toMatch(/scan runs in the background/);
      expect(model.wakeUps.map((w) => w.exitCode)).toEqual([0]);
      const read = model.results.get(model.steps.find((s) => s.kind === 'read')!.id)!;
      expect(read.text).toContain('Completed: **5 of 5**');
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  }, 180_000);
});
