// Reads the session state without the lock, and changes it only under the lock by write-temp-then-rename, fenced.
import { statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describeFsError, writeFileAtomic } from './atomic-write.ts';
import { OrchestratorError } from '../core/errors.ts';
import { appendEvents, refuseSymlink, type EventType, type SessionEvent, type TakeBackEvents } from './events.ts';
import { LockLostError, tempPathFor, withLock, type LockHandle, type LockOptions } from './lock.ts';
import type { SessionState } from './model.ts';
import type { SessionPaths } from './session-paths.ts';
import { archiveSession } from './session-archive.ts';
import { parseState, parseStateWithJson, remember, stringifyState, validateState } from './state-text.ts';

export { decodeState, encodeState } from './state-text.ts';
export { createSessionState } from './model.ts';

/**
 * Reads `latest.yaml` without taking the lock. Writers replace the file by rename, so a reader
 * sees either the old or the new state, never half of one.
 *
 * @returns the validated state, or `null` when there is no session yet.
 * @throws OrchestratorError (exit 2): `corrupt_state` when the file does not parse or validate;
 *   `session_vanished` when this process has seen the session and its file is now missing;
 *   `usage` when the session folder is a file.
 */
export async function readState(paths: SessionPaths): Promise<SessionState | null> {
  let text: string;
  try {
    text = await fs.readFile(paths.statePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      if (joined.has(paths.statePath)) throw sessionVanished(paths);
      return null;
    }
    throw sessionFolderError(error, paths, 'read');
  }
  const state = await parseState(text, paths.statePath);
  joined.set(paths.statePath, state.session_id);
  return state;
}

/**
 * The session each state file held when this process last read or wrote it. A state file that
 * this process has seen and that is then missing was deleted (or moved) behind our back: writers
 * never remove it (archiving keeps `latest.yaml` in place until the new state is renamed over it).
 */
const joined = new Map<string, string>();

function sessionVanished(paths: SessionPaths): OrchestratorError {
  const id = joined.get(paths.statePath);
  return new OrchestratorError(
    'session_vanished',
    `The session state file ${paths.statePath} (session ${id}) was deleted or moved away while this process was using it, ` +
      'so this change was not recorded. Result files already written are kept (by default in .agent/results). ' +
      `To go on, put the file back (an archived copy is ${path.join(paths.dir, `${id}.yaml`)} if the session was archived) and run poll-session, ` +
      'or start a new session (start the agents again, or orchestrate without --resume).',
  );
}

/**
 * A clear error for a session folder that cannot be used: a path through a file (ENOTDIR, or
 * EEXIST from mkdir), or any file-system error described in words.
 */
function sessionFolderError(error: unknown, paths: SessionPaths, action: string): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOTDIR' || code === 'EEXIST') {
    let blocker = paths.dir;
    for (let at = paths.dir; ; at = path.dirname(at)) {
      try {
        if (!statSync(at).isDirectory()) blocker = at;
        break;
      } catch {
        // Missing (or ENOTDIR itself): look one level up.
      }
      if (path.dirname(at) === at) break;
    }
    return new OrchestratorError(
      'usage',
      `The session folder ${paths.dir} cannot be used: ${blocker} is a file, not a folder. ` +
        'Pass --session_dir with a folder path (a missing folder is created), or move that file aside.',
      { cause: error },
    );
  }
  return describeFsError(error, paths.statePath, action);
}

/**
 * Like {@link readState}, but a missing session is an error.
 * @throws OrchestratorError `no_session` (exit 2) saying how to start one.
 */
export async function requireState(paths: SessionPaths): Promise<SessionState> {
  const state = await readState(paths);
  if (!state) {
    throw new OrchestratorError(
      'no_session',
      `No session found: ${paths.statePath} does not exist. Start agents first (spawn-agent-mock, spawn-agent or orchestrate), ` +
        'run this from the project directory they ran in, or pass the same --session_dir.',
    );
  }
  return state;
}

