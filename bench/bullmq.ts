#!/usr/bin/env -S npx tsx
/**
 * bullmq: tasks per second through the BullMQ backend (PostgreSQL on loopback, 3 worker processes, mock agents), beside the local backend.
 *
 * Usage:   npx tsx bench/bullmq.ts [TASKS] [DELAY_MS]
 * Example: npx tsx bench/bullmq.ts 90 0
 * Writes:  a throwaway PostgreSQL and temporary project and worker folders (all removed at the end).
 * Prints:  one Markdown table row per backend: tasks, limit, wall, span (first start to last end), tasks/s; then the ratio.
 * Needs:   initdb and postgres (see test/support/servers.ts); exit 1 when any task did not complete.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ResultPromise } from 'execa';
import { runScript } from '../scripts/lib/launcher/run-script.ts';
import { resolveSessionPaths } from '../scripts/lib/state/session-paths.ts';
import { readState } from '../scripts/lib/state/state-store.ts';
import { startPostgres } from '../test/support/servers.ts';

const tasks = Number(process.argv[2] ?? 90);
const delayMs = Number(process.argv[3] ?? 0);
/** The session's worker limit (the queue's global concurrency), and each of the 3 workers' own concurrency. */
const LIMIT = 12;
const PER_WORKER = 4;

const server = await startPostgres();
const dirs: string[] = [];
const workers: ResultPromise[] = [];
const rows: string[] = [];
let ok = true;
try {
  const queue = `bench-${process.pid}`;
  for (const name of ['host-a', 'host-b', 'host-c']) {
    const dir = await mkdtemp(path.join(os.tmpdir(), `dto-bench-${name}-`));
    dirs.push(dir);
    const worker = runScript(
      'worker',
      ['--agent', 'mock', '--concurrency', String(PER_WORKER), '--cwd', dir, '--queue', queue, '--name', name],
      { cwd: dir, reject: false, env: { DTO_BULLMQ_CONNECTION: server.url }, stdout: 'ignore', stderr: 'pipe' },
    );
    let banner = '';
    worker.stderr?.on('data', (chunk: Buffer) => (banner += chunk.toString()));
    while (!banner.includes(`worker ${name}:`)) {
      if (worker.exitCode !== null) throw new Error(`worker ${name} did not start: ${banner}`);
      await sleep(50);
    }
    workers.push(worker);
  }
  const plan = [
    'tasks:',
    ...Array.from({ length: tasks }, (_, i) => `  - { id: B${i + 1}, goal: "task ${i + 1}", delay_ms: ${delayMs} }`),
  ].join('\n');
  const figures: Record<string, number> = {};
  for (const backend of ['local', 'bullmq'] as const) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dto-bench-orch-'));
    dirs.push(dir);
    await writeFile(path.join(dir, 'plan.yaml'), plan);
    const args = [
      'plan.yaml',
      '--agent',
      'mock',
      '--workers',
      String(LIMIT),
      '--quiet',
      ...(backend === 'bullmq' ? ['--backend', 'bullmq', '--queue', queue] : []),
    ];
    const t0 = performance.now();
    const result = await runScript('orchestrate', args, { cwd: dir, reject: false, env: { DTO_BULLMQ_CONNECTION: server.url }, all: true });
    const wallS = (performance.now() - t0) / 1000;
    const state = await readState(resolveSessionPaths({ cwd: dir }));
    const records = Object.values(state?.tasks ?? {});
    const completed = records.filter((t) => t.status === 'completed').length;
    if (result.exitCode !== 0 || completed !== tasks) {
      ok = false;
      process.stderr.write(`${backend}: exit ${result.exitCode}, ${completed} of ${tasks} completed\n${result.all}\n`);
    }
    const first = Math.min(...records.map((t) => Date.parse(t.started_at ?? '')));
    const last = Math.max(...records.map((t) => Date.parse(t.ended_at ?? '')));
    const spanS = (last - first) / 1000;
    figures[backend] = completed / spanS;
    const hosts = new Set(records.flatMap((t) => t.attempt_hosts.map((h) => h.host)));
    rows.push(
      `| ${backend === 'bullmq' ? `bullmq (PostgreSQL, 3 workers x ${PER_WORKER}${hosts.size ? `, ${hosts.size} hosts used` : ''})` : 'local (plan runner)'} | ${tasks} | ${delayMs} ms | ${LIMIT} | ${wallS.toFixed(2)} s | ${spanS.toFixed(2)} s | ${(completed / spanS).toFixed(1)} |`,
    );
  }
  process.stdout.write(
    [
      '| backend | tasks | mock delay | limit | wall | span | tasks/s (span) |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...rows,
      '',
      `bullmq / local throughput: ${(figures.bullmq! / figures.local!).toFixed(2)}x`,
      '',
    ].join('\n'),
  );
} finally {
  for (const worker of workers) worker.kill('SIGTERM');
  await Promise.all(workers.map((worker) => worker.catch(() => undefined)));
  await server.stop();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
}
process.exit(ok ? 0 : 1);
