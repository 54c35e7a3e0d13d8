// What a follower reads before it follows: the log already written (or the part a cursor showed before), a batch at a
// time in bounded memory, and what it keeps of the session's events for the timeline.
import type { SessionEvent } from '../state/events.ts';
import type { EventReader } from '../state/event-reader.ts';
import type { TimelineBuilder } from '../report/timeline.ts';
import type { BatchCompletedEvent, ProgressEvent, RunTracker } from './run-tracker.ts';

/**
 * Bytes of events.jsonl read per history batch: large enough that a normal log is one batch, small enough that a
 * log of hundreds of MB never sits whole in memory (a 123 MB log read at once took about 500 MB).
 */
export const HISTORY_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Reads the open log from the reader's position up to `until` (a byte offset; Infinity: the end of the file the
 * reader holds) a batch at a time, handing each batch's events to `onBatch`. Nothing is looked for past `until`
 * and no rotation is checked: the next plain `read()` goes on from there.
 */
export async function readHistory(reader: EventReader, until: number, onBatch: (events: SessionEvent[]) => void): Promise<void> {
  for (;;) {
    const batch = await reader.read({ until, maxBytes: HISTORY_BATCH_BYTES });
    if (batch.events.length > 0) onBatch(batch.events);
    if (batch.bytes === 0) return;
  }
}

/**
 * Applies events to the tracker and to the timeline (one entry per run, not the events: memory does not grow with
 * the log). @returns the events with the batch completions they bring, in time order.
 */
export function feed(
  events: readonly SessionEvent[],
  tracker: RunTracker,
  timeline: TimelineBuilder,
  held: ReadonlySet<string>,
): ProgressEvent[] {
  for (const event of events) {
    tracker.apply(event);
    timeline.add(event);
  }
  return mergeByTime(
    events,
    tracker.completedBatches((name) => held.has(name)),
  );
}

/** Puts each derived event right after the last event at or before its time, so history reads in order. */
export function mergeByTime(events: readonly SessionEvent[], derived: readonly BatchCompletedEvent[]): ProgressEvent[] {
  const out: ProgressEvent[] = [...events];
  for (const extra of derived) {
    let at = out.length;
    while (at > 0 && Date.parse(out[at - 1]!.ts) > Date.parse(extra.ts)) at -= 1;
    out.splice(at, 0, extra);
  }
  return out;
}

/**
 * The last `limit` lines of a history, and how many came before them: what a sink prints of a long log
 * (the slices and the attention watch), in memory bounded by `limit` whatever the log's length.
 */
export class HistoryTail {
  readonly #limit: number;
  #lines: string[] = [];
  /** Lines pushed out of the tail. */
  omitted = 0;

  /** @param limit - lines kept (>= 1). */
  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > 2 * this.#limit) this.#trim();
  }

  /** The kept lines, oldest first; `omitted` then counts every line before them. */
  lines(): string[] {
    this.#trim();
    return this.#lines;
  }

  #trim(): void {
    const extra = this.#lines.length - this.#limit;
    if (extra <= 0) return;
    this.omitted += extra;
    this.#lines = this.#lines.slice(extra);
  }
}
