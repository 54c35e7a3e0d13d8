// The BullMQ backend against a real PostgreSQL on loopback: 3 worker processes (3 "hosts") and the orchestrator in separate folders.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, start, tempProject } from '../support/project.ts';
import { closedPort, serverSkipReason, startPostgres, type PostgresServer } from '../support/servers.ts';
import { killWorkers, peakConcurrency, startWorkerProc, stopWorkers, type WorkerProc } from './worker-procs.ts';
import { openBullmqBackend, UNREPORTED_HOST } from '../../scripts/lib/backend/bullmq-backend.ts';
import { parseConnection } from '../../scripts/lib/backend/connection.ts';
import type { SessionState } from '../../scripts/lib/state/schema.ts';
import { agentContext } from '../support/agent-context.ts';
import { FAKE_CLAUDE_DIR } from '../support/claude-fixtures.ts';

const FAKE_CLAUDE = path.join(FAKE_CLAUDE_DIR, 'claude');

const workers: WorkerProc[] = [];
const dirs: string[] = [];
let server: PostgresServer | null = null;

const startWorker = (name: string, queue: string, concurrency: number) =>
  startWorkerProc({ name, queue, concurrency, url: server!.url, dirs, workers });

/** A 30-task DAG: each task after the one 5 before it, every 4th also after the one 7 before it. */
function dagPlan(count: number, delayMs: number, maxWorkers: number): { yaml: string; deps: Map<string, string[]> } {
  const id = (i: number) => `T${String(i).padStart(2, '0')}`;
  const deps = new Map<string, string[]>();
  for (let i = 1; i <= count; i++) {
    const list = [];
    if (i > 5) list.push(id(i - 5));
    if (i % 4 === 0 && i > 7) list.push(id(i - 7));
    deps.set(id(i), list);
  }
  const yaml = [
    `max_workers: ${maxWorkers}`,
    'tasks:',
    ...[...deps].map(([task, list]) => `  - { id: ${task}, goal: "do ${task}", depends_on: [${list.join(', ')}], delay_ms: ${delayMs} }`),
  ].join('\n');
  return { yaml, deps };
}