/** What a change may do inside {@link updateState}. */
export interface StateTransaction {
  /** The state to change in place, or `null` when there is no session; assign a new one to create it. */
  state: SessionState | null;
  /** Moves the current session to `<session_id>.yaml` (and its events) before the new state is written. */
  archiveCurrent(): void;
  /** Records an event, appended to `events.jsonl` with the commit (right before the state's rename). */
  emit(type: EventType, fields?: Omit<SessionEvent, 'ts' | 'session_id' | 'type'>): void;
  /** The time of this change (one clock read for every field it sets). */
  readonly now: Date;
}

/**
 * Changes the state under the lock: take the lock, read and validate, let `change` edit the state,
 * write a temporary file (fsynced), check the fence, append the events, rename the temporary file
 * over `latest.yaml`, release.
 *
 * The events go to `events.jsonl` right before the rename: a reader that sees a state finds its
 * events already logged, and a writer killed at any moment never leaves a committed change without
 * its events (a rename that fails takes them back). Killed in the instant between the append and
 * the rename, a writer leaves events of a change that did not commit; the state is the record.
 *
 * The fence, right before the rename: the lock file still carries our token (lock.ts) and
 * `latest.yaml` is still the version we read (dev, inode, size, mtime, ctime). If either changed,
 * the temporary file is removed, nothing is renamed, and the whole change is done again on the
 * current state (up to 5 times, then `lock_failed`). So no committed update is ever overwritten by
 * a writer that was paused, on this host (where a live holder is never robbed) and, but for the
 * moment between the check and the rename, on network file systems.
 *
 * Nothing is written when the state did not change. A state file that does not validate is never
 * overwritten: the error propagates and the file stays byte-for-byte as it was. A failed write
 * never leaves its temporary file behind (see atomic-write.ts); the temporary file of a writer
 * killed mid-commit is removed by whoever takes over its lock.
 *
 * @param change - edits `tx.state` in place (or replaces it) and returns a value; it may throw to abort.
 * @param options.yieldMs - let other waiters for the lock go first (see LockOptions in lock.ts).
 * @returns what `change` returned.
 * @throws OrchestratorError (exit 2): `corrupt_state`; `lock_failed` (a live holder kept the lock
 *   for minutes: named, with what to do); `write_failed` (full disk, quota, read-only or immutable
 *   file or folder: said in words, nothing changed); `session_vanished` (this process's session file
 *   was deleted); `unsafe_path` (events.jsonl is a symbolic link); `usage` (the session folder is a
 *   file); or whatever `change` throws.
 */
export async function updateState<T>(
  paths: SessionPaths,
  change: (tx: StateTransaction) => T,
  options: Pick<LockOptions, 'yieldMs'> = {},
): Promise<T> {
  try {
    await fs.mkdir(paths.dir, { recursive: true });
  } catch (error) {
    throw sessionFolderError(error, paths, 'create the session folder for');
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await withLock(paths.lockPath, (lock) => applyChange(paths, change, lock), options);
    } catch (error) {
      if (!(error instanceof LockLostError || error instanceof StaleRead)) throw error;
      // Nothing was committed. A lost lock (only possible off this host) or a state file changed
      // without the lock: do the whole change again on the current state, a few times, then say so.
      if (attempt < FENCE_RETRIES) continue;
      throw new OrchestratorError(
        'lock_failed',
        `Gave up changing ${paths.statePath} after ${attempt} attempts: each time, just before the commit, ${error.message}. ` +
          'Nothing was overwritten. Some other program changes that file (or its lock) without taking the lock: stop it, then run the command again.',
        { cause: error },
      );
    }
  }
}

/** Attempts of one change when the commit fence fails (each under a fresh lock). */
const FENCE_RETRIES = 5;

/** The state file changed between our read and our commit although we held the lock. */
class StaleRead extends Error {}

/** What a state file was when read: its text and the identity of that version of the file. */
interface Snapshot {
  text: string;
  /** dev, ino, size, mtime and ctime (ns) at the read; any rename over it or write to it changes one of them. */
  version: string;
  mode: number;
}

