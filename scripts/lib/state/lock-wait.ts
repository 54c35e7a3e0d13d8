// The waiting side of the session lock (lock.ts): creating the lock file exclusively, being woken when it is released,
// and the error that names a holder waited for too long.
import { watch, type FSWatcher } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { OrchestratorError } from '../core/errors.ts';
import { HOST } from '../process/identity.ts';
import type { LockOwner } from './lock-owner.ts';

/**
 * Creates the lock file holding `record`, atomically and exclusively.
 * @returns 'linked' (the lock is a second name of `prepared`), 'created' (exclusive create), or false when it exists.
 */
export async function createLock(
  lockPath: string,
  prepared: string,
  record: string,
  mode: { link: boolean },
): Promise<'linked' | 'created' | false> {
  if (mode.link) {
    try {
      await fs.link(prepared, lockPath);
      return 'linked';
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      // File systems without hard links (some FUSE and SMB mounts): fall back to an exclusive create,
      // where a reader may briefly see an empty record (then judged by mtime, as 'unknown').
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS' && code !== 'EMLINK') throw error;
      mode.link = false;
    }
  }
  try {
    await fs.writeFile(lockPath, record, { flag: 'wx' });
    return 'created';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

export function busyError(lockPath: string, owner: LockOwner | null, waitedMs: number): OrchestratorError {
  const s = Math.round(waitedMs / 1000);
  if (owner && owner.host === HOST) {
    return new OrchestratorError(
      'lock_failed',
      `Waited ${s} s for the session lock ${lockPath}: process ${owner.pid} holds it (since ${owner.acquired_at}) and is still running. ` +
        `It may be stopped (resume it with: kill -CONT ${owner.pid}) or hung. If it should not be running, end it (kill ${owner.pid}): ` +
        'the lock of a process that has ended is taken over at once. Nothing was changed.',
    );
  }
  const who = owner ? `process ${owner.pid} on host ${owner.host} (since ${owner.acquired_at})` : 'an owner whose record cannot be read';
  return new OrchestratorError(
    'lock_failed',
    `Waited ${s} s for the session lock ${lockPath}, held by ${who}, which keeps it fresh. ` +
      `Stop that process, or, if you are sure no orchestrator script uses this session folder anywhere, remove ${lockPath}. Nothing was changed.`,
  );
}

/**
 * Wakes a lock waiter when the lock file is removed or created (fs.watch on its folder: inotify on
 * Linux, FSEvents or kqueue on macOS), so a hundred waiters cost no polling while one holds the lock
 * (bench/RESULTS.md, "The lock"). Only name events (`rename`: a link, an unlink) of the lock file
 * itself wake it, not the holder's heartbeat or the state file's own writes.
 * @returns null where the folder cannot be watched (too many watches, a file system without
 *   events): the waiter then polls, as it always may.
 */
export function watchRelease(lockPath: string): { wait(ms: number): Promise<boolean>; close(): void } | null {
  const name = path.basename(lockPath);
  let pending = false;
  let wake: (() => void) | null = null;
  let watcher: FSWatcher;
  try {
    watcher = watch(path.dirname(lockPath), { persistent: false }, (event, file) => {
      // A platform that gives no file name: any name event may be ours.
      if (event !== 'rename' || (file !== null && file !== name)) return;
      pending = true;
      wake?.();
    });
    watcher.on('error', () => {
      watcher.close();
    });
  } catch {
    return null;
  }
  return {
    /** Resolves true when a release or take of the lock was seen (now or since the last wait), false after `ms`. */
    wait: (ms) =>
      new Promise<boolean>((resolve) => {
        if (pending) {
          pending = false;
          resolve(true);
          return;
        }
        const timer = setTimeout(() => {
          wake = null;
          resolve(false);
        }, ms);
        wake = () => {
          clearTimeout(timer);
          wake = null;
          pending = false;
          resolve(true);
        };
      }),
    close: () => watcher.close(),
  };
}
