import { describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { isProcessAlive } from '../../scripts/lib/process/signals.ts';
import type { SessionState } from '../../scripts/lib/state/schema.ts';
import { readState, updateState } from '../../scripts/lib/state/state-store.ts';
import { reapDeadTasks } from '../../scripts/lib/scheduling/transitions.ts';
import { replaceDeadTasks } from '../../scripts/lib/execution/worker-replacement.ts';
import { run, start, tempProject } from '../support/project.ts';
import { waitForState } from '../support/wait-state.ts';
import { maxOverlap, startOrder } from '../support/timeline.ts';

type Project = Awaited<ReturnType<typeof tempProject>>;

// --wait: a queued task's process exits at once without it; these tests want each task's outcome as an exit code.
const mock = (project: Project, name: string, ...args: string[]) =>
  start(
    'spawn-agent-mock',
    ['--task_name', name, '--goal', `goal ${name}`, '--session_id', 'bg', '--quiet', '--wait', ...args],
    project.dir,
  );

// 60 s: only a failure waits that long; a run beside 100 agents starting at once once took over 20 s to register its first task.
const waitFor = (project: Project, predicate: (state: SessionState) => boolean, timeoutMs = 60_000) =>
  waitForState(project, predicate, timeoutMs);

describe('background mode scheduling across processes', () => {
  it('keeps at most --max_workers tasks running across separate processes', async () => {
    const project = await tempProject();
    // Tasks long enough (2.5 s) that the six processes overlap however slowly a loaded machine starts them.
    const agents = Array.from({ length: 6 }, (_, i) => mock(project, `w${i}`, '--delay_ms', '2500', '--max_workers', '2'));
    expect((await Promise.all(agents)).map((r) => r.exitCode)).toEqual([0, 0, 0, 0, 0, 0]);
    const state = (await project.state())!;
    expect(state.max_workers).toBe(2);
    expect(maxOverlap(state)).toBe(2);
    const waits = (await readEvents(project.paths.eventsPath)).filter((e) => e.type === 'waiting');
    expect(waits.length).toBeGreaterThanOrEqual(1);
  });

  it('gives a free slot to the highest priority, then the earliest registered', async () => {
    const project = await tempProject();
    const blocker = mock(project, 'blocker', '--delay_ms', '60000', '--max_workers', '1');
    await waitFor(project, (s) => s.tasks.blocker?.status === 'running');
    const queued: Array<ReturnType<typeof mock>> = [];
    for (const [name, priority] of [
      ['p3', 'P3'],
      ['p1-first', 'P1'],
      ['p0', 'P0'],
      ['p1-second', 'P1'],
    ] as const) {
      queued.push(mock(project, name, '--delay_ms', '50', '--priority', priority));
      await waitFor(project, (s) => s.tasks[name]?.status === 'waiting');
    }
    // Free the only slot once all four wait: they must take it by priority, then registration order.
    expect((await run('cancel-session', ['--task', 'blocker'], project.dir)).exitCode).toBe(0);
    await Promise.all([blocker, ...queued]);
    const state = (await project.state())!;
    expect(startOrder(state)).toEqual(['blocker', 'p0', 'p1-first', 'p1-second', 'p3']);
    expect(maxOverlap(state)).toBe(1);
  });

  it('runs tasks that share a file one after the other, in registration order', async () => {
    const project = await tempProject();
    // edit-1 holds src/app.ts until edit-2 is seen waiting on it and the free task has completed, then it is cancelled:
    // however slowly a loaded machine starts the other processes, they register while edit-1 runs (a fixed 4 s delay
    // once ended before edit-2's process registered, stress run under load).
    const first = mock(project, 'edit-1', '--delay_ms', '600000', '--files', 'src/app.ts');
    await waitFor(project, (s) => s.tasks['edit-1']?.status === 'running');
    const second = mock(project, 'edit-2', '--delay_ms', '100', '--files', './src/app.ts,src/other.ts');
    const free = mock(project, 'free', '--delay_ms', '100', '--files', 'README.md');
    await waitFor(project, (s) => s.tasks['edit-2']?.status === 'waiting' && s.tasks.free?.status === 'completed');
    expect((await run('cancel-session', ['--task', 'edit-1'], project.dir)).exitCode).toBe(0);
    expect((await Promise.all([first, second, free])).map((r) => r.exitCode)).toEqual([1, 0, 0]);
    const state = (await project.state())!;
    expect(state.tasks['edit-1']!.status).toBe('cancelled');
    expect(state.tasks['edit-2']!.status).toBe('completed');
    expect(Date.parse(state.tasks['edit-2']!.started_at!)).toBeGreaterThanOrEqual(Date.parse(state.tasks['edit-1']!.ended_at!));
    // A task with other files is never held back by them: it never waited, while edit-2 waited on edit-1.
    const waits = (await readEvents(project.paths.eventsPath)).filter((e) => e.type === 'waiting');
    expect(waits.map((e) => e.task)).toEqual(['edit-2']);
    expect(waits[0]!.waiting_on).toEqual(['edit-1']);
  });

  it('waits for dependencies started later, and skips dependants of a failure (fail-fast) unless --on_dep_failure run', async () => {
    const project = await tempProject();
    const report = mock(project, 'report', '--depends_on', 'scan,lint', '--delay_ms', '10');
    const after = mock(project, 'after-report', '--depends_on', 'report', '--delay_ms', '10');
    const anyway = mock(project, 'anyway', '--depends_on', 'lint', '--on_dep_failure', 'run', '--delay_ms', '10');
    await waitFor(project, (s) => s.tasks.report?.status === 'waiting');
    const scan = mock(project, 'scan', '--delay_ms', '100');
    const lint = mock(project, 'lint', '--delay_ms', '100', '--fail');
    const results = await Promise.all([report, after, anyway, scan, lint]);
    expect(results.map((r) => r.exitCode)).toEqual([1, 1, 0, 0, 1]);
    const state = (await project.state())!;
    expect(state.tasks.report).toMatchObject({ status: 'skipped', error: 'dependency lint failed', started_at: null });
    expect(state.tasks['after-report']).toMatchObject({ status: 'skipped', error: 'dependency report skipped' });
    expect(state.tasks.anyway!.status).toBe('completed');
  });

  it('fails a task whose dependency never appears, naming it', async () => {
    const project = await tempProject();
    const result = await mock(project, 'orphan', '--depends_on', 'ghost', '--dep_timeout', '0.5');
    expect(result.exitCode).toBe(1);
    expect((await project.state())!.tasks.orphan!.error).toBe('dependency ghost never appeared in the session (waited 1 s)');
  });

  it('detects a SIGKILLed agent, marks it failed, and replaces it (same task, next attempt)', async () => {
    const project = await tempProject();
    const victim = mock(project, 'victim', '--delay_ms', '60000', '--retries', '1');
    const dependant = mock(project, 'dependant', '--depends_on', 'victim', '--delay_ms', '10');
    const running = await waitFor(project, (s) => s.tasks.victim?.status === 'running');
    const pid = running.tasks.victim!.pid!;
    process.kill(pid, 'SIGKILL');
    await victim;
    expect(isProcessAlive(pid)).toBe(false);
    // The waiting dependant notices first and marks the dead task failed... which skips the dependant.
    // So reap here, as poll-session would, before the dependant does, and replace the worker.
    await updateState(project.paths, (tx) => tx.state && reapDeadTasks(tx, tx.state));
    const reaped = (await readState(project.paths))!.tasks.victim!;
    expect(reaped).toMatchObject({ status: 'failed', error: 'agent process exited without reporting', agent_died: true, attempts: 1 });
    await updateState(project.paths, (tx) => {
      // Make the replacement quick: it re-runs the recorded command with a shorter delay.
      const launch = tx.state!.tasks.victim!.launch!;
      launch.args = launch.args.map((arg) => (arg === '60000' ? '100' : arg));
    });
    const replaced = await replaceDeadTasks(project.paths);
    expect(replaced.map((r) => r.task)).toEqual(['victim']);
    expect(await replaceDeadTasks(project.paths)).toEqual([]);
    const done = await waitFor(project, (s) => s.tasks.victim?.status === 'completed');
    expect(done.tasks.victim).toMatchObject({ attempts: 2, agent: reaped.agent, agent_died: false });
    await dependant;
    // Events are logged before their state is renamed into place: the victim's own, although it was
    // killed the moment the state showed it running, and the replacement's, now that the state shows it done.
    const types = (await readEvents(project.paths.eventsPath)).filter((e) => e.task === 'victim').map((e) => e.type);
    expect(types).toEqual(['registered', 'started', 'failed', 'replaced', 'registered', 'started', 'completed']);
  });

  it('poll-session marks a running task whose process is gone as failed and exits 1', async () => {
    const project = await tempProject();
    const victim = mock(project, 'victim', '--delay_ms', '60000');
    const running = await waitFor(project, (s) => s.tasks.victim?.status === 'running');
    process.kill(running.tasks.victim!.pid!, 'SIGKILL');
    await victim;
    const poll = await run('poll-session', ['--timeout', '20'], project.dir);
    expect(poll.exitCode).toBe(1);
    expect((await project.state())!.tasks.victim).toMatchObject({ status: 'failed', error: 'agent process exited without reporting' });
  });

  it('cancel-session stops running agents (real processes) and cancels waiting ones', async () => {
    const project = await tempProject();
    const slow = mock(project, 'slow', '--delay_ms', '60000', '--max_workers', '1');
    const running = await waitFor(project, (s) => s.tasks.slow?.status === 'running');
    const queued = mock(project, 'queued', '--delay_ms', '10');
    await waitFor(project, (s) => s.tasks.queued?.status === 'waiting');
    const pid = running.tasks.slow!.pid!;
    const cancel = await run('cancel-session', ['--grace_ms', '3000'], project.dir);
    expect(cancel.exitCode).toBe(0);
    expect(cancel.stdout).toContain('Cancelled 2 task(s): slow, queued.');
    expect((await slow).exitCode).toBe(1);
    expect((await queued).exitCode).toBe(1);
    expect(isProcessAlive(pid)).toBe(false);
    const state = (await project.state())!;
    expect(state.tasks.slow).toMatchObject({ status: 'cancelled', error: 'cancelled by cancel-session' });
    expect(state.tasks.queued!.status).toBe('cancelled');
    expect((await run('poll-session', [], project.dir)).exitCode).toBe(1);
  });

  it('cancel-session --task stops one task; its dependants are skipped, others go on', async () => {
    const project = await tempProject();
    const a = mock(project, 'a', '--delay_ms', '60000');
    const b = mock(project, 'b', '--delay_ms', '1500');
    const c = mock(project, 'c', '--depends_on', 'a', '--delay_ms', '10');
    await waitFor(project, (s) => s.tasks.a?.status === 'running' && s.tasks.c?.status === 'waiting');
    const cancel = await run('cancel-session', ['--task', 'a'], project.dir);
    expect(cancel.exitCode).toBe(0);
    await Promise.all([a, b, c]);
    const state = (await project.state())!;
    expect(state.tasks.a!.status).toBe('cancelled');
    expect(state.tasks.b!.status).toBe('completed');
    expect(state.tasks.c).toMatchObject({ status: 'skipped', error: 'dependency a was cancelled' });
    const unknown = await run('cancel-session', ['--task', 'zzz'], project.dir);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/No task "zzz"/);
  });
});
