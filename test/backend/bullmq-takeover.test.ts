// Jobs that outlive who started them, end to end on a real PostgreSQL: a stalled job taken over with one session slot
// (issue 21, item 15), a dead worker that never reported its start (a CI failure), a job still running at --resume (item 7), or
// completed while its orchestrator was dead.
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, start, tempProject } from '../support/project.ts';
import { serverSkipReason, startPostgres, type PostgresServer } from '../support/servers.ts';
import { killWorkers, startWorkerProc, stopWorkers, type WorkerProc } from './worker-procs.ts';
import { UNREPORTED_HOST } from '../../scripts/lib/backend/bullmq-backend.ts';
import { engineFor } from '../../scripts/lib/backend/bullmq-engine.ts';
import { parseConnection } from '../../scripts/lib/backend/connection.ts';

const workers: WorkerProc[] = [];
const dirs: string[] = [];
let server: PostgresServer | null = null;

const uniqueQueue = (label: string) => `${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

async function onePlan(dir: string, delayMs: number): Promise<void> {
  await writeFile(
    path.join(dir, 'plan.yaml'),
    ['max_workers: 1', 'tasks:', `  - { id: A, goal: "do A", delay_ms: ${delayMs} }`].join('\n'),
  );
}

describe.skipIf(serverSkipReason('postgres') !== null)('BullMQ: a job outliving its worker or its orchestrator', () => {
  beforeAll(async () => {
    server = await startPostgres();
  });

  afterAll(async () => {
    await killWorkers(workers);
    await server?.stop();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('--max_workers 1: the take-over is counted as attempt 2 and the run completes, instead of waiting for a slot the task holds itself', async () => {
    const queue = uniqueQueue('one-slot');
    const first = await startWorkerProc({ name: 'host-a', queue, concurrency: 1, url: server!.url, dirs, workers });
    const project = await tempProject();
    await onePlan(project.dir, 2500);
    const orchestration = run('orchestrate', ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--queue', queue], project.dir, {
      DTO_BULLMQ_CONNECTION: server!.url,
    });
    const deadline = Date.now() + 60_000;
    while (!first.lines.some((l) => l.event === 'started')) {
      if (Date.now() > deadline) throw new Error(`host-a started nothing: ${first.stderr.join('')}`);
      await sleep(20);
    }
    first.proc.kill('SIGKILL');
    const second = await startWorkerProc({ name: 'host-b', queue, concurrency: 1, url: server!.url, dirs, workers });
    const result = await orchestration;
    await stopWorkers([second]);
    expect(result.exitCode, result.all).toBe(0);
    const task = (await project.state())!.tasks.A!;
    expect(task.status).toBe('completed');
    expect(task.attempts).toBe(2);
    expect(task.attempt_hosts).toEqual([
      { attempt: 1, host: 'host-a' },
      { attempt: 2, host: 'host-b' },
    ]);
    expect(result.all).toContain('A: its worker stopped answering (stalled job); started again on host-b');
  }, 120_000);

  it('a job whose worker was killed before it reported anything: attempt 1 on an unknown host, attempt 2 where it ran', async () => {
    const queue = uniqueQueue('unreported');
    const project = await tempProject();
    await onePlan(project.dir, 300);
    // A worker that takes the job and dies before its first progress update: BullMQ counts the start, nobody reported it.
    const engine = engineFor(parseConnection(server!.url));
    let taken!: () => void;
    const tookJob = new Promise<void>((resolve) => (taken = resolve));
    const silent = new engine.classes.Worker(
      queue,
      () => {
        taken();
        return new Promise(() => {});
      },
      { connection: engine.connection(), concurrency: 1, lockDuration: 2000, stalledInterval: 1000, maxStalledCount: 2 },
    );
    const orchestration = run('orchestrate', ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--queue', queue], project.dir, {
      DTO_BULLMQ_CONNECTION: server!.url,
    });
    await tookJob;
    await silent.close(true); // Stops renewing the job's lock, as a killed host does.
    await engine.close();
    const survivor = await startWorkerProc({ name: 'host-c', queue, concurrency: 1, url: server!.url, dirs, workers });
    const result = await orchestration;
    await stopWorkers([survivor]);
    expect(result.exitCode, result.all).toBe(0);
    const task = (await project.state())!.tasks.A!;
    expect(task.status).toBe('completed');
    expect(task.attempts).toBe(2);
    expect(task.attempt_hosts).toEqual([
      { attempt: 1, host: UNREPORTED_HOST },
      { attempt: 2, host: 'host-c' },
    ]);
    expect(survivor.lines.filter((l) => l.event === 'started').map((l) => l.start)).toEqual([2]);
  }, 120_000);
  /**
   * Starts a one-task plan on a worker (host-d), SIGKILLs its orchestrator once the job started, waits for the worker
   * to reach `workerEvent` when given, then runs `orchestrate --resume`.
   */
  async function resumeAfterKill(name: string, delayMs: number, workerEvent?: 'completed') {
    const queue = uniqueQueue(name);
    const worker = await startWorkerProc({ name: 'host-d', queue, concurrency: 2, url: server!.url, dirs, workers });
    const project = await tempProject();
    await onePlan(project.dir, delayMs);
    const env = { DTO_BULLMQ_CONNECTION: server!.url };
    const args = ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--queue', queue];
    const first = start('orchestrate', args, project.dir, env);
    const waitForWorker = async (event: string) => {
      const deadline = Date.now() + 60_000;
      while (!worker.lines.some((l) => l.event === event)) {
        if (Date.now() > deadline) throw new Error(`host-d did not get to ${event}: ${worker.stderr.join('')}`);
        await sleep(20);
      }
    };
    await waitForWorker('started');
    first.kill('SIGKILL');
    await first;
    if (workerEvent) await waitForWorker(workerEvent);
    const resumed = await run('orchestrate', [...args, '--resume'], project.dir, env);
    await stopWorkers([worker]);
    return { resumed, worker, project };
  }

  it('--resume after the orchestrator was SIGKILLed follows the job still running on a worker instead of adding another attempt', async () => {
    const { resumed, worker, project } = await resumeAfterKill('resume', 4000);
    expect(resumed.exitCode, resumed.all).toBe(0);
    // Still running when the resumed run looks (followed), or ended just before on a slow machine (its result taken):
    // either way the job of attempt 1 is the task's, and no second one is added.
    expect(resumed.all).toMatch(
      /A: the job of its attempt 1 (is still active; following it instead of starting another|completed while no orchestrator followed it; taking its result)/,
    );
    // One agent ran, once: no second job beside the live one.
    expect(worker.lines.filter((l) => l.event === 'started').length).toBe(1);
    expect(worker.lines.filter((l) => l.event === 'completed').length).toBe(1);
    const task = (await project.state())!.tasks.A!;
    expect(task.status).toBe('completed');
    expect(task.attempt_hosts.map((h) => h.host)).toEqual(['host-d']);
  }, 120_000);

  it('--resume after the orchestrator was SIGKILLed takes the result of a job that completed meanwhile instead of running the task again', async () => {
    const { resumed, worker, project } = await resumeAfterKill('completed-meanwhile', 300, 'completed');
    expect(resumed.exitCode, resumed.all).toBe(0);
    expect(resumed.all).toContain('A: the job of its attempt 1 completed while no orchestrator followed it; taking its result');
    // The agent ran once, before the resume; the resumed run added no job.
    expect(worker.lines.filter((l) => l.event === 'started').length).toBe(1);
    const task = (await project.state())!.tasks.A!;
    expect(task.status).toBe('completed');
    expect(task.attempt_hosts.map((h) => h.host)).toEqual(['host-d']);
    expect(await readFile(task.result_path!, 'utf8')).toContain('status: completed');
  }, 120_000);
});
