// The actual timeline of a session: when each attempt of each task ran, from events.jsonl (or the state alone).
import type { SessionEvent } from '../state/events.ts';
import { getTask, type SessionState } from '../state/model.ts';

/** How a run of a task ended: `retrying` is a try that failed and was tried again; `running` has not ended. */
export type SegmentOutcome = 'completed' | 'failed' | 'retrying' | 'cancelled' | 'running';

/** One run of a task: from a `started` event to the event that ended it. Times ISO 8601, durations ms. */
export interface TimelineSegment {
  task: string;
  agent: string;
  /** The attempt number the run counted as, or null when unknown (state-only timelines). */
  attempt: number | null;
  start: string;
  end: string;
  duration_ms: number;
  outcome: SegmentOutcome;
}

/** The event types (and statuses) that end a run, and how. A Map: event types come from a file. */
const CLOSING = new Map<string, SegmentOutcome>([
  ['retrying', 'retrying'],
  ['completed', 'completed'],
  ['failed', 'failed'],
  ['cancelled', 'cancelled'],
  ['skipped', 'cancelled'],
  ['merge_failed', 'failed'],
]);

function closingOutcome(type: string): SegmentOutcome | undefined {
  return CLOSING.get(type);
}

/** A run opened by a `started` event; `agent` is the event's (the task's record names it when absent). */
interface OpenRun {
  start: string;
  attempt: number | null;
  agent: string | undefined;
}

/**
 * The timeline built one event at a time, so a follower keeps one entry per run instead of the whole log
 * (poll-session on a log of hundreds of MB). Events of one session are kept: with `sessionId` given, other
 * sessions' events are ignored; without it, the first event's session is followed and a new session starts over.
 */
export class TimelineBuilder {
  #session: string | null;
  readonly #fixed: boolean;
  #closed: Array<{ task: string; run: OpenRun; end: string; outcome: SegmentOutcome }> = [];
  #open = new Map<string, OpenRun>();

  constructor(sessionId?: string) {
    this.#session = sessionId ?? null;
    this.#fixed = sessionId !== undefined;
  }

  /** Takes one event (any type; only starts, registrations and ends count). */
  add(event: SessionEvent): void {
    if (!event.task) return;
    const outcome = event.type === 'registered' ? 'failed' : closingOutcome(event.type);
    if (event.type !== 'started' && outcome === undefined) return;
    if (event.session_id !== this.#session) {
      if (this.#fixed) return;
      this.#session = event.session_id;
      this.#closed = [];
      this.#open.clear();
    }
    if (event.type === 'started') {
      this.#close(event.task, event.ts, 'retrying');
      this.#open.set(event.task, {
        start: event.ts,
        attempt: typeof event.attempt === 'number' ? event.attempt : null,
        agent: event.agent,
      });
    } else {
      this.#close(event.task, event.ts, outcome!);
    }
  }

  #close(task: string, end: string, outcome: SegmentOutcome): void {
    const run = this.#open.get(task);
    if (!run) return;
    this.#open.delete(task);
    this.#closed.push({ task, run, end, outcome });
  }

  /**
   * The timeline against `state`, sorted by start time then task name: each run of a task the state knows is a
   * segment; a run not ended by an event ends at the record's `ended_at` or, still going, at `now`; a task with
   * no events falls back to its record's `started_at`/`ended_at`. Events of another session than the state's count for nothing.
   * @param now - ms since the epoch.
   */
  build(state: SessionState, now: number): TimelineSegment[] {
    const mine = this.#session === state.session_id;
    const segments: TimelineSegment[] = [];
    for (const { task, run, end, outcome } of mine ? this.#closed : []) {
      const known = getTask(state.tasks, task);
      if (known) segments.push({ ...runSegment(task, run.agent ?? known.agent, run.attempt, run.start, end), outcome });
    }
    for (const [task, run] of mine ? this.#open : []) {
      const record = getTask(state.tasks, task);
      if (!record) continue;
      const ended = record.ended_at && Date.parse(record.ended_at) >= Date.parse(run.start) ? record.ended_at : null;
      const outcome: SegmentOutcome = ended ? (CLOSING.get(record.status) ?? 'failed') : 'running';
      segments.push({
        ...runSegment(task, run.agent ?? record.agent, run.attempt, run.start, ended ?? new Date(now).toISOString()),
        outcome,
      });
    }
    const seen = new Set(segments.map((segment) => segment.task));
    for (const [task, record] of Object.entries(state.tasks)) {
      if (seen.has(task) || !record.started_at) continue;
      const outcome: SegmentOutcome = record.ended_at ? (CLOSING.get(record.status) ?? 'failed') : 'running';
      segments.push({
        ...runSegment(task, record.agent, record.attempts || null, record.started_at, record.ended_at ?? new Date(now).toISOString()),
        outcome,
      });
    }
    return segments.sort(
      (a, b) =>
        Date.parse(a.start) - Date.parse(b.start) ||
        (a.task < b.task ? -1 : a.task > b.task ? 1 : 0) ||
        (a.attempt ?? 0) - (b.attempt ?? 0),
    );
  }
}

/**
 * Builds the timeline, sorted by start time then task name.
 *
 * With events, each attempt is its own segment (retries and replacements show as separate bars);
 * a task whose events are missing falls back to its record's `started_at`/`ended_at`. A run still
 * going ends at `now`.
 *
 * @param events - the session's events (others are ignored), or null to use the state alone.
 * @param now - ms since the epoch, the end of runs that have not ended.
 */
export function buildTimeline(state: SessionState, events: readonly SessionEvent[] | null, now: number): TimelineSegment[] {
  const builder = new TimelineBuilder(state.session_id);
  for (const event of events ?? []) builder.add(event);
  return builder.build(state, now);
}

function runSegment(task: string, agent: string, attempt: number | null, start: string, end: string): Omit<TimelineSegment, 'outcome'> {
  return { task, agent, attempt, start, end, duration_ms: Math.max(0, Date.parse(end) - Date.parse(start)) };
}
