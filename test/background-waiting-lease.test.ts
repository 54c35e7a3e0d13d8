// A waiting agent holds a lease too: a stopped (hung) waiter ahead in the queue loses its place after the lease.
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { SessionState } from '../scripts/lib/schema.ts';
import { updateState } from '../scripts/lib/state-store.ts';
import { openSession } from '../scripts/lib/transitions.ts';
import { run, start, tempProject } from './support/project.ts';

type Project = Awaited<ReturnType<typeof tempProject>>;

async function waitFor(project: Project, predicate: (state: SessionState) => boolean, timeoutMs: number): Promise<SessionState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await project.state();
    if (state && predicate(state)) return state;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms; state: ${JSON.stringify(state?.tasks, null, 1)}`);
    await delay(50);
  }
}

describe('waiting agents renew a lease', () => {
  it('a SIGSTOPped waiting agent ahead in priority does not keep a free slot: the next task starts within about one lease', async () => {
    const project = await tempProject('dto-lease-');
    const LEASE_MS = 6000;
    await updateState(project.paths, (tx) => {
      const state = openSession(tx, { sessionId: 'lease', maxWorkers: 2 });
      state.lease_ms = LEASE_MS;
    });
    const mock = (name: string, ...args: string[]) =>
      start('spawn-agent-mock', ['--task_name', name, '--goal', `goal ${name}`, '--session_id', 'lease', '--quiet', ...args], project.dir);
    const long1 = mock('long-1', '--delay_ms', '120000');
    const long2 = mock('long-2', '--delay_ms', '120000');
    await waitFor(project, (s) => s.tasks['long-1']?.status === 'running' && s.tasks['long-2']?.status === 'running', 30_000);
    const hung = mock('hung', '--delay_ms', '10', '--priority', 'P0');
    await waitFor(project, (s) => s.tasks.hung?.status === 'waiting', 30_000);
    const next = mock('next', '--delay_ms', '10', '--priority', 'P1');
    await waitFor(project, (s) => s.tasks.next?.status === 'waiting', 30_000);
    process.kill(hung.pid!, 'SIGSTOP');
    try {
      // Free one slot: the stopped P0 agent is first in line, but cannot take it.
      expect((await run('cancel-session', ['--task', 'long-2'], project.dir)).exitCode).toBe(0);
      const state = await waitFor(project, (s) => s.tasks.next?.status === 'completed', 10 * LEASE_MS);
      const freedAt = Date.parse(state.tasks['long-2']!.ended_at!);
      const startedAt = Date.parse(state.tasks.next!.started_at!);
      // Its lease had up to one lease left when the slot was freed; allow for slow machines, not for a 60 s hang.
      expect((startedAt - freedAt) / LEASE_MS).toBeLessThan(2.5);
      expect(state.tasks.hung).toMatchObject({ status: 'failed', agent_died: true });
      expect(state.tasks.hung!.error).toMatch(/^waiting agent heartbeat stale for \d+ s \(lease 6 s\)$/);
      expect(state.tasks['long-1']!.status).toBe('running');
    } finally {
      process.kill(hung.pid!, 'SIGCONT');
    }
    // Woken again, the hung agent finds its task taken from it and ends without running it.
    expect((await hung).exitCode).toBe(1);
    expect((await next).exitCode).toBe(0);
    expect((await run('cancel-session', [], project.dir)).exitCode).toBe(0);
    await Promise.all([long1, long2]);
    const final = (await project.state())!;
    expect(final.tasks.hung!.started_at).toBeNull();
  }, 120_000);

  it('a live waiting agent keeps its place however long it waits (its heartbeat is renewed)', async () => {
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
    const second = mock('second', '--delay_ms', '10');
    const results = await Promise.all([first, second]);
    expect(results.map((r) => r.exitCode)).toEqual([0, 0]);
    const state = (await project.state())!;
    expect(state.tasks.second).toMatchObject({ status: 'completed', agent_died: false, attempts: 1 });
  }, 120_000);
});
