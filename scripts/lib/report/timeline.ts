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
  const segments: TimelineSegment[] = [];
  const open = new Map<string, { start: string; attempt: number | null; agent: string }>();
  const close = (task: string, end: string, outcome: SegmentOutcome) => {
    const run = open.get(task);
    if (!run) return;
    open.delete(task);
    segments.push({
      task,
      agent: run.agent,
      attempt: run.attempt,
      start: run.start,
      end,
      duration_ms: Math.max(0, Date.parse(end) - Date.parse(run.start)),
      outcome,
    });
  };
  for (const event of events ?? []) {
    const known = event.task ? getTask(state.tasks, event.task) : undefined;
    if (event.session_id !== state.session_id || !event.task || !known) continue;
    const agent = event.agent ?? known.agent;
    if (event.type === 'started') {
      close(event.task, event.ts, 'retrying');
      open.set(event.task, { start: event.ts, attempt: typeof event.attempt === 'number' ? event.attempt : null, agent });
    } else if (event.type === 'registered') {
      close(event.task, event.ts, 'failed');
    } else if (closingOutcome(event.type)) {
      close(event.task, event.ts, closingOutcome(event.type)!);
    }
  }
  for (const [task, run] of open) {
    const record = getTask(state.tasks, task)!;
    const ended = record.ended_at && Date.parse(record.ended_at) >= Date.parse(run.start) ? record.ended_at : null;
    const outcome: SegmentOutcome = ended ? (CLOSING.get(record.status) ?? 'failed') : 'running';
    segments.push({ ...runSegment(task, run.agent, run.attempt, run.start, ended ?? new Date(now).toISOString()), outcome });
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
      Date.parse(a.start) - Date.parse(b.start) || (a.task < b.task ? -1 : a.task > b.task ? 1 : 0) || (a.attempt ?? 0) - (b.attempt ?? 0),
  );
}

function runSegment(task: string, agent: string, attempt: number | null, start: string, end: string): Omit<TimelineSegment, 'outcome'> {
  return { task, agent, attempt, start, end, duration_ms: Math.max(0, Date.parse(end) - Date.parse(start)) };
}
