// The append-only event log (`events.jsonl`) beside the state file: one JSON object per line. Reading it: event-reader.ts.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { describeFsError } from './atomic-write.ts';
import { NOFOLLOW, refuseSymlink, symlinkRefused } from './event-reader.ts';

export { readEvents, refuseSymlink, symlinkRefused } from './event-reader.ts';

export type { EventType, SessionEvent } from './event-types.ts';
import type { SessionEvent } from './event-types.ts';

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
