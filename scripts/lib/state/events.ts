// The append-only event log (`events.jsonl`) beside the state file: one JSON object per line. Reading it: event-reader.ts.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { describeFsError } from './atomic-write.ts';
import { NOFOLLOW, refuseSymlink, symlinkRefused } from './event-reader.ts';

export { readEvents, refuseSymlink, symlinkRefused } from './event-reader.ts';

/** Kinds of events. Field names are stable: see `references/workflow.md`. */
export type EventType =
  | 'session_started'
  | 'session_archived'
  | 'registered'
  | 'waiting'
  | 'started'
  | 'retrying'
  | 'completed'
  | 'failed'
  | 'skipped'
  | 'cancelled'
  /** An isolated task's work did not merge (scripts/lib/isolation/): conflicting paths or the gate's output in `error`. */
  | 'merge_failed'
  | 'replaced'
  /** The session's effective worker limit changed (scheduling/capacity.ts): old, new, why. */
  | 'capacity'
  /** The session budget was reached (scheduling/budget.ts): budget, spent. */
  | 'budget'
  /** A running isolated task's work so far would conflict with the integration branch (`paths`; empty: no longer). */
  | 'conflict_predicted';

/** One event line. `ts` is ISO 8601; other fields depend on `type`. */
export interface SessionEvent {
  ts: string;
  session_id: string;
  type: EventType;
  task?: string;
  agent?: string;
  pid?: number | null;
  attempt?: number;
  duration_ms?: number | null;
  error?: string | null;
  [key: string]: unknown;
}

/** Takes back what one {@link appendEvents} call wrote (see there). */
export type TakeBackEvents = () => Promise<void>;

/**
 * Appends events, one line each, in a single write (O_APPEND, so concurrent writers do not interleave lines).
 * Never follows a symbolic link (O_NOFOLLOW). A write that fails part-way is cut back off the log.
 *
 * Called by the state store under the session lock (the only writer of the log), right before the state's
 * rename: the returned function truncates the log back to its length before this append, for a commit whose
 * rename then fails. It is only sound while no other append can have happened since, that is, under that lock.
 * @returns the take-back function, or null when there was nothing to append.
 * @throws OrchestratorError `unsafe_path` when the log is a symbolic link; `write_failed` when the disk refuses the write.
 */
export async function appendEvents(eventsPath: string, events: SessionEvent[]): Promise<TakeBackEvents | null> {
  if (events.length === 0) return null;
  if (NOFOLLOW === 0) await refuseSymlink(eventsPath);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(eventsPath, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | NOFOLLOW, 0o666);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkRefused(eventsPath, error);
    throw describeFsError(error, eventsPath, 'append to the event log');
  }
  let before = -1;
  try {
    before = (await handle.stat()).size;
    await handle.write(events.map((event) => JSON.stringify(event)).join('\n') + '\n');
    const length = before;
    return async () => {
      // Opened again as the append was (never through a symbolic link), then cut back.
      const again = await fs.open(eventsPath, constants.O_WRONLY | NOFOLLOW);
      try {
        await again.truncate(length);
      } finally {
        await again.close().catch(() => {});
      }
    };
  } catch (error) {
    if (before >= 0) await handle.truncate(before).catch(() => {});
    throw describeFsError(error, eventsPath, 'append to the event log');
  } finally {
    await handle.close().catch(() => {});
  }
}
