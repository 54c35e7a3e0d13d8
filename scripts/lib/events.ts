// The append-only event log (`events.jsonl`) beside the state file: one JSON object per line.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { describeFsError } from './atomic-write.ts';
import { OrchestratorError } from './errors.ts';

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
  | 'replaced';

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

/** O_NOFOLLOW where the platform has it (Linux, macOS); elsewhere {@link refuseSymlink} checks first. */
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/** The error for an event log that is a symbolic link (`unsafe_path`, exit 2). */
export function symlinkRefused(eventsPath: string, cause?: unknown): OrchestratorError {
  return new OrchestratorError(
    'unsafe_path',
    `Refusing to use ${eventsPath}: it is a symbolic link, and the event log is only ever a plain file of the session folder ` +
      `(a link could make the scripts write into a file elsewhere). Remove the link (rm "${eventsPath}"; a new log is started) or move it aside, then run the command again.`,
    { cause },
  );
}

/**
 * Refuses an event log that is a symbolic link (it could point outside the session folder).
 * Called before a commit, so a refused log leaves the state untouched.
 * @throws OrchestratorError `unsafe_path` (exit 2).
 */
export async function refuseSymlink(eventsPath: string): Promise<void> {
  try {
    if ((await fs.lstat(eventsPath)).isSymbolicLink()) throw symlinkRefused(eventsPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/**
 * Appends events, one line each, in a single write (O_APPEND, so concurrent writers do not interleave lines).
 * Never follows a symbolic link (O_NOFOLLOW).
 * @throws OrchestratorError `unsafe_path` when the log is a symbolic link; `write_failed` when the disk refuses the write.
 */
export async function appendEvents(eventsPath: string, events: SessionEvent[]): Promise<void> {
  if (events.length === 0) return;
  if (NOFOLLOW === 0) await refuseSymlink(eventsPath);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(eventsPath, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | NOFOLLOW, 0o666);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkRefused(eventsPath, error);
    throw describeFsError(error, eventsPath, 'append to the event log');
  }
  try {
    await handle.write(events.map((event) => JSON.stringify(event)).join('\n') + '\n');
  } catch (error) {
    throw describeFsError(error, eventsPath, 'append to the event log');
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * Reads the event log; a missing file is an empty log and a torn last line is ignored.
 * @throws OrchestratorError `unsafe_path` when the log is a symbolic link.
 * @returns the events in the order they were written.
 */
export async function readEvents(eventsPath: string): Promise<SessionEvent[]> {
  let text: string;
  try {
    if (NOFOLLOW === 0) await refuseSymlink(eventsPath);
    const handle = await fs.open(eventsPath, constants.O_RDONLY | NOFOLLOW);
    try {
      text = await handle.readFile('utf8');
    } finally {
      await handle.close().catch(() => {});
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'ELOOP') throw symlinkRefused(eventsPath, error);
    throw error;
  }
  const events: SessionEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      events.push(JSON.parse(line) as SessionEvent);
    } catch {
      // A line being written right now; the next read sees it whole.
    }
  }
  return events;
}
