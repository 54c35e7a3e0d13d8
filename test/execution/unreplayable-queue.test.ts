// A task that has to queue is started later from its recorded flags, and a recorded launch never names an
// executable, lifts permissions or passes arbitrary claude options: such a start is refused up front (exit 2, nothing
// written) instead of exiting 0 "queued" and failing later.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAKE_CLAUDE_DIR, fakeProject } from '../support/claude-fixtures.ts';
import { run, start } from '../support/project.ts';
import { waitForState } from '../support/wait-state.ts';

describe('spawn-agent flags a queued task could not be started with', () => {
  for (const [what, flags] of [
    ['--claude_bin', ['--claude_bin', path.join(FAKE_CLAUDE_DIR, 'claude')]],
    ['--permission_mode bypassPermissions', ['--permission_mode', 'bypassPermissions']],
    ['claude options after --', ['--', '--settings', '{}']],
  ] as const) {
    it(`${what}: refused before anything is written when the task would queue; accepted when it starts at once`, async () => {
      const p = await fakeProject('success', { FAKE_CLAUDE_DELAY_MS: '4000' });
      const spawn = (name: string, extra: readonly string[]) =>
        start('spawn-agent', ['--task_name', name, '--goal', `do ${name}`, '--session_id', 'unreplayable', ...extra], p.dir, p.env);
      const blocker = spawn('blocker', ['--max_workers', '1']);
      await waitForState(p, (s) => s.tasks.blocker?.status === 'running');
      const before = await p.events();
      const queued = await run('spawn-agent', ['--task_name', 'later', '--goal', 'do later', ...flags], p.dir, p.env);
      expect(queued.exitCode, queued.all).toBe(2);
      expect(queued.stderr).toMatch(/later would have to wait for a slot .* started later from its recorded flags/);
      expect((await p.state())!.tasks.later).toBeUndefined();
      expect(await p.events()).toEqual(before);
      expect((await blocker).exitCode).toBe(0);
      // With a free slot it runs in this very process, its flags never recorded for a replay.
      const now = await run('spawn-agent', ['--task_name', 'now', '--goal', 'do now', ...flags], p.dir, {
        ...p.env,
        FAKE_CLAUDE_DELAY_MS: '0',
      });
      expect(now.exitCode, now.all).toBe(0);
      expect((await p.state())!.tasks.now!.status).toBe('completed');
    }, 60_000);
  }
});
