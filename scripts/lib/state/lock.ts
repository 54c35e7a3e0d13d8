// The inter-process lock around every change of the state file: an owner-stamped lock file that is taken over only from a dead holder.
//
// Why not proper-lockfile (used before): it judges a lock by its mtime alone, so a holder that was merely
// paused (SIGSTOP, a suspended laptop, an event loop stalled under load) past the stale time was robbed;
// on resuming it renamed its old state over the newer one and its unlock removed the new holder's lock
// (hundreds of lost updates with 16 writers). Here the lock file names its owner, and:
//
// - Same host (Linux, macOS: the owner's `host` and pid namespace are ours): the lock is taken over only
//   when the owner is provably gone, i.e. its pid no longer exists, or exists with another start time
//   (process/identity.ts), or is a zombie. A live owner is never robbed, however long it is paused;
//   waiters wait (up to LOCK_RETRY.totalMs) and then fail naming it. A dead owner is taken over on the
//   next attempt (milliseconds), not after a stale time.
// - Owner on another host (a session folder on a network file system) or an unreadable owner record:
//   nothing on this machine can tell whether it lives, so the lock is taken over once its mtime, which the
//   holder refreshes every LOCK_REFRESH_MS, has not changed for LOCK_STALE_MS as measured by the waiter's
//   own clock (immune to clock skew between hosts). A holder stalled longer than that can be robbed there;
//   the commit fence below then makes it give up instead of overwriting, except in the microseconds
//   between its last check and its rename (only a kernel lock could close that window, and none is
//   reliable across network file systems).
//
// Take-over itself is race-free among waiters: each dead lock is taken over at most once, by the
// waiter that wins an exclusive claim file for it (see takeOver), so a waiter acting on an old look
// never removes a live lock that replaced the dead one.
//
// The fence (see {@link LockHandle.verify}): just before it renames its new state into place, the writer
// checks that the lock file still carries its random token (state-store.ts also checks that the state
// file is still the one it read); if not, it discards its temporary file and fails without renaming.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { describeFsError } from './atomic-write.ts';
import { LOCK_REFRESH_MS, LOCK_RETRY, LOCK_STALE_MS, lockStats } from './lock-limits.ts';
import { inspectLock, judgeCached, ownerRecord, type Inspected } from './lock-owner.ts';
import { sweepAfterTake, takeOver } from './lock-takeover.ts';
import { busyError, createLock, watchRelease } from './lock-wait.ts';

export { LOCK_REFRESH_MS, LOCK_RETRY, LOCK_STALE_MS, lockStats } from './lock-limits.ts';
export { inspectLock, judgeOwner, type LockOwner } from './lock-owner.ts';
export { takeOver, tempPathFor } from './lock-takeover.ts';

/** Limits of {@link withLock} (ms). */
export interface LockOptions {
  /** Longest wait for a live holder before `lock_failed`; default {@link LOCK_RETRY}.totalMs. */
  waitMs?: number;
  /** Staleness of a lock whose owner cannot be checked; default {@link LOCK_STALE_MS}. */
  staleMs?: number;
  /**
   * Let other waiters go first: after hearing a release, wait between half this and this many ms
   * (instead of up to {@link LOCK_RETRY}.wakeJitterMs) before trying, so a waiter that did not yield
   * takes the lock. For work that is not urgent: a registration that will most likely queue its task,
   * while running agents wait to record an end and hand their slot on. Default 0.
   */
  yieldMs?: number;
}

/** A held lock, given to the critical section. */
export interface LockHandle {
  /** The random token written into the lock file. */
  readonly token: string;
  /**
   * The fence: resolves only if the lock file still carries our token.
   * @throws LockLostError otherwise (taken over, removed): the caller must not commit.
   */
  verify(): Promise<void>;
}

/** Thrown by {@link LockHandle.verify} when the lock is no longer ours. */
export class LockLostError extends Error {
  constructor(lockPath: string, found: string) {
    super(`the session lock ${lockPath} is no longer ours (${found}); nothing was committed`);
    this.name = 'LockLostError';
  }
}

