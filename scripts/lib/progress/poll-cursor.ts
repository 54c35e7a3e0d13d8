// poll-session's cursors: how far into a session's events.jsonl the previous call read, so the next prints only what is new.
import { writeFileAtomic } from '../state/atomic-write.ts';
import { readFile, stat } from 'node:fs/promises';
import type { EventPosition } from '../state/event-reader.ts';
import { resolveInside } from '../core/names.ts';
import type { SessionPaths } from '../state/session-paths.ts';

/**
 * Which output a cursor belongs to: `poll` for the slices (the default output off a terminal),
 * `attention` for `--attention` watches. Each keeps its own file, so neither skips what the other printed.
 */
export type CursorKind = 'poll' | 'attention';

/** The cursor file of a session: `<session dir>/poll-cursor.<session_id>.json` (or `attention-cursor.<session_id>.json`). */
export function cursorPath(paths: SessionPaths, sessionId: string, kind: CursorKind = 'poll'): string {
  return resolveInside(paths.dir, `${kind}-cursor.${sessionId}.json`);
}

/** What the cursor file holds. */
interface CursorFile {
  session_id: string;
  /** Inode of the events.jsonl the offset belongs to (a new session's file has another). */
  ino: number;
  /** Bytes of events.jsonl already printed (always a line end). */
  offset: number;
  saved_at: string;
}

/**
 * Reads the session's cursor and checks that it still fits its events.jsonl: the same file
 * (inode) and not beyond its end. A missing, unreadable or stale cursor is null: the caller then
 * prints the session from its start, which is never wrong, only longer.
 *
 * @returns the byte offset to start printing at, or null.
 */
export async function loadCursor(paths: SessionPaths, sessionId: string, kind: CursorKind = 'poll'): Promise<number | null> {
  let saved: Partial<CursorFile>;
  try {
    saved = JSON.parse(await readFile(cursorPath(paths, sessionId, kind), 'utf8')) as Partial<CursorFile>;
  } catch {
    return null;
  }
  if (saved.session_id !== sessionId || !Number.isSafeInteger(saved.offset) || saved.offset! < 0 || !Number.isSafeInteger(saved.ino))
    return null;
  try {
    const events = await stat(paths.eventsPath);
    return events.ino === saved.ino && events.size >= saved.offset! ? saved.offset! : null;
  } catch {
    return null;
  }
}

/**
 * Saves the cursor atomically (a temporary file renamed over the old one; the temporary file is
 * removed if the write fails). Two pollers of one session may overwrite each other's cursor: each
 * then prints some events twice, never misses one it has not printed.
 */
export async function saveCursor(
  paths: SessionPaths,
  sessionId: string,
  position: EventPosition,
  kind: CursorKind = 'poll',
): Promise<void> {
  const file = cursorPath(paths, sessionId, kind);
  const body: CursorFile = { session_id: sessionId, ino: position.ino, offset: position.offset, saved_at: new Date().toISOString() };
  await writeFileAtomic(file, `${JSON.stringify(body)}\n`, { fsync: false, action: 'save the poll cursor' });
}
