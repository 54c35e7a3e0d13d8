// Waiting tasks hold no process: a task that cannot start is queued and its process exits; others start it.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import type { SessionState } from '../../scripts/lib/state/schema.ts';
import { updateState } from '../../scripts/lib/state/state-store.ts';
import { schedulePass } from '../../scripts/lib/execution/task-queue.ts';
import { openSession, registerTask } from '../../scripts/lib/scheduling/transitions.ts';
import { run, start, tempProject } from '../support/project.ts';
import { waitForState } from '../support/wait-state.ts';
import { maxOverlap } from '../support/timeline.ts';

type Project = Awaited<ReturnType<typeof tempProject>>;

const mock = (project: Project, name: string, ...args: string[]) =>
  start('spawn-agent-mock', ['--task_name', name, '--goal', `goal ${name}`, '--session_id', 'q', ...args], project.dir);

const waitFor = (project: Project, predicate: (state: SessionState) => boolean, timeoutMs = 30_000) =>
  waitForState(project, predicate, timeoutMs);

const ended = (s: SessionState, names: string[]) =>
  names.every((n) => ['completed', 'failed', 'skipped', 'cancelled'].includes(s.tasks[n]?.status ?? ''));

describe('queued background tasks', () => {
  it('exits 0 at once when its task cannot start, leaves it queued with no owner, and the agent that frees the slot runs it next in its own process', async () => {
    const project = await tempProject();
    const blocker = mock(project, 'blocker', '--delay_ms', '3000', '--max_workers', '1');
    const blockerPid = blocker.pid;
    await waitFor(project, (s) => s.tasks.blocker?.status === 'running');
    const spawned = mock(project, 'next', '--delay_ms', '50');
    const spawnedPid = spawned.pid;
    const queued = await spawned;
    expect(queued.exitCode).toBe(0);
    expect(queued.stdout).toMatch(/⏸️ next waiting \(Agent-02\)\n/);
    expect(queued.stdout).toContain('next is queued (Agent-02, session q)');
    // Exited while the blocker still runs: nothing waits for the task, and it has no owner to die.
    const meanwhile = (await project.state())!;
    expect(meanwhile.tasks.blocker!.status).toBe('running');
    expect(meanwhile.tasks.next).toMatchObject({ status: 'waiting', pid: null, pid_start: null, heartbeat_at: null, adoption_token: null });
    const blockerRun = await blocker;
    expect(blockerRun.exitCode).toBe(0);
    const done = await waitFor(project, (s) => s.tasks.next?.status === 'completed');
    expect(blockerRun.stdout).toMatch(
      /✅ blocker completed by Agent-01 in [^\n]+\n\[\d\d:\d\d\] 🔵 next started by Agent-02\n\[\d\d:\d\d\] ✅ next completed by Agent-02 in /,
    );
    expect(done.tasks.next).toMatchObject({ attempts: 1, adoption_token: null, agent: 'Agent-02' });
    expect(done.tasks.next!.pid).not.toBe(spawnedPid);
    // Same kind of agent, same directory: no new process start for it.
    expect(done.tasks.next!.pid).toBe(blockerPid);
    expect(Date.parse(done.tasks.next!.started_at!)).toBeGreaterThanOrEqual(Date.parse(done.tasks.blocker!.ended_at!));
    const events = await readEvents(project.paths.eventsPath);
    const started = events.filter((e) => e.task === 'next' && e.type === 'started');
    expect(started).toHaveLength(1);
    // The commit that ended the blocker gave its slot on (one commit, one time): no poller looking in between
    // could start `next` first, with an environment of its own (a loaded CI machine once saw "Not logged in").
    const blockerEnd = events.find((e) => e.task === 'blocker' && e.type === 'completed');
    expect(started[0]!.ts).toBe(blockerEnd?.ts);
  }, 60_000);

  it('dozens of "&" starts with --max_workers 4 while the slots are taken: every process exits with its task queued; then every task completes once and the limit holds', async () => {
    const project = await tempProject();
    // Four blockers hold every slot until they are cancelled, so whatever the machine's speed no start finds one free.
    const blockers = ['b0', 'b1', 'b2', 'b3'];
    const blocking = blockers.map((name) => mock(project, name, '--delay_ms', '600000', '--max_workers', '4'));
    await waitFor(project, (s) => blockers.every((b) => s.tasks[b]?.status === 'running'));
    const names = Array.from({ length: 20 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    const results = await Promise.all(names.map((name) => mock(project, name, '--delay_ms', '300')));
    expect(results.map((r) => r.exitCode)).toEqual(names.map(() => 0));
    // Every process said its task is queued and exited: queued tasks hold no process and have no owner.
    expect(results.filter((r) => !r.stdout.includes(' is queued ')).map((r) => r.stdout)).toEqual([]);
    const meanwhile = (await project.state())!;
    expect(blockers.map((b) => meanwhile.tasks[b]!.status)).toEqual(blockers.map(() => 'running'));
    for (const name of names) expect(meanwhile.tasks[name]).toMatchObject({ status: 'waiting', pid: null, heartbeat_at: null });

    // Freeing the slots lets the queue run them, four at a time.
    for (const b of blockers) expect((await run('cancel-session', ['--task', b], project.dir)).exitCode).toBe(0);
    await Promise.all(blocking);
    const poll = await run('poll-session', ['--timeout', '120'], project.dir);
    expect(poll.exitCode, poll.all).toBe(1); // The cancelled blockers.
    const state = (await project.state())!;
    expect(Object.keys(state.tasks).sort()).toEqual([...blockers, ...names]);
    expect(names.map((n) => `${n}: ${state.tasks[n]!.status}${state.tasks[n]!.error ? ` (${state.tasks[n]!.error})` : ''}`)).toEqual(
      names.map((n) => `${n}: completed`),
    );
    expect(maxOverlap(state)).toBeLessThanOrEqual(4);
    // Every task ran once. Judged from the events, not their count: on a starved machine a launch whose process does not
    // take its task over within the lease is queued again without having run ('started' for the claim, then 'waiting'
    // "queued again: ..."), and its task starts once more later (stress run under load, 2026-12-06: 22 starts for 20 tasks).
    const events = await readEvents(project.paths.eventsPath);
    for (const name of names) {
      const own = events.filter((e) => e.task === name && e.type !== 'registered');
      expect(own.filter((e) => e.type === 'completed').map((e) => e.task)).toEqual([name]);
      const lastStart = own.map((e) => e.type).lastIndexOf('started');
      own.forEach((event, at) => {
        if (event.type !== 'started' || at === lastStart) return;
        expect(own[at + 1], `${name}: a start that did not end in its completion`).toMatchObject({
          type: 'waiting',
          error: expect.stringMatching(/^queued again: launched agent /) as unknown,
        });
      });
    }
    expect(events.filter((e) => e.type === 'completed')).toHaveLength(names.length);
  }, 180_000);

  it('--wait stays until the queued task ends and exits with its outcome', async () => {
    const project = await tempProject();
    const blocker = mock(project, 'blocker', '--delay_ms', '1500', '--max_workers', '1');
    await waitFor(project, (s) => s.tasks.blocker?.status === 'running');
    const failing = await mock(project, 'failing', '--delay_ms', '50', '--fail', '--wait');
    expect(failing.exitCode).toBe(1);
    expect(failing.stdout).toMatch(/❌ failing failed after \d+ ms \(Agent-02\): /);
    expect((await blocker).exitCode).toBe(0);
  }, 60_000);

  it('starts a queued task from poll-session when nobody else is left to (its agent crashed before giving the slot on)', async () => {
    const project = await tempProject();
    const victim = mock(project, 'victim', '--delay_ms', '60000', '--max_workers', '1');
    const running = await waitFor(project, (s) => s.tasks.victim?.status === 'running');
    expect((await mock(project, 'after', '--delay_ms', '50')).exitCode).toBe(0);
    process.kill(running.tasks.victim!.pid!, 'SIGKILL');
    await victim;
    const poll = await run('poll-session', ['--timeout', '60'], project.dir);
    expect(poll.exitCode).toBe(1);
    const state = (await project.state())!;
    expect(state.tasks.victim).toMatchObject({ status: 'failed', agent_died: true });
    expect(state.tasks.after!.status).toBe('completed');
  }, 60_000);

  it('never runs a queued task whose recorded launch is refused: it fails with the reason', async () => {
    const project = await tempProject();
    await updateState(project.paths, (tx) => {
      const state = openSession(tx, { sessionId: 'q', maxWorkers: 2 });
      registerTask(tx, state, {
        name: 'evil',
        goal: 'g',
        runner: 'mock',
        pid: null,
        launch: { script: 'cancel-session', args: [], cwd: project.dir },
      });
      registerTask(tx, state, {
        name: 'node-opt',
        goal: 'g',
        runner: 'mock',
        pid: null,
        launch: {
          script: 'spawn-agent-mock',
          args: ['--task_name', 'node-opt', '--goal', 'g', '--require', '/tmp/x.js'],
          cwd: project.dir,
        },
      });
    });
    const applied = (await schedulePass(project.paths))!;
    expect(applied.adoptions).toEqual([]);
    expect(applied.failed.sort()).toEqual(['evil', 'node-opt']);
    const state = (await project.state())!;
    expect(state.tasks.evil!.error).toMatch(
      /^could not be started: recorded launch refused: the recorded script "cancel-session" is not one of/,
    );
    expect(state.tasks['node-opt']!.error).toMatch(
      /^could not be started: recorded launch refused: the recorded flags of spawn-agent-mock do not parse/,
    );
  });

  it('a process started with a wrong or stale adoption token takes nothing over', async () => {
    const project = await tempProject();
    // The blocker outlasts any process start on a loaded machine (a 2 s one once ended first, and the queued task
    // was legitimately claimed before the impostor came); cancel-session ends it once the impostor was seen.
    const blocker = mock(project, 'blocker', '--delay_ms', '120000', '--max_workers', '1');
    await waitFor(project, (s) => s.tasks.blocker?.status === 'running');
    expect((await mock(project, 'queued', '--delay_ms', '10')).exitCode).toBe(0);
    const before = (await project.state())!;
    const impostor = await start('spawn-agent-mock', ['--task_name', 'queued', '--goal', 'goal queued', '--delay_ms', '10'], project.dir, {
      DTO_ADOPT_TOKEN: 'forged',
    });
    expect(impostor.exitCode).toBe(1);
    expect(impostor.stdout).toContain('nothing to take over');
    expect((await project.state())!.tasks.blocker!.status).toBe('running');
    expect((await project.state())!.tasks.queued).toEqual(before.tasks.queued);
    expect((await run('cancel-session', [], project.dir)).exitCode).toBe(0);
    await blocker;
    await waitFor(project, (s) => ended(s, ['blocker', 'queued']));
  }, 60_000);

  it('background agents and a plan in the same session share one worker limit', async () => {
    const project = await tempProject();
    // The first three hold every slot long enough for the background tasks to register meanwhile, on a loaded machine
    // too (at 2.5 s each the whole plan once ended first); the background tasks (P0) take the slots they free.
    const task = (id: string, ms: number) => `  - { id: ${id}, goal: "do ${id}", depends_on: [], delay_ms: ${ms} }`;
    const plan = [...['p1', 'p2', 'p3'].map((id) => task(id, 20_000)), ...['p4', 'p5', 'p6'].map((id) => task(id, 500))];
    await writeFile(path.join(project.dir, 'plan.yaml'), ['tasks:', ...plan].join('\n'));
    const runner = start('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '3', '--session_id', 'mixed'], project.dir);
    await waitFor(project, (s) => s.session_id === 'mixed' && Object.values(s.tasks).some((t) => t.status === 'running'));
    const background = await Promise.all(
      ['b1', 'b2', 'b3', 'b4'].map((name) =>
        start(
          'spawn-agent-mock',
          ['--task_name', name, '--goal', `goal ${name}`, '--session_id', 'mixed', '--delay_ms', '500', '--priority', 'P0'],
          project.dir,
        ),
      ),
    );
    expect(background.map((r) => r.exitCode)).toEqual([0, 0, 0, 0]);
    // orchestrate's own exit code judges the whole session when it ends (background tasks may still run then).
    await runner;
    const state = await waitFor(project, (s) => ended(s, ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'b1', 'b2', 'b3', 'b4']));
    expect(Object.values(state.tasks).filter((t) => t.status === 'completed')).toHaveLength(10);
    expect(maxOverlap(state)).toBe(3);
    // Both kinds ran while the other held slots: the limit was shared, not held by each mode separately.
    const span = (names: string[]) => [
      Math.min(...names.map((n) => Date.parse(state.tasks[n]!.started_at!))),
      Math.max(...names.map((n) => Date.parse(state.tasks[n]!.ended_at!))),
    ];
    const [planStart, planEnd] = span(['p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    const [bgStart] = span(['b1', 'b2', 'b3', 'b4']);
    expect(bgStart).toBeGreaterThanOrEqual(planStart!);
    expect(bgStart).toBeLessThan(planEnd!);
  }, 90_000);
});
