// Test helpers for the BullMQ backend: worker processes (each standing for a host) in their own temporary folders, and what their logs show.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { start } from '../support/project.ts';
import type { WorkerLogLine } from '../../scripts/lib/backend/task-worker.ts';

/** A running `worker` process and what it printed. */
export interface WorkerProc {
  name: string;
  dir: string;
  proc: ReturnType<typeof start>;
  /** Its JSON log lines (one per job start and end). */
  lines: WorkerLogLine[];
  stderr: string[];
}

/**
 * Short stalled-job timings so a killed worker's jobs are re-run within a few seconds. BullMQ renews a
 * job's lock every lockDuration / 2, so a live worker whose renewal is more than 2.5 s late (a loaded
 * 2-core machine running PostgreSQL beside the suite) would lose its job to another worker as stalled:
 * with 2 s that happened under load, and a task that nobody killed ran twice.
 */
export const FAST_STALL = ['--lock_ms', '5000', '--stalled_interval_ms', '1000'];

/**
 * Starts `worker --agent mock` (or `options.agent`) in a new temporary folder with the connection in its environment, and
 * waits for its banner (connected, pulling). The folder goes into `dirs`, the process into `workers`
 * (for the caller's afterAll).
 */
export async function startWorkerProc(options: {
  name: string;
  queue: string;
  concurrency: number;
  url: string;
  dirs: string[];
  workers: WorkerProc[];
  /** `claude` (with `args` such as `--skip_preflight`) instead of the mock agent; `env` added to the worker's. */
  agent?: { kind: 'claude'; args: string[]; env: Record<string, string> };
}): Promise<WorkerProc> {
  const { name } = options;
  const dir = await mkdtemp(path.join(os.tmpdir(), `dto-worker-${name}-`));
  options.dirs.push(dir);
  const proc = start(
    'worker',
    [
      '--agent',
      options.agent?.kind ?? 'mock',
      ...(options.agent?.args ?? []),
      '--concurrency',
      String(options.concurrency),
      '--cwd',
      dir,
      '--queue',
      options.queue,
      '--name',
      name,
      ...FAST_STALL,
    ],
    dir,
    { ...options.agent?.env, DTO_BULLMQ_CONNECTION: options.url },
  );
  const worker: WorkerProc = { name, dir, proc, lines: [], stderr: [] };
  let buffered = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    for (const part of parts) if (part.trim()) worker.lines.push(JSON.parse(part) as WorkerLogLine);
  });
  proc.stderr?.on('data', (chunk: Buffer) => worker.stderr.push(chunk.toString()));
  options.workers.push(worker);
  const started = Date.now();
  while (!worker.stderr.join('').includes(`worker ${name}:`)) {
    if (proc.exitCode !== null || Date.now() > started + 60_000) {
      // How it ended and what it printed, so a start lost under load can be told from a crash (stress run 3, under load).
      const how = proc.exitCode !== null ? `exited ${proc.exitCode} (signal ${String(proc.signalCode)})` : 'still running';
      throw new Error(
        `worker ${name} did not start within ${Date.now() - started} ms (${how}); stderr: ${JSON.stringify(worker.stderr.join(''))}; ` +
          `stdout lines: ${JSON.stringify(worker.lines)}`,
      );
    }
    await sleep(50);
  }
  return worker;
}

/** Stops workers gracefully (SIGTERM: running jobs finish) and waits for them. */
export async function stopWorkers(list: WorkerProc[]): Promise<void> {
  for (const worker of list) if (worker.proc.exitCode === null && !worker.proc.killed) worker.proc.kill('SIGTERM');
  await Promise.all(list.map((worker) => worker.proc.catch(() => undefined)));
}

/** SIGKILLs whatever still runs (afterAll, even after a failure) and waits for it. */
export async function killWorkers(list: WorkerProc[]): Promise<void> {
  for (const worker of list) if (worker.proc.exitCode === null) worker.proc.kill('SIGKILL');
  await Promise.all(list.map((worker) => worker.proc.catch(() => undefined)));
}

/** Most jobs running at the same instant over all workers, from their own start/end lines. */
export function peakConcurrency(lines: WorkerLogLine[]): number {
  const points = lines
    .filter((l) => l.event === 'started' || l.event === 'completed' || l.event === 'failed')
    .map((l) => ({ at: Date.parse(l.at), delta: l.event === 'started' ? 1 : -1 }))
    // Ends before starts at the same millisecond: a slot given on is not an overlap.
    .sort((a, b) => a.at - b.at || a.delta - b.delta);
  let running = 0;
  let peak = 0;
  for (const point of points) {
    running += point.delta;
    peak = Math.max(peak, running);
  }
  return peak;
}