const uniqueQueue = (label: string) => `${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

describe.skipIf(serverSkipReason('postgres') !== null)('BullMQ backend on PostgreSQL (3 workers standing for 3 hosts)', () => {
  beforeAll(async () => {
    server = await startPostgres();
  });

  afterAll(async () => {
    await killWorkers(workers);
    await server?.stop();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('runs a 30-task DAG on 3 workers in dependency order, never more than 4 at once over all of them, with the same session view', async () => {
    const queue = uniqueQueue('dag');
    const group = await Promise.all(['host-a', 'host-b', 'host-c'].map((name) => startWorker(name, queue, 3)));
    const project = await tempProject();
    const { yaml, deps } = dagPlan(30, 250, 4);
    await writeFile(path.join(project.dir, 'plan.yaml'), yaml);

    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--queue', queue], project.dir, {
      DTO_BULLMQ_CONNECTION: server!.url,
    });
    await stopWorkers(group);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.all).toContain(`postgres://dto:***@127.0.0.1:${server!.port}/postgres`);

    const state = (await project.state())!;
    const tasks = Object.entries(state.tasks);
    expect(tasks.length).toBe(30);
    expect(tasks.filter(([, t]) => t.status === 'completed').length).toBe(30);

    // Every job ran once, to completion, and started only after each of its dependencies completed (workers' own clocks).
    const lines = group.flatMap((w) => w.lines);
    const completedAt = new Map<string, number>();
    for (const line of lines.filter((l) => l.event === 'completed')) {
      expect(completedAt.has(line.task), `${line.task} completed twice`).toBe(false);
      completedAt.set(line.task, Date.parse(line.at));
    }
    expect(completedAt.size).toBe(30);
    const starts = lines.filter((l) => l.event === 'started');
    expect(starts.length).toBe(30);
    for (const start of starts) {
      for (const dep of deps.get(start.task)!) expect(Date.parse(start.at)).toBeGreaterThanOrEqual(completedAt.get(dep)!);
    }
    expect(peakConcurrency(lines)).toBeLessThanOrEqual(4);
    expect(peakConcurrency(lines)).toBeGreaterThanOrEqual(2);

    // The host of each attempt is recorded, and more than one host did work.
    for (const [name, task] of tasks) {
      expect(task.attempts, name).toBe(1);
      expect(task.attempt_hosts.map((h) => h.attempt)).toEqual([1]);
    }
    const hosts = new Set(tasks.map(([, t]) => t.attempt_hosts[0]!.host));
    expect([...hosts].every((h) => ['host-a', 'host-b', 'host-c'].includes(h))).toBe(true);
    expect(hosts.size).toBeGreaterThanOrEqual(2);

    // A worker gets its dependencies' results as data (it cannot read the orchestrating host's files).
    const t06host = group.find((w) => w.name === state.tasks.T06!.attempt_hosts[0]!.host)!;
    const depCopy = await readFile(path.join(t06host.dir, '.agent/remote-results', state.session_id, 'T01.md'), 'utf8');
    expect(depCopy).toContain('# T01 (SIMULATED)');

    // The result files are written on the orchestrating side, from the worker's result.
    const t30 = await readFile(path.join(project.dir, '.agent/results/T30.md'), 'utf8');
    expect(t30).toContain('SIMULATED');
    expect(t30).toMatch(/host: host-[abc]/);

    // poll-session and aggregate work as with the local backend; the report names the host of each attempt.
    const poll = await run('poll-session', ['--timeout', '10'], project.dir);
    expect(poll.exitCode, poll.all).toBe(0);
    const agg = await run('aggregate', [], project.dir);
    expect(agg.exitCode, agg.all).toBe(0);
    const report = await readFile(path.join(project.dir, '.agent/final_output.md'), 'utf8');
    expect(report.match(/Ran on: attempt 1 on host-[abc]/g)?.length).toBe(30);

    // The connection string's password is nowhere in the session's files or output.
    const stateText = await readFile(project.paths.statePath, 'utf8');
    const eventsText = await readFile(project.paths.eventsPath, 'utf8');
    for (const text of [stateText, eventsText, report, result.all ?? '', poll.all ?? '', ...group.flatMap((w) => w.stderr)]) {
      expect(text).not.toContain(server!.password);
    }
  });

  it("holds the session's worker limit across hosts through the queue's global concurrency, even for jobs added all at once", async () => {
    const queue = uniqueQueue('limit');
    const group = await Promise.all(['host-a', 'host-b', 'host-c'].map((name) => startWorker(name, queue, 3)));
    // Eight tasks handed to the backend at once (no scheduler in between): only the engine limits them.
    const backend = await openBullmqBackend({ connection: parseConnection(server!.url), queueName: queue, maxWorkers: 2 });
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          backend.executorFor({ delayMs: 300 }, 'mock')(agentContext(os.tmpdir(), { taskName: `G${i}`, session_id: queue })),
        ),
      );
      expect(outcomes.filter((o) => o.status === 'completed').length).toBe(8);
    } finally {
      await backend.close();
      await stopWorkers(group);
    }
    const lines = group.flatMap((w) => w.lines);
    expect(lines.filter((l) => l.event === 'completed').length).toBe(8);
    expect(peakConcurrency(lines)).toBe(2);
  });

  it('re-runs the tasks of a SIGKILLed worker on another one, as another attempt, none lost or completed twice', async () => {
    const queue = uniqueQueue('kill');
    const group = await Promise.all(['host-a', 'host-b', 'host-c'].map((name) => startWorker(name, queue, 2)));
    const project = await tempProject();
    const ids = Array.from({ length: 10 }, (_, i) => `K${i + 1}`);
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      ['max_workers: 4', 'tasks:', ...ids.map((id) => `  - { id: ${id}, goal: "do ${id}", delay_ms: 2500 }`)].join('\n'),
    );
    const orchestration = run('orchestrate', ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--queue', queue], project.dir, {
      DTO_BULLMQ_CONNECTION: server!.url,
    });
    // Kill whichever worker starts a task first, while it runs it.
    const deadline = Date.now() + 60_000;
    let victim: WorkerProc | undefined;
    while (!victim) {
      victim = group.find((w) => w.lines.some((l) => l.event === 'started'));
      if (Date.now() > deadline) throw new Error('no worker started a task');
      await sleep(20);
    }
    victim.proc.kill('SIGKILL');
    const result = await orchestration;
    const survivors = group.filter((w) => w !== victim);
    await stopWorkers(survivors);
    expect(result.exitCode, result.all).toBe(0);

    const state: SessionState = (await project.state())!;
    // The tasks the victim had taken: its first attempts in the state. Its "started" lines may name fewer: a job it had
    // taken can be killed before the worker printed the line, or even before it reported its start (an unknown host then).
    const victimHosts = [victim.name, UNREPORTED_HOST];
    const killedTasks = ids.filter((id) => state.tasks[id]!.attempt_hosts.some((h) => victimHosts.includes(h.host)));
    const printed = [...new Set(victim.lines.filter((l) => l.event === 'started').map((l) => l.task))];
    expect(printed.length).toBeGreaterThanOrEqual(1);
    for (const task of printed) expect(killedTasks).toContain(task);
    expect(victim.lines.filter((l) => l.event === 'completed').length).toBe(0);

    expect(Object.values(state.tasks).filter((t) => t.status === 'completed').length).toBe(ids.length);
    const completions = survivors.flatMap((w) => w.lines.filter((l) => l.event === 'completed'));
    expect(completions.map((l) => l.task).sort()).toEqual([...ids].sort());
    for (const task of killedTasks) {
      const record = state.tasks[task]!;
      expect(record.attempts, task).toBe(2);
      expect(record.attempt_hosts.map((h) => h.attempt)).toEqual([1, 2]);
      expect(victimHosts).toContain(record.attempt_hosts[0]!.host);
      expect(survivors.map((w) => w.name)).toContain(record.attempt_hosts[1]!.host);
      // The re-run started on a survivor, as the job's second start.
      const rerun = survivors.flatMap((w) => w.lines).find((l) => l.task === task && l.event === 'started');
      expect(rerun?.start).toBe(2);
    }
    for (const task of ids.filter((id) => !killedTasks.includes(id))) expect(state.tasks[task]!.attempts).toBe(1);
    const events = await readFile(project.paths.eventsPath, 'utf8');
    const startedEvents = events.split('\n').filter((line) => line.includes('"type":"started"'));
    expect(startedEvents.length).toBe(ids.length + killedTasks.length);
  });

  it('detached: hands the connection to the background run in its environment, never in its arguments, and completes', async () => {
    const queue = uniqueQueue('detach');
    const group = [await startWorker('host-d', queue, 2)];
    const project = await tempProject();
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      [
        'tasks:',
        ...['D1', 'D2', 'D3'].map((id, i) => `  - { id: ${id}, goal: "do ${id}", depends_on: [${i ? `D${i}` : ''}], delay_ms: 400 }`),
      ].join('\n'),
    );
    const started = await run(
      'orchestrate',
      ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--queue', queue, '--connection', server!.url, '--detach'],
      project.dir,
    );
    expect(started.exitCode, started.all).toBe(0);
    const pid = Number(/\(pid (\d+)\)/.exec(started.stdout)?.[1]);
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    expect(cmdline).not.toContain(server!.password);
    const poll = await run('poll-session', ['--timeout', '60'], project.dir);
    await stopWorkers(group);
    expect(poll.exitCode, poll.all).toBe(0);
    const state = (await project.state())!;
    expect(Object.values(state.tasks).map((t) => t.status)).toEqual(['completed', 'completed', 'completed']);
    expect(Object.values(state.tasks).map((t) => t.attempt_hosts[0]?.host)).toEqual(['host-d', 'host-d', 'host-d']);
    const log = await readFile(path.join(project.paths.dir, `${state.session_id}.log`), 'utf8');
    expect(log).toContain('postgres://dto:***@127.0.0.1');
    for (const text of [log, started.all ?? '', await readFile(project.paths.statePath, 'utf8')])
      expect(text).not.toContain(server!.password);
  });

  it('a worker runs only the agent kind its owner allowed: a claude task sent to a mock worker fails, saying so', async () => {
    const queue = uniqueQueue('kind');
    const group = [await startWorker('host-m', queue, 1)];
    const project = await tempProject();
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      'tasks:\n  - { id: C1, goal: "do C1" }\n  - { id: C2, goal: "do C2", depends_on: [C1] }\n',
    );
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'claude', '--backend', 'bullmq', '--queue', queue], project.dir, {
      DTO_BULLMQ_CONNECTION: server!.url,
    });
    await stopWorkers(group);
    expect(result.exitCode, result.all).toBe(1);
    const state = (await project.state())!;
    expect(state.tasks.C1!.status).toBe('failed');
    expect(state.tasks.C1!.error).toContain('needs a claude agent but worker host-m runs mock agents (start a worker with --agent claude)');
    expect(state.tasks.C2!.status).toBe('skipped');
    expect(group[0]!.lines.map((l) => l.event)).toEqual(['refused']);
  });

  it("worker --agent claude started as documented (connection exported) keeps the connection out of its agents' environment", async () => {
    const queue = uniqueQueue('env');
    const log = await mkdtemp(path.join(os.tmpdir(), 'dto-fake-claude-log-'));
    dirs.push(log);
    const env = { CLAUDE_BIN: FAKE_CLAUDE, FAKE_CLAUDE_LOG: log };
    const group = [
      await startWorkerProc({
        name: 'host-env',
        queue,
        concurrency: 1,
        url: server!.url,
        dirs,
        workers,
        agent: { kind: 'claude', args: ['--skip_preflight'], env },
      }),
    ];
    const project = await tempProject();
    await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - { id: E1, goal: "do E1" }\n');
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'claude', '--backend', 'bullmq', '--queue', queue], project.dir, {
      DTO_BULLMQ_CONNECTION: server!.url,
    });
    await stopWorkers(group);
    expect(result.exitCode, result.all).toBe(0);
    const calls = await Promise.all(
      (await readdir(log)).map(async (file) => JSON.parse(await readFile(path.join(log, file), 'utf8')) as { env: Record<string, string> }),
    );
    expect(calls.length).toBeGreaterThanOrEqual(1);
    for (const call of calls) {
      expect(call.env.CLAUDE_BIN).toBe(FAKE_CLAUDE); // The environment was recorded, and is the worker's.
      expect(call.env.DTO_BULLMQ_CONNECTION).toBeUndefined();
      expect(JSON.stringify(call.env)).not.toContain(server!.password);
    }
  });

  it("a rerun with the same --session_id runs its agents again: never handed the earlier run's finished job", async () => {
    const queue = uniqueQueue('rerun');
    const group = [await startWorker('host-r', queue, 1)];
    // Two checkouts (or hosts) running the same plan with the same session id on one queue, one after the other.
    const once = async () => {
      const project = await tempProject();
      await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - { id: R1, goal: "do R1", delay_ms: 10 }\n');
      const args = ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--queue', queue, '--session_id', 'again'];
      return run('orchestrate', args, project.dir, { DTO_BULLMQ_CONNECTION: server!.url });
    };
    const first = await once();
    expect(first.exitCode, first.all).toBe(0);
    const second = await once();
    expect(second.exitCode, second.all).toBe(0);
    await stopWorkers(group);
    expect(group[0]!.lines.map((l) => `${l.event} ${l.task}`)).toEqual(['started R1', 'completed R1', 'started R1', 'completed R1']);
  });

  it('cancel-session on the orchestrating host stops the agent running on a worker', async () => {
    const queue = uniqueQueue('cancel');
    const group = [await startWorker('host-x', queue, 1)];
    const project = await tempProject();
    await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - { id: LONG, goal: "run long", delay_ms: 120000 }\n');
    const orchestration = start('orchestrate', ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--queue', queue], project.dir, {
      DTO_BULLMQ_CONNECTION: server!.url,
    });
    const until = async (done: () => boolean, what: string) => {
      const deadline = Date.now() + 60_000;
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(50);
      }
    };
    await until(() => group[0]!.lines.some((l) => l.event === 'started'), 'the worker to start LONG');
    const cancel = await run('cancel-session', [], project.dir);
    expect(cancel.exitCode, cancel.all).toBe(0);
    await until(() => group[0]!.lines.some((l) => l.event === 'failed'), 'the worker to stop LONG');
    const result = await orchestration;
    await stopWorkers(group);
    expect(result.exitCode).toBe(1);
    expect(group[0]!.lines.map((l) => l.event)).toEqual(['started', 'failed']);
    expect(group[0]!.lines[1]!.error).toContain('cancelled by the orchestrator');
    expect((await project.state())!.tasks.LONG!.status).toBe('cancelled');
  });

  it('refuses an unreachable server with a clear error naming the backend and the redacted connection, registering nothing', async () => {
    const project = await tempProject();
    await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - { id: A, goal: "do A", delay_ms: 10 }\n');
    const port = await closedPort();
    const url = `postgres://dto:${server!.password}@127.0.0.1:${port}/postgres`;
    for (const extra of [[], ['--detach']]) {
      const result = await run(
        'orchestrate',
        ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--connection', url, ...extra],
        project.dir,
      );
      expect(result.exitCode, result.all).toBe(2);
      expect(result.stderr).toContain(`Cannot reach the BullMQ backend (postgres) at postgres://dto:***@127.0.0.1:${port}/postgres`);
      expect(result.all).not.toContain(server!.password);
      expect(existsSync(project.paths.statePath)).toBe(false);
      expect(existsSync(project.paths.eventsPath)).toBe(false);
    }
    const worker = await run('worker', ['--connection', url], project.dir);
    expect(worker.exitCode).toBe(2);
    expect(worker.stderr).toContain(`Cannot reach the BullMQ backend (postgres) at postgres://dto:***@127.0.0.1:${port}/postgres`);
    expect(worker.all).not.toContain(server!.password);
  });
});

describe('BullMQ backend usage errors (no server needed)', () => {
  it('needs a connection for --backend bullmq, and takes no --connection with the local backend', async () => {
    const project = await tempProject();
    await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - { id: A, goal: "do A", delay_ms: 10 }\n');
    const missing = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq'], project.dir, {
      DTO_BULLMQ_CONNECTION: '',
    });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('--backend bullmq needs the queue');
    const local = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--connection', 'postgres://a:b@h/db'], project.dir);
    expect(local.exitCode).toBe(2);
    expect(local.stderr).toContain('--connection only apply to --backend bullmq');
    const claudeFlags = await run(
      'orchestrate',
      ['plan.yaml', '--agent', 'claude', '--backend', 'bullmq', '--connection', 'postgres://a:b@h/db', '--model', 'sonnet'],
      project.dir,
    );
    expect(claudeFlags.exitCode).toBe(2);
    expect(claudeFlags.stderr).toContain('each worker sets its own claude flags');
    expect(existsSync(project.paths.statePath)).toBe(false);
  });
});
