// Reading events.jsonl, the one parser: incrementally by byte offset (only new complete lines, robust to a torn last line
// and to rotation), or all at once (readEvents, built on the same reader). Never through a symbolic link.
import { constants } from 'node:fs';
import { lstat, open, stat, type FileHandle } from 'node:fs/promises';
import { OrchestratorError } from '../core/errors.ts';
import type { SessionEvent } from './event-types.ts';

/** O_NOFOLLOW where the platform has it (Linux, macOS); elsewhere {@link refuseSymlink} checks first. */
export const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

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
    if ((await lstat(eventsPath)).isSymbolicLink()) throw symlinkRefused(eventsPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** What one {@link EventReader.read} found. */
export interface EventBatch {
  /** New events, in the order they were written. */
  events: SessionEvent[];
  /** The file was replaced (session archived and a new one started) or truncated since the last read. */
  rotated: boolean;
  /** Complete lines that were not JSON objects, skipped (a torn line at the end of a rotated file counts too). */
  invalidLines: number;
  /** Bytes read from the file by this call (0: nothing new up to the limit). */
  bytes: number;
}

/** Reads an append-only JSON-lines file a little at a time. */
export interface EventReader {
  /**
   * Returns the events appended since the last call (all of them on the first call).
   * A missing file is an empty log. Never returns a line that has no newline yet: it waits for the rest.
   */
  read(options?: ReadOptions): Promise<EventBatch>;
  /**
   * Where the next read starts: the open file's inode and the byte offset just past the last
   * complete line returned (a torn line being written is not counted). Null before the file exists.
   */
  position(): EventPosition | null;
  /** Closes the open file, if any, for good: a read still in flight keeps no descriptor, a later read returns nothing. */
  close(): Promise<void>;
}

/** A place in one events.jsonl file: which file (inode) and how far (bytes). */
export interface EventPosition {
  ino: number;
  offset: number;
}

/** Options of {@link EventReader.read}. */
export interface ReadOptions {
  /**
   * Read no further than this byte offset of the current file (a line end, e.g. a saved
   * {@link EventPosition.offset}), and do not look for rotation: for replaying what came before a
   * cursor. The next read goes on from there.
   */
  until?: number;
  /**
   * The file is complete (a one-shot read): also take a last line that has no newline when it is
   * a whole event; a torn one is counted in `invalidLines` and dropped.
   */
  final?: boolean;
  /**
   * With `until`: stop after about this many bytes (whole 64 KiB chunks, at least one), so a large log can be
   * read a batch at a time in bounded memory; call again while {@link EventBatch.bytes} is not 0.
   */
  maxBytes?: number;
}

const CHUNK_BYTES = 64 * 1024;

/**
 * Parses the complete lines of `buffer` into `out`; with `final`, the unterminated rest too (the end of
 * a file read up to a fixed point). @returns the unterminated rest, kept for the next read.
 */
function takeLines(buffer: Buffer, out: EventBatch, final: boolean): Buffer {
  let start = 0;
  for (let nl = buffer.indexOf(0x0a, start); nl !== -1; nl = buffer.indexOf(0x0a, start)) {
    parseLine(buffer.subarray(start, nl).toString('utf8'), out);
    start = nl + 1;
  }
  if (final && start < buffer.length) {
    parseLine(buffer.subarray(start).toString('utf8'), out);
    return Buffer.alloc(0);
  }
  return buffer.subarray(start);
}

/** Opens the log read-only, never through a symbolic link; null when it does not exist. The descriptor never leaks. */
async function openLog(eventsPath: string): Promise<{ handle: FileHandle; ino: number } | null> {
  let opened: FileHandle;
  try {
    // Never through a symbolic link: the log is a plain file of the session folder.
    if (NOFOLLOW === 0) await refuseSymlink(eventsPath);
    opened = await open(eventsPath, constants.O_RDONLY | NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkRefused(eventsPath, error);
    throw error;
  }
  try {
    return { handle: opened, ino: (await opened.stat()).ino };
  } catch (error) {
    await opened.close().catch(() => {});
    throw error;
  }
}

/**
 * Opens a reader on `events.jsonl`.
 *
 * The file is read from an open descriptor at a byte offset, so nothing appended between two reads
 * is missed. When the session is archived, the file is renamed to `<session_id>.events.jsonl` and
 * a new `events.jsonl` appears: the reader notices the different inode, drains the rest of the old
 * file through the descriptor it still holds, then follows the new file from its start. A file that
 * shrank in place (truncated) is read again from the start.
 *
 * @param eventsPath - absolute path of the log (see `SessionPaths.eventsPath`).
 * @example
 * const reader = openEventReader(paths.eventsPath);
 * for (const event of (await reader.read()).events) console.log(event.type);
 */
export function openEventReader(eventsPath: string): EventReader {
  let handle: FileHandle | null = null;
  let inode: number | null = null;
  let offset = 0;
  let pending: Buffer = Buffer.alloc(0);
  /** close() was called: a read still in flight must not keep a descriptor it opens after that (it would be left to GC). */
  let closed = false;

  const openCurrent = async (): Promise<boolean> => {
    const opened = closed ? null : await openLog(eventsPath);
    // Closed while it opened (a watch stopped at once), or opened twice by overlapping reads: keep one descriptor only.
    if (opened === null || closed || handle !== null) {
      await opened?.handle.close().catch(() => {});
      return handle !== null && !closed;
    }
    ({ handle, ino: inode } = opened);
    offset = 0;
    pending = Buffer.alloc(0);
    return true;
  };

  /** Reads everything from the offset to the end of the open file (or to `until`) into complete lines. */
  const drain = async (out: EventBatch, until = Infinity, final = false, maxBytes = Infinity): Promise<void> => {
    if (!handle) return;
    // Chunks joined once at the end: a whole log read in one call costs linear time, not quadratic.
    const chunks = [pending];
    const from = offset;
    /** The end (of the file, or `until`) was reached, not only `maxBytes`. */
    let atEnd = false;
    while (offset - from < maxBytes) {
      const want = Math.min(CHUNK_BYTES, until - offset);
      const buffer = Buffer.allocUnsafe(Math.max(want, 0));
      const bytesRead = want <= 0 ? 0 : (await handle.read(buffer, 0, want, offset)).bytesRead;
      if (bytesRead === 0) {
        atEnd = true;
        break;
      }
      offset += bytesRead;
      chunks.push(buffer.subarray(0, bytesRead));
    }
    out.bytes += offset - from;
    pending = takeLines(chunks.length > 1 ? Buffer.concat(chunks) : pending, out, final && atEnd);
  };

  const closeHandle = async (): Promise<void> => {
    const current = handle;
    handle = null;
    inode = null;
    await current?.close().catch(() => {});
  };

  return {
    async read(readOptions = {}) {
      const out: EventBatch = { events: [], rotated: false, invalidLines: 0, bytes: 0 };
      if (!handle && !(await openCurrent())) return out;
      if (readOptions.until !== undefined) {
        await drain(out, readOptions.until, readOptions.final, readOptions.maxBytes);
        return out;
      }
      await drain(out);
      let onDisk: { ino: number; size: number } | null = null;
      try {
        onDisk = await stat(eventsPath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      if (onDisk === null || onDisk.ino !== inode) {
        // Renamed away (archived) or replaced: finish the old file, then follow the new one.
        await drain(out);
        if (pending.length > 0) out.invalidLines += 1;
        await closeHandle();
        out.rotated = true;
        if (onDisk !== null && (await openCurrent())) await drain(out);
      } else if (onDisk.size < offset) {
        out.rotated = true;
        offset = 0;
        pending = Buffer.alloc(0);
        await drain(out);
      }
      return out;
    },
    position() {
      return handle === null || inode === null ? null : { ino: inode, offset: offset - pending.length };
    },
    async close() {
      closed = true;
      await closeHandle();
    },
  };
}

/**
 * Reads the whole event log at once, through the same reader and parser as {@link openEventReader}:
 * a missing file is an empty log; garbled lines and a torn last line are skipped.
 * @throws OrchestratorError `unsafe_path` when the log is a symbolic link.
 * @returns the events in the order they were written.
 */
export async function readEvents(eventsPath: string): Promise<SessionEvent[]> {
  const reader = openEventReader(eventsPath);
  try {
    // The file as it is now, from the descriptor opened first: no rotation check (a one-shot read).
    return (await reader.read({ until: Infinity, final: true })).events;
  } finally {
    await reader.close();
  }
}

function parseLine(line: string, out: EventBatch): void {
  if (line.trim() === '') return;
  try {
    const value: unknown = JSON.parse(line);
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && typeof (value as SessionEvent).type === 'string') {
      out.events.push(value as SessionEvent);
      return;
    }
  } catch {
    // Counted below.
  }
  out.invalidLines += 1;
}