function versionOf(st: import('node:fs').BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** Reads the state file and its version from one open descriptor; null when it does not exist. */
async function readSnapshot(paths: SessionPaths): Promise<Snapshot | null> {
  let handle: import('node:fs/promises').FileHandle;
  try {
    handle = await fs.open(paths.statePath, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw sessionFolderError(error, paths, 'read');
  }
  try {
    const st = await handle.stat({ bigint: true });
    const text = await handle.readFile('utf8');
    return { text, version: versionOf(st), mode: Number(st.mode) };
  } finally {
    await handle.close().catch(() => {});
  }
}

/** The fence's second half: the state file is still the version read at the start of the change. */
async function checkUnchanged(paths: SessionPaths, read: Snapshot | null): Promise<void> {
  let now: string | null = null;
  try {
    now = versionOf(await fs.stat(paths.statePath, { bigint: true }));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw sessionFolderError(error, paths, 'read');
  }
  if (read !== null && now === null) throw sessionVanished(paths);
  if ((read === null) !== (now === null) || (read !== null && read.version !== now)) {
    throw new StaleRead(`${paths.statePath} was ${read === null ? 'created' : 'replaced or changed'} by another process after we read it`);
  }
}

async function applyChange<T>(paths: SessionPaths, change: (tx: StateTransaction) => T, lock: LockHandle): Promise<T> {
  const read = await readSnapshot(paths);
  if (read === null && joined.has(paths.statePath)) throw sessionVanished(paths);
  const parsed = read === null ? null : await parseStateWithJson(read.text, paths.statePath);
  const current = parsed?.state ?? null;
  if (current) joined.set(paths.statePath, current.session_id);
  // Compared after the change to skip writing when nothing changed.
  const currentJson = parsed?.json ?? null;
  const events: Array<Omit<SessionEvent, 'session_id'>> = [];
  let archive = false;
  const now = new Date();
  const tx: StateTransaction = {
    state: current,
    archiveCurrent: () => {
      archive = true;
    },
    emit: (type, fields = {}) => {
      events.push({ ts: now.toISOString(), type, ...fields });
    },
    now,
  };
  const value = change(tx);
  const next = tx.state;
  if (next === null) return value;
  const checked = await validateState(next);
  if ('issues' in checked) {
    // A bug of ours, never the user's input (flags and plans are validated before they reach a state).
    throw new Error(`refused to write an invalid session state to ${paths.statePath}: ${checked.issues}; nothing was written`);
  }
  const validated = checked.state;
  const unchanged = !archive && currentJson !== null && JSON.stringify(validated) === currentJson;
  if (unchanged && events.length === 0) return value;
  if (read !== null && (read.mode & 0o222) === 0) {
    throw new OrchestratorError(
      'write_failed',
      `The session state file ${paths.statePath} is read-only (mode ${(read.mode & 0o777).toString(8).padStart(4, '0')}), so it was not changed. ` +
        `If that is meant to freeze the session, leave it; to let the scripts go on, make it writable (chmod u+w "${paths.statePath}") and run the command again.`,
    );
  }
  validated.updated_at = now.toISOString();
  const json = JSON.stringify(validated);

  const text = await stringifyState(validated);
  let takeBack: TakeBackEvents | null = null;
  try {
    await writeFileAtomic(paths.statePath, text, {
      // Named with our lock's token: if we die mid-commit, whoever takes over the lock removes it.
      tempPath: tempPathFor(paths.statePath, lock.token),
      action: 'update the session state',
      beforeCommit: async () => {
        await lock.verify();
        await checkUnchanged(paths, read);
        await refuseSymlink(paths.eventsPath);
        if (archive && current !== null) await archiveSession(paths, current.session_id);
        // Logged before the rename, so a writer killed at any moment never leaves a committed change without
        // its events, and whoever sees the new state finds them already in the log. A failed rename takes them back.
        takeBack = await appendEvents(
          paths.eventsPath,
          events.map((event) => ({ ...event, session_id: validated.session_id }) as SessionEvent),
        );
      },
    });
  } catch (error) {
    await (takeBack as TakeBackEvents | null)?.().catch(() => {});
    throw error;
  }
  remember(paths.statePath, text, json);
  joined.set(paths.statePath, validated.session_id);
  return value;
}
