// poll-session on a session whose events.jsonl is tens of MB: the first slice (no cursor yet) prints its last lines
// and says how many it left out, and reads the log in bounded memory (issue 21, item 21: 27 MB printed, 500 MB taken).
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { SessionEvent } from '../../scripts/lib/state/events.ts';
import { SLICE_HISTORY_LINES } from '../../scripts/lib/progress/poll-sinks.ts';
import { at, finishedEvents, finishedState, writeSession } from '../support/fixed-session.ts';
import { run, tempProject } from '../support/project.ts';

/** Rounds inserted in the fixture's history: two event lines each (an adaptive-limit change, a conflict prediction). */
const ROUNDS = 100_000;

/**
 * Writes the fixture's events with {@link ROUNDS} rounds in the middle, while `quality` runs: events a long run writes
 * many of without starting or ending anything; @returns the log's size (bytes).
 */
async function writeLargeLog(file: string): Promise<number> {
  const events = finishedEvents();
  const cut = events.findIndex((event) => event.type === 'retrying');
  const out = createWriteStream(file);
  const write = async (event: SessionEvent) => {
    if (!out.write(`${JSON.stringify(event)}\n`)) await once(out, 'drain');
  };
  for (const event of events.slice(0, cut)) await write(event);
  const why = `rate limited (429): ${'the API answered too many requests; '.repeat(5)}`;
  const session = { ts: at(4.6), session_id: 'done-fixture' };
  for (let round = 0; round < ROUNDS; round++) {
    await write({ ...session, type: 'capacity', old_limit: 4, new_limit: 2, max_workers: 8, why });
    const paths = round % 2 === 0 ? ['src/a-long-path/file-name.ts', 'src/other.ts'] : [];
    await write({ ...session, type: 'conflict_predicted', task: 'quality', agent: 'Agent-02', paths });
  }
  for (const event of events.slice(cut)) await write(event);
  out.end();
  await once(out, 'finish');
  return (await stat(file)).size;
}

describe('poll-session on a large event log', () => {
  it(`the first slice prints the last ${SLICE_HISTORY_LINES} lines and how many it left out, with a 48 MB heap`, async () => {
    const project = await tempProject('dto-large-log-');
    await writeSession(project.paths.dir, finishedState('/results'));
    const bytes = await writeLargeLog(path.join(project.paths.dir, 'events.jsonl'));
    expect(bytes).toBeGreaterThan(40e6);
    // A heap cap well below the log's size: the log must never be held whole (it took about 500 MB before).
    const polled = await run('poll-session', ['--timeout', '30'], project.dir, { NODE_OPTIONS: '--max-old-space-size=48' });
    expect(polled.exitCode, polled.stderr.slice(0, 2000)).toBe(1);
    const lines = polled.stdout.trimEnd().split('\n');
    expect(Buffer.byteLength(polled.stdout)).toBeLessThan(16 * 1024);
    expect(lines).toHaveLength(1 + SLICE_HISTORY_LINES + 1);
    expect(lines[0]).toMatch(/^\[poll\] \d+ earlier lines left out \(the last 40 follow\); every event is in events\.jsonl/);
    const omitted = Number(/\d+/.exec(lines[0]!)![0]);
    expect(omitted).toBeGreaterThan(2 * ROUNDS - SLICE_HISTORY_LINES);
    // The last history lines are the fixture's end: the skip and the batches it completed.
    expect(lines.slice(-4, -1).join('\n')).toMatch(/report skipped[^]*Batch 3 of 3 completed/);
    expect(lines.at(-1)).toMatch(/^\[poll\] .*failed/);
    // The next call prints only the summary: the cursor was saved at the end of the log.
    const again = await run('poll-session', ['--timeout', '30'], project.dir, { NODE_OPTIONS: '--max-old-space-size=48' });
    expect(again.stdout.trimEnd().split('\n')).toHaveLength(1);
  }, 120_000);
});
