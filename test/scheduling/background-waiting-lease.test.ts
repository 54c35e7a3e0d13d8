// Leases in the queue: a queued task has no owner and no lease to lose; a launch claimed for it that no agent takes over loses the slot after one lease.
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { updateState } from '../../scripts/lib/state/state-store.ts';
import { openSession, registerTask, setStatus } from '../../scripts/lib/scheduling/transitions.ts';
import { run, start, tempProject } from '../support/project.ts';
import { stopOutsideLock } from '../support/stop-process.ts';
import { waitForState } from '../support/wait-state.ts';

const waitFor = waitForState;

describe('leases in the queue', () => {
  it('a launch claimed but never started (its claimer died first) does not keep its slot: after about one lease it is queued again and runs', async () => {
    const project = await tempProject('dto-lease-');
    const LEASE_MS = 4000;
    // A queued task claimed for a launch by a process that died before starting it (cancel-session stopped it, say).
    // The claim holds a long lease until `next` has queued behind it (a loaded machine takes seconds to start a
    // script), then one of 4 s.
    await updateState(project.paths, (tx) => {
      const state = openSession(tx, { sessionId: 'lease', maxWorkers: 1 });
      state.lease_ms = 600_000;
      registerTask(tx, state, {
        name: 'lost',
        goal: 'g',
        runner: 'mock',
        pid: null,
        launch: { script: 'spawn-agent-mock', args: ['--task_name', 'lost', '--goal', 'g', '--delay_ms', '10'], cwd: project.dir },
      });
      setStatus(tx, state, 'lost', 'running', { adoption_token: 'never-presented' });
    });
    const queued = await start(
      'spawn-agent-mock',
      ['--task_name', 'next', '--goal', 'goal next', '--session_id', 'lease', '--delay_ms', '10'],
      project.dir,
    );
    expect(queued.exitCode, queued.all).toBe(0);
    expect(queued.stdout).toContain('next is queued');
    const claimedAt = await updateState(project.paths, (tx) => {
      tx.state!.lease_ms = LEASE_MS;
      tx.state!.tasks.lost!.heartbeat_at = tx.now.toISOString();
      return tx.now.getTime();
    });
    const poll = await run('poll-session', ['--timeout', String((10 * LEASE_MS) / 1000)], project.dir);
    expect(poll.exitCode, poll.all).toBe(0);
    const state = await waitFor(project, (s) => s.tasks.next?.status === 'completed', 10 * LEASE_MS);
    // Queued again, not failed: no agent ever ran it, so the attempt its claim counted was taken back.
    expect(state.tasks.lost).toMatchObject({ status: 'completed', attempts: 1, agent_died: false });
    const events = await readEvents(project.paths.eventsPath);
    const requeued = events.find((e) => e.task === 'lost' && e.type === 'waiting');
    expect(requeued?.error).toMatch(/^queued again: launched agent never took the task over in \d+ s \(lease 4 s\)$/);
    const ratio = (Date.parse(requeued!.ts) - claimedAt) / LEASE_MS;
    expect(ratio).toBeGreaterThan(1);
    expect(ratio).toBeLessThan(2.5);
    expect(Date.parse(state.tasks.next!.started_at!)).toBeGreaterThanOrEqual(Date.parse(state.tasks.lost!.ended_at!));
  }, 120_000);

  it('a queued task keeps its place however long it waits: it has no owner, so no lease to lose', async () => {
    const project = await tempProject('dto-lease-');
    const LEASE_MS = 3000;
    await updateState(project.paths, (tx) => {
      const state = openSession(tx, { sessionId: 'lease2', maxWorkers: 1 });
      state.lease_ms = LEASE_MS;
    });
    const mock = (name: string, ...args: string[]) =>
      start('spawn-agent-mock', ['--task_name', name, '--goal', `goal ${name}`, '--session_id', 'lease2', '--quiet', ...args], project.dir);
    const first = mock('first', '--delay_ms', String(3 * LEASE_MS));
    await waitFor(project, (s) => s.tasks.first?.status === 'running', 30_000);
    const second = mock('second', '--delay_ms', '10', '--wait');
    const results = await Promise.all([first, second]);
    expect(results.map((r) => r.exitCode)).toEqual([0, 0]);
    const state = (await project.state())!;
    expect(state.tasks.second).toMatchObject({ status: 'completed', agent_died: false, attempts: 1 });
    expect(Date.parse(state.tasks.second!.started_at!) - Date.parse(state.tasks.second!.registered_at)).toBeGreaterThan(2 * LEASE_MS);
  }, 120_000);

  it('a stopped (SIGSTOP) process waiting with --wait holds no slot: the freed slot goes to its task at once, run by another process', async () => {
    const project = await tempProject('dto-lease-');
    const LEASE_MS = 3000;
    await updateState(project.paths, (tx) => {
      openSession(tx, { sessionId: 'lease3', maxWorkers: 1 }).lease_ms = LEASE_MS;
    });
    const mock = (name: string, ...args: string[]) =>
      start('spawn-agent-mock', ['--task_name', name, '--goal', `goal ${name}`, '--session_id', 'lease3', '--quiet', ...args], project.dir);
    // Runs long enough for `second` to register behind it, on a loaded machine too (1.5 s once ended first).
    const first = mock('first', '--delay_ms', '12000');
    await waitFor(project, (s) => s.tasks.first?.status === 'running', 30_000);
    const waiter = mock('second', '--delay_ms', '10', '--wait');
    await waitFor(project, (s) => s.tasks.second?.status === 'waiting', 30_000);
    await stopOutsideLock(waiter.pid!, project.paths.lockPath);
    try {
      expect((await first).exitCode).toBe(0);
      // Completed while the waiting process is still stopped: nobody waited for it, and no lease had to run out.
      const state = await waitFor(project, (s) => s.tasks.second?.status === 'completed', 30_000);
      expect(state.tasks.second).toMatchObject({ attempts: 1, agent_died: false });
      expect(state.tasks.second!.pid).not.toBe(waiter.pid);
    } finally {
      waiter.kill('SIGCONT');
    }
    // Resumed, the waiting process reports its task's outcome.
    expect((await waiter).exitCode).toBe(0);
  }, 120_000);
});
