#!/usr/bin/env -S npx tsx
/**
 * poll-latency: how long poll-session takes to print a status change (target: within 100 ms).
 *
 * Usage:   npx tsx bench/poll-latency.ts [ROUNDS]
 * Example: npx tsx bench/poll-latency.ts 40
 * Writes:  a temporary project (removed at the end). Prints the median, p95 and max latency in ms.
 * Exit:    0 when the median is within 100 ms, 1 otherwise.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runScript } from '../scripts/lib/launcher/run-script.ts';
import { resolveSessionPaths } from '../scripts/lib/state/session-paths.ts';
import { updateState } from '../scripts/lib/state/state-store.ts';
import { openSession, registerTask, setStatus } from '../scripts/lib/scheduling/transitions.ts';

const TARGET_MS = 100;
const rounds = Number(process.argv[2] ?? 30);
const dir = await mkdtemp(path.join(os.tmpdir(), 'dto-bench-'));
const paths = resolveSessionPaths({ cwd: dir });
await updateState(paths, (tx) => {
  const state = openSession(tx, { sessionId: 'bench' });
  registerTask(tx, state, { name: 'a', goal: 'g', runner: 'mock', pid: process.pid });
});

// A long interval, so only file watching can explain a quick reaction.
const poll = runScript('poll-session', ['--interval_ms', '10000', '--timeout', '300'], { cwd: dir, reject: false });
let printed = '';
let waiter: { pattern: RegExp; resolve: (at: number) => void } | null = null;
poll.stdout.on('data', (chunk: Buffer) => {
  printed += chunk.toString();
  if (waiter && waiter.pattern.test(printed)) {
    const { resolve } = waiter;
    waiter = null;
    printed = '';
    resolve(performance.now());
  }
});
const printedSoon = (pattern: RegExp) => new Promise<number>((resolve) => (waiter = { pattern, resolve }));

await printedSoon(/Time elapsed/);
const latencies: number[] = [];
for (let i = 0; i < rounds; i++) {
  for (const [status, pattern] of [
    ['running', /a started by/],
    ['retrying', /a retrying/],
  ] as const) {
    const seen = printedSoon(pattern);
    const t0 = performance.now();
    await updateState(paths, (tx) => setStatus(tx, tx.state!, 'a', status, status === 'retrying' ? { reason: 'bench' } : {}));
    latencies.push((await seen) - t0);
  }
}
await updateState(paths, (tx) => setStatus(tx, tx.state!, 'a', 'completed'));
await poll;
await rm(dir, { recursive: true, force: true });

latencies.sort((a, b) => a - b);
const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
const median = pick(0.5);
process.stdout.write(
  `poll-session reaction to a state change, ${latencies.length} changes: median ${median.toFixed(1)} ms, ` +
    `p95 ${pick(0.95).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms (target ${TARGET_MS} ms)\n`,
);
process.exit(median <= TARGET_MS ? 0 : 1);
