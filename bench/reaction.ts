// Benchmark 5: poll-session's reaction time, from a committed state change to the line on its stdout (not a terminal).
import { setTimeout as delay } from 'node:timers/promises';
import { resolveSessionPaths } from '../scripts/lib/state/session-paths.ts';
import { updateState } from '../scripts/lib/state/state-store.ts';
import { openSession, registerTask, setStatus } from '../scripts/lib/scheduling/transitions.ts';
import { seededRandom } from './lib/dag.ts';
import { median, p95 } from './lib/stats.ts';
import { startScript, tempProject, waitFor } from './lib/procs.ts';

/** Reaction samples (ms). */
export interface ReactionRow {
  samples: number;
  medianMs: number;
  p95Ms: number;
  maxMs: number;
  /** How long the benchmark's own write took (lock, write, rename, event), for scale. */
  writeMedianMs: number;
  problems: string[];
}

/**
 * Runs poll-session on a session that never ends (an anchor task owned by this live process), then
 * registers `samples` probe tasks one at a time at random intervals, timing each from the moment
 * the change is committed (state renamed and event appended) to the first stdout chunk naming it.
 */
export async function benchReaction(options: { samples: number; log: (line: string) => void }): Promise<ReactionRow> {
  const project = await tempProject('reaction');
  const paths = resolveSessionPaths({ cwd: project.dir });
  const random = seededRandom(7);
  const problems: string[] = [];
  await updateState(paths, (tx) => {
    const state = openSession(tx, { sessionId: 'reaction' });
    registerTask(tx, state, { name: 'anchor', goal: 'keep the session open', runner: 'mock', pid: process.pid });
    setStatus(tx, state, 'anchor', 'waiting', { waiting_on: [] });
  });
  options.log(`reaction: poll-session, ${options.samples} changes ...`);
  const poll = startScript('poll-session', ['--timeout', '600'], project.dir);
  const seenAt = new Map<string, number>();
  let buffer = '';
  poll.proc.stdout!.on('data', (chunk: string) => {
    const at = Date.now();
    buffer += chunk;
    for (const match of buffer.matchAll(/probe-\d+/g)) if (!seenAt.has(match[0])) seenAt.set(match[0], at);
  });
  const latencies: number[] = [];
  const writes: number[] = [];
  try {
    const ready = Date.now() + 30_000;
    while (!buffer.includes('anchor') && Date.now() < ready && poll.proc.exitCode === null) await delay(20);
    if (!buffer.includes('anchor'))
      problems.push(`poll-session printed nothing about the session within 30 s (exit ${poll.proc.exitCode}; ${poll.stderr.slice(-200)})`);
    await delay(500);
    for (let i = 1; i <= options.samples && poll.proc.exitCode === null; i++) {
      await delay(150 + Math.floor(random() * 350));
      const name = `probe-${i}`;
      const before = Date.now();
      await updateState(paths, (tx) => {
        registerTask(tx, tx.state!, { name, goal: `probe ${i}`, runner: 'mock', pid: process.pid });
      });
      const committed = Date.now();
      writes.push(committed - before);
      const deadline = committed + 5000;
      while (!seenAt.has(name) && Date.now() < deadline) await delay(1);
      const at = seenAt.get(name);
      if (at === undefined) problems.push(`${name} not printed within 5 s`);
      else latencies.push(Math.max(0, at - committed));
    }
  } finally {
    poll.proc.kill('SIGTERM');
    await waitFor(poll, 10_000).catch(() => null);
    await project.remove();
  }
  const row: ReactionRow = {
    samples: latencies.length,
    medianMs: median(latencies),
    p95Ms: p95(latencies),
    maxMs: Math.max(...latencies),
    writeMedianMs: median(writes),
    problems: [...new Set(problems)].slice(0, 5),
  };
  options.log(`  median ${row.medianMs} ms, p95 ${row.p95Ms} ms, max ${row.maxMs} ms`);
  return row;
}
