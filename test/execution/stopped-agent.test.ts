// A running agent that is stopped (SIGSTOP: a suspended laptop, a hung process) loses its task after its lease, the task is
// replaced, and the old agent, once it resumes, gives up its work instead of finishing it beside the replacement.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { isProcessAlive } from '../../scripts/lib/process/signals.ts';
import { readResultFile } from '../../scripts/lib/execution/result-file.ts';
import { readState, updateState } from '../../scripts/lib/state/state-store.ts';
import { openSession, reapDeadTasks } from '../../scripts/lib/scheduling/transitions.ts';
import { replaceDeadTasks } from '../../scripts/lib/execution/worker-replacement.ts';
import { start, tempProject } from '../support/project.ts';
import { stopOutsideLock } from '../support/stop-process.ts';
import { waitForState } from '../support/wait-state.ts';

const LEASE_MS = 3000;
/** The stopped agent's own delay: far longer than the test waits for it once resumed. */
const LONG_DELAY_MS = 180_000;

describe('a running agent stopped past its lease', () => {
  it('is judged dead by its lease (not signalled), replaced as its next attempt, and once resumed ends without touching the replacement', async () => {
    const project = await tempProject('dto-stopped-');
    await updateState(project.paths, (tx) => {
      openSession(tx, { sessionId: 'stopped', maxWorkers: 2 }).lease_ms = LEASE_MS;
    });
    const old = start(
      'spawn-agent-mock',
      [
        '--task_name',
        'sleeper',
        '--goal',
        'sleep',
        '--session_id',
        'stopped',
        '--quiet',
        '--delay_ms',
        String(LONG_DELAY_MS),
        '--retries',
        '1',
      ],
      project.dir,
    );
    const running = await waitForState(project, (s) => s.tasks.sleeper?.status === 'running' && s.tasks.sleeper.pid !== null);
    const oldPid = running.tasks.sleeper!.pid!;
    await stopOutsideLock(oldPid, project.paths.lockPath);
    try {
      // Its heartbeat stops; after the lease, whoever looks (poll-session, another agent) reaps it.
      const deadline = Date.now() + 20 * LEASE_MS;
      let reaped: string[] = [];
      while (reaped.length === 0 && Date.now() < deadline) {
        await delay(250);
        reaped = await updateState(project.paths, (tx) => (tx.state ? reapDeadTasks(tx, tx.state) : []));
      }
      expect(reaped).toEqual(['sleeper']);
      const failed = (await readState(project.paths))!.tasks.sleeper!;
      expect(failed).toMatchObject({ status: 'failed', agent_died: true, attempts: 1 });
      expect(failed.error).toMatch(/^agent heartbeat stale for \d+ s \(lease 3 s\): its process \(pid \d+\) is stopped$/);
      // Judged by its lease, not signalled: the stopped process is still there.
      expect(isProcessAlive(oldPid)).toBe(true);
      await updateState(project.paths, (tx) => {
        // The replacement runs the recorded command, made quick here.
        const launch = tx.state!.tasks.sleeper!.launch!;
        launch.args = launch.args.map((arg) => (arg === String(LONG_DELAY_MS) ? '200' : arg));
      });
      expect((await replaceDeadTasks(project.paths)).map((r) => r.task)).toEqual(['sleeper']);
      const done = await waitForState(project, (s) => s.tasks.sleeper?.status === 'completed', 60_000);
      expect(done.tasks.sleeper).toMatchObject({ attempts: 2, agent_died: false });
      expect(done.tasks.sleeper!.pid).not.toBe(oldPid);
    } finally {
      process.kill(oldPid, 'SIGCONT');
    }
    // Resumed, the old agent finds the task is no longer its own: it stops its work (its delay had minutes left)
    // instead of running on beside the replacement, and writes nothing.
    const ended = await Promise.race([old.then((r) => r.exitCode), delay(30_000).then(() => 'still running' as const)]);
    if (ended === 'still running') process.kill(oldPid, 'SIGKILL');
    expect(ended).not.toBe('still running');
    const state = (await readState(project.paths))!;
    expect(state.tasks.sleeper).toMatchObject({ status: 'completed', attempts: 2 });
    const result = await readResultFile(path.join(project.dir, '.agent/results/sleeper.md'));
    expect(result?.data).toMatchObject({ status: 'completed', attempt: 2 });
    expect(await readFile(path.join(project.dir, '.agent/results/sleeper.md'), 'utf8')).toContain('attempt 2');
    const types = (await readEvents(project.paths.eventsPath)).filter((e) => e.task === 'sleeper').map((e) => e.type);
    expect(types).toEqual(['registered', 'started', 'failed', 'replaced', 'registered', 'started', 'completed']);
  }, 180_000);
});