/** One waiter for the lock: its prepared owner record, and what it has seen while waiting. */
interface Waiter {
  readonly lockPath: string;
  readonly limits: Required<LockOptions>;
  readonly own: { prepared: string; record: string; staleMs: number };
  /** Whether hard links work here (createLock falls back to an exclusive create once they do not). */
  readonly mode: { link: boolean };
  readonly began: number;
  /** The unknown-owner lock being watched for staleness: its identity and since when it is unchanged. */
  watched: { key: string; since: number } | null;
  tookOver: boolean;
  /** Whether the last wait ended because the lock file was released or taken (not the timer). */
  woken: boolean;
  lastLook: number;
  /** The current ceiling of the random wait (ms): see LOCK_RETRY. */
  ceiling: number;
  /**
   * Woken when the lock file goes away or is replaced, a waiter needs no polling to notice a release: its timer is then
   * only the fallback (missed events, a dead holder), LOCK_RETRY.watchedMaxMs. Made at the first busy attempt (an
   * uncontended take pays nothing for it); null where the folder cannot be watched.
   */
  release: ReturnType<typeof watchRelease> | undefined;
}

/** Writes this process's owner record to `<lock>.<pid>.<token>.new`, the file the lock becomes a second name of. */
async function prepareOwner(
  lockPath: string,
  statePath: string,
): Promise<{ token: string; record: string; prepared: string; handle: fs.FileHandle }> {
  const token = randomBytes(12).toString('hex');
  const record = ownerRecord(token);
  const prepared = `${lockPath}.${process.pid}.${token}.new`;
  try {
    const handle = await fs.open(prepared, 'wx');
    try {
      await handle.writeFile(record);
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
    return { token, record, prepared, handle };
  } catch (error) {
    await fs.unlink(prepared).catch(() => {});
    throw describeFsError(error, lockPath, 'take the session lock for', statePath);
  }
}

/**
 * Looks at the holder of a busy lock: takes the lock over from a dead one (or, off this host, one stale for
 * `limits.staleMs`), and gives up with `lock_failed` once a live one was waited for `limits.waitMs`.
 * @returns 'again' to try to take the lock at once (released, or taken over), 'wait' otherwise.
 */
async function lookAtHolder(w: Waiter): Promise<'again' | 'wait'> {
  w.lastLook = Date.now();
  lockStats.looks += 1;
  const current: Inspected | null = await inspectLock(w.lockPath);
  if (current === null) return 'again'; // Released in between.
  const verdict = judgeCached(current.owner);
  if (verdict === 'dead') {
    if (await takeOver(w.lockPath, current, w.own)) {
      w.tookOver = true;
      return 'again';
    }
    // Another waiter is taking it over: wait a little, as for a busy lock.
  }
  if (verdict === 'unknown') {
    const key = `${current.ino}:${current.mtimeMs}:${current.owner?.token ?? ''}`;
    if (w.watched?.key !== key) w.watched = { key, since: Date.now() };
    else if (Date.now() - w.watched.since >= w.limits.staleMs && (await takeOver(w.lockPath, current, w.own))) {
      w.tookOver = true;
      w.watched = null;
      return 'again';
    }
  }
  if (Date.now() - w.began >= w.limits.waitMs) throw busyError(w.lockPath, current.owner, Date.now() - w.began);
  return 'wait';
}

/** Waits for the next attempt: until a release is heard or a random time under the growing ceiling passes. */
async function waitTurn(w: Waiter): Promise<void> {
  // Once: where the folder cannot be watched (null), the waiter polls rather than trying again at every attempt.
  if (w.release === undefined) w.release = watchRelease(w.lockPath);
  const release = w.release;
  w.woken = release ? await release.wait(Math.random() * w.ceiling) : (await delay(Math.random() * w.ceiling), false);
  w.ceiling = Math.min(release ? LOCK_RETRY.watchedMaxMs : LOCK_RETRY.maxMs, w.ceiling * LOCK_RETRY.factor);
  // Every waiter hears a release: each first waits a few random ms (longer when yielding), and one that meanwhile hears
  // the lock taken (the first waiter's link) goes back to waiting without trying, so a handoff costs a few attempts
  // rather than one per waiter.
  const yieldMs = w.limits.yieldMs;
  const jitter = () => (yieldMs > 0 ? yieldMs * (0.5 + Math.random() / 2) : Math.random() * LOCK_RETRY.wakeJitterMs);
  while (w.woken && release && (await release.wait(jitter()))) {
    w.woken = await release.wait(Math.random() * w.ceiling);
  }
}

/** Takes the lock at `lockPath`, waiting for its holder as {@link withLock} says. @returns our token and an open handle on the lock file (for the heartbeat). */
async function acquire(
  lockPath: string,
  statePath: string,
  limits: Required<LockOptions>,
): Promise<{ token: string; handle: fs.FileHandle }> {
  const prepared = await prepareOwner(lockPath, statePath);
  let handle = prepared.handle;
  const w: Waiter = {
    lockPath,
    limits,
    own: { prepared: prepared.prepared, record: prepared.record, staleMs: limits.staleMs },
    mode: { link: true },
    began: Date.now(),
    watched: null,
    tookOver: false,
    woken: false,
    lastLook: 0,
    ceiling: LOCK_RETRY.firstMs,
    release: undefined,
  };
  try {
    for (;;) {
      lockStats.attempts += 1;
      const created = await createLock(lockPath, w.own.prepared, w.own.record, w.mode);
      if (created) {
        lockStats.acquired += 1;
        if (w.woken) lockStats.takenOnRelease += 1;
        await sweepAfterTake(lockPath, w.tookOver);
        if (created === 'created') {
          // The heartbeat must refresh the lock file itself, not the prepared file.
          await handle.close().catch(() => {});
          handle = await fs.open(lockPath, 'r');
        }
        return { token: prepared.token, handle };
      }
      // Woken by another waiter's take of the lock: it is live and just taken, nothing to judge yet. The holder is
      // looked at on the timer (at least every LOCK_RETRY.maxMs), so a dead one is still found.
      if ((!w.woken || Date.now() - w.lastLook >= LOCK_RETRY.maxMs) && (await lookAtHolder(w)) === 'again') continue;
      await waitTurn(w);
    }
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  } finally {
    w.release?.close();
    // The lock file is a second link to the prepared file (or a copy): the prepared name goes either way.
    await fs.unlink(w.own.prepared).catch(() => {});
  }
}

/** Removes the lock file if it still carries our token. */
async function release(lockPath: string, token: string): Promise<void> {
  // Read-verify-remove. The race accepted: between the read and the unlink, only a waiter that
  // judged us dead or stale may replace the lock. On this host it never does (we are alive). Off
  // this host it can, if we stall right here for LOCK_STALE_MS; we would then remove the new
  // holder's lock, and that holder's fence fails at its commit (our token is not its token, and a
  // third process's lock is not either): it discards its change and retries. Nothing is lost.
  const current = await inspectLock(lockPath).catch(() => null);
  if (current?.owner?.token === token) await fs.unlink(lockPath).catch(() => {});
}

/**
 * Runs `fn` while holding the lock at `lockPath`.
 *
 * The lock is a file whose content names its owner (see {@link LockOwner}); the module header
 * says which guarantee holds where. `fn` receives a {@link LockHandle} whose `verify()` is the
 * commit fence: call it right before making a change visible (the rename) and do not commit if it
 * throws.
 *
 * @param lockPath - the lock file, e.g. `<dir>/latest.yaml.lock`; its folder must exist.
 * @param fn - the critical section.
 * @param options - shorter limits, for tests and benchmarks.
 * @throws OrchestratorError `lock_failed` (exit 2) when a live holder keeps the lock for
 *   {@link LOCK_RETRY}.totalMs (naming its pid and what to do), or when the lock cannot be created
 *   (read-only folder, full disk: the message says which).
 * @example
 * await withLock(paths.lockPath, async (lock) => { ...write temp...; await lock.verify(); ...rename... });
 */
export async function withLock<T>(lockPath: string, fn: (lock: LockHandle) => Promise<T>, options: LockOptions = {}): Promise<T> {
  const statePath = lockPath.replace(/\.lock$/, '');
  const limits = { waitMs: options.waitMs ?? LOCK_RETRY.totalMs, staleMs: options.staleMs ?? LOCK_STALE_MS, yieldMs: options.yieldMs ?? 0 };
  const { token, handle } = await acquire(lockPath, statePath, limits);
  // Heartbeat for waiters that cannot check our identity (other hosts): refresh our inode's mtime.
  const heartbeat = setInterval(() => {
    const now = new Date();
    void handle.utimes(now, now).catch(() => {});
  }, LOCK_REFRESH_MS);
  heartbeat.unref();
  const lock: LockHandle = {
    token,
    async verify() {
      const current = await inspectLock(lockPath).catch((error: unknown) => {
        throw new LockLostError(lockPath, `it cannot be read: ${(error as Error).message}`);
      });
      if (current?.owner?.token !== token) {
        throw new LockLostError(lockPath, current === null ? 'it was removed' : `it now belongs to process ${current.owner?.pid ?? '?'}`);
      }
    },
  };
  try {
    return await fn(lock);
  } finally {
    clearInterval(heartbeat);
    await release(lockPath, token);
    await handle.close().catch(() => {});
  }
}
