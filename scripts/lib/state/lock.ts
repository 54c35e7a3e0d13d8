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
import { readFileSync, readlinkSync, watch, type FSWatcher } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { OrchestratorError } from '../core/errors.ts';
import { checkIdentity, HOST, isZombie, pidExists, processStartTime, selfIdentity } from '../process/identity.ts';
import { describeFsError } from './atomic-write.ts';

/**
 * A lock whose owner cannot be checked on this machine (another host, unreadable record) is taken
 * over after its mtime stayed unchanged this long, as seen by the waiter (ms). Several times
 * {@link LOCK_REFRESH_MS}, and long enough for an NFS client's attribute cache (acregmin 3 s) to
 * show refreshes. Never applies to a readable owner on this host: that one is checked by identity.
 */
export const LOCK_STALE_MS = 20_000;
/** How often the holder refreshes its lock file's mtime while it holds it (ms). */
export const LOCK_REFRESH_MS = 2_000;

/**
 * Retry schedule while the lock is busy (ms): full jitter between 0 and a ceiling that starts at
 * `firstMs` and grows by `factor` per busy attempt up to `maxMs`; give up after `totalMs`.
 *
 * `totalMs` bounds the wait for a LIVE holder (never robbed): generous, five minutes, so a holder
 * stopped for a while (Ctrl-Z, a stalled machine) is waited for, then named in the error.
 *
 * Short first waits hand the lock over quickly when few processes want it. Once a waiter watches the
 * lock file (see watchRelease), a release wakes it at once and the timer is only the fallback, so its
 * ceiling grows to `watchedMaxMs`; after a wake-up it waits up to `wakeJitterMs` (random) and tries
 * only if nobody took the lock meanwhile. Without a watch (it could not be set up) the ceiling stays
 * `maxMs`, which keeps dozens of polling processes from taking the CPU the holder needs (a 25 ms
 * ceiling made 225 attempts per update with 64 writers and halved the throughput).
 *
 * Measured (bench/RESULTS.md, section 3 and "Start-up cost"): 100 agent starts at once registering
 * their tasks took 27.5 s and 535 ms of CPU each while waiters polled, 6.7-7.9 s and 126-146 ms with
 * the watch; 64 writers updating back to back do fewer updates per second with it (47-63 against
 * 86: every waiter wakes at each release), a pattern the scripts do not have.
 */
export const LOCK_RETRY = { firstMs: 2, factor: 1.5, maxMs: 100, watchedMaxMs: 1000, wakeJitterMs: 4, totalMs: 300_000 } as const;

/** Counters of this process's lock use, read by the benchmarks (bench/lock-writer.ts). */
export const lockStats = {
  /** Attempts to take the lock (one link each). */
  attempts: 0,
  /** Reads of a busy lock's owner record (to judge whether its holder lives). */
  looks: 0,
  /** Locks taken right after a wait that a release ended (not the timer): see watchRelease. */
  takenOnRelease: 0,
  /** Locks taken. */
  acquired: 0,
  /** Locks taken over from a dead (or, off this host, stale) owner. */
  takeovers: 0,
};

/** What the lock file holds: who owns it. JSON, one object. */
export interface LockOwner {
  pid: number;
  /** Process start time token (process/identity.ts), or null when unreadable. */
  start: string | null;
  host: string;
  /** The pid namespace (`/proc/self/ns/pid` on Linux), or null: pids of another namespace are not ours to check. */
  pidns: string | null;
  /** This boot of this machine (`/proc/sys/kernel/random/boot_id` on Linux), or null: tells apart machines that share a host name. */
  boot?: string | null;
  /** Random, unique per acquisition: what the fence and the unlock compare. */
  token: string;
  /** ISO 8601 time the lock was taken. */
  acquired_at: string;
}

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

function ownPidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}
const PIDNS = ownPidNamespace();

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}
const BOOT = bootId();

/** Reads the owner record of a lock file; null when absent. `owner` is null when unreadable. */
export async function inspectLock(lockPath: string): Promise<{ owner: LockOwner | null; ino: number; mtimeMs: number } | null> {
  let st;
  try {
    st = await fs.lstat(lockPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let owner: LockOwner | null = null;
  if (st.isFile()) {
    try {
      owner = parseOwner(await fs.readFile(lockPath, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    }
  }
  return { owner, ino: st.ino, mtimeMs: st.mtimeMs };
}

function parseOwner(text: string): LockOwner | null {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid === 'number' && typeof value.token === 'string' && typeof value.host === 'string') return value as LockOwner;
  } catch {
    // A record being written (exclusive-create fallback) or a foreign file: unreadable.
  }
  return null;
}

/**
 * Whether a lock's owner is dead ('dead': take over now), alive ('alive': wait, never steal), or
 * cannot be told from here ('unknown': mtime staleness decides).
 */
export function judgeOwner(owner: LockOwner | null): 'dead' | 'alive' | 'unknown' {
  if (owner === null || owner.host !== HOST) return 'unknown';
  if (owner.pidns && PIDNS && owner.pidns !== PIDNS) return 'unknown';
  if (owner.boot && BOOT && owner.boot !== BOOT) return 'unknown';
  const verdict = checkIdentity(owner);
  if (verdict === 'gone') {
    // Start time unreadable but the pid exists (another user's process, /proc mounted with hidepid):
    // not provably dead, so only staleness may decide.
    if (owner.start !== null && processStartTime(owner.pid) === null && pidExists(owner.pid)) return 'unknown';
    return 'dead';
  }
  if (verdict === 'unknown') return 'unknown';
  return isZombie(owner.pid) ? 'dead' : 'alive';
}

/**
 * How long an 'alive' verdict on a lock owner is reused (ms). Checking costs a /proc read on Linux
 * but a `ps` process on macOS, and a busy lock is inspected on every retry; a holder that dies is
 * then noticed this much later at most.
 */
const ALIVE_CACHE_MS = 250;
const aliveSeen = new Map<string, number>();

/** {@link judgeOwner}, reusing a recent 'alive' verdict for the same owner token. */
function judgeCached(owner: LockOwner | null): 'dead' | 'alive' | 'unknown' {
  const seen = owner ? aliveSeen.get(owner.token) : undefined;
  if (seen !== undefined && Date.now() - seen < ALIVE_CACHE_MS) return 'alive';
  const verdict = judgeOwner(owner);
  if (owner && verdict === 'alive') {
    if (aliveSeen.size > 64) aliveSeen.clear();
    aliveSeen.set(owner.token, Date.now());
  }
  return verdict;
}

let self: ReturnType<typeof selfIdentity> | null = null;

let asideCounter = 0;

type Inspected = { owner: LockOwner | null; ino: number; mtimeMs: number };

/** Whether two looks at the lock file saw the same lock: the same token, or for an unreadable record the same inode and mtime. */
function sameLock(a: Inspected, b: Inspected): boolean {
  return b.owner ? a.owner?.token === b.owner.token : a.owner === null && a.ino === b.ino && a.mtimeMs === b.mtimeMs;
}

/**
 * Removes a dead (or stale) lock without ever removing a live one.
 *
 * The danger is a waiter acting on an old look: it judged lock L dead, but meanwhile another
 * waiter removed L and a new, live holder took the lock; removing "the lock" by its path would
 * now remove the live one. So one take-over of L happens at most once: the waiter that wins the
 * claim `<lock>.takeover-<L's token>` (created exclusively, with its own owner record) looks
 * again, and only if L is still there renames it aside and deletes it, then drops the claim.
 * While the claim is held nobody else acts on L, and L's dead owner cannot release it, so what
 * is renamed is L. A waiter that loses the claim just retries. A claim whose owner died (killed
 * during a take-over) is removed by the next waiter; in that doubly rare case two take-overs of L
 * may overlap, and the fence then stops the holder that lost its lock, unless it is between its
 * last check and its rename. Off this host (judged by staleness) the owner of L may be alive and
 * release L itself in between; the fence covers that case in the same way.
 *
 * The dead owner's temporary state files (named with its token) are removed too.
 *
 * @param judged - what {@link inspectLock} saw when the owner was judged dead (or stale).
 * @param own - this waiter's prepared owner record (path and text), and the staleness limit (ms).
 * @returns false when another waiter holds the claim (wait, then look again); true otherwise.
 */
export async function takeOver(
  lockPath: string,
  judged: Inspected,
  own: { prepared: string; record: string; staleMs: number },
): Promise<boolean> {
  const id = judged.owner ? judged.owner.token.replace(/[^A-Za-z0-9]/g, '') : `ino${judged.ino}-${Math.round(judged.mtimeMs)}`;
  const claim = `${lockPath}.takeover-${id}`;
  try {
    await fs.link(own.prepared, claim);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      // Someone else is taking L over; if that process died doing it, clear its claim for the next try.
      const other = await inspectLock(claim);
      if (other && (judgeOwner(other.owner) === 'dead' || Date.now() - other.mtimeMs > own.staleMs)) await fs.unlink(claim).catch(() => {});
      return false;
    }
    try {
      await fs.writeFile(claim, own.record, { flag: 'wx' }); // No hard links here: exclusive create.
    } catch {
      return false;
    }
  }
  try {
    const again = await inspectLock(lockPath);
    if (again === null || !sameLock(again, judged)) return true; // Released or taken over already: try to take the lock.
    const aside = `${lockPath}.${process.pid}.${++asideCounter}.${randomBytes(3).toString('hex')}.stale`;
    try {
      await fs.rename(lockPath, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw describeFsError(error, lockPath, 'take over the session lock for', lockPath.replace(/\.lock$/, ''));
    }
    const moved = await inspectLock(aside);
    if (moved !== null && !sameLock(moved, judged)) {
      // Only possible off this host (a stale owner released L itself just now): put the new lock back.
      await fs.link(aside, lockPath).catch(() => {});
      await fs.rm(aside, { recursive: true, force: true });
      return true;
    }
    await fs.rm(aside, { recursive: true, force: true });
    lockStats.takeovers += 1;
    if (judged.owner) await removeTempFiles(path.dirname(lockPath), judged.owner.token);
    return true;
  } finally {
    await fs.unlink(claim).catch(() => {});
  }
}

/** Removes `*.<token>.tmp` files of a dead lock owner in the session folder. */
async function removeTempFiles(dir: string, token: string): Promise<void> {
  const suffix = `.${token}.tmp`;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  await Promise.all(names.filter((name) => name.endsWith(suffix)).map((name) => fs.unlink(path.join(dir, name)).catch(() => {})));
}

/**
 * Removes the prepared owner records (`<lock>.<pid>.<token>.new`) of waiters that were killed
 * while waiting (their pid no longer exists; a reused pid keeps its file until that process ends),
 * and take-over claims of processes that died during a take-over.
 */
async function sweepDeadWaiters(lockPath: string): Promise<void> {
  const prefix = `${path.basename(lockPath)}.`;
  let names: string[];
  try {
    names = await fs.readdir(path.dirname(lockPath));
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(`${prefix}takeover-`)) {
      // A take-over claim left by a process killed during its take-over.
      const claim = await inspectLock(path.join(path.dirname(lockPath), name)).catch(() => null);
      if (claim && judgeOwner(claim.owner) === 'dead') await fs.unlink(path.join(path.dirname(lockPath), name)).catch(() => {});
      continue;
    }
    if (!name.startsWith(prefix) || !name.endsWith('.new')) continue;
    const pid = Number(name.slice(prefix.length).split('.')[0]);
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid && !pidExists(pid)) {
      await fs.unlink(path.join(path.dirname(lockPath), name)).catch(() => {});
    }
  }
}

/**
 * One acquisition in this many (at random) also sweeps killed waiters' files: a readdir, so not every time. The first
 * acquisition of each lock by a process sweeps always, so a run started after a crash (a --resume) leaves none behind.
 */
const SWEEP_ONE_IN = 32;
/** The locks this process has swept at least once. */
const sweptLocks = new Set<string>();

/** The name of a temporary file a lock holder writes beside `target`: removed by whoever takes over its lock if it dies. */
export function tempPathFor(target: string, token: string): string {
  return `${target}.${process.pid}.${randomBytes(3).toString('hex')}.${token}.tmp`;
}

/**
 * Creates the lock file holding `record`, atomically and exclusively.
 * @returns 'linked' (the lock is a second name of `prepared`), 'created' (exclusive create), or false when it exists.
 */
async function createLock(
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

function busyError(lockPath: string, owner: LockOwner | null, waitedMs: number): OrchestratorError {
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
function watchRelease(lockPath: string): { wait(ms: number): Promise<boolean>; close(): void } | null {
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

async function acquire(
  lockPath: string,
  statePath: string,
  limits: Required<LockOptions>,
): Promise<{ token: string; handle: fs.FileHandle }> {
  const identity = (self ??= selfIdentity());
  const token = randomBytes(12).toString('hex');
  const record = JSON.stringify({
    ...identity,
    pidns: PIDNS,
    boot: BOOT,
    token,
    acquired_at: new Date().toISOString(),
  } satisfies LockOwner);
  const prepared = `${lockPath}.${process.pid}.${token}.new`;
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(prepared, 'wx');
    await handle.writeFile(record);
  } catch (error) {
    await fs.unlink(prepared).catch(() => {});
    throw describeFsError(error, lockPath, 'take the session lock for', statePath);
  }
  const mode = { link: true };
  const own = { prepared, record, staleMs: limits.staleMs };
  const began = Date.now();
  let ceiling: number = LOCK_RETRY.firstMs;
  /** The unknown-owner lock being watched for staleness: its identity and since when it is unchanged. */
  let watched = null as { key: string; since: number } | null;
  let tookOver = false;
  // Woken when the lock file goes away or is replaced, a waiter needs no polling to notice a release:
  // its timer is then only the fallback (missed events, a dead holder), LOCK_RETRY.watchedMaxMs.
  // Made at the first busy attempt: an uncontended take pays nothing for it.
  let release: ReturnType<typeof watchRelease> | undefined;
  let lastLook = 0;
  let woken = false;
  /** How long to wait after hearing a release before trying (ms): a few random ms, or longer when yielding. */
  const jitter = () => (limits.yieldMs > 0 ? limits.yieldMs * (0.5 + Math.random() / 2) : Math.random() * LOCK_RETRY.wakeJitterMs);
  try {
    for (;;) {
      lockStats.attempts += 1;
      const created = await createLock(lockPath, prepared, record, mode);
      if (created) {
        lockStats.acquired += 1;
        if (woken) lockStats.takenOnRelease += 1;
        if (tookOver || !sweptLocks.has(lockPath) || Math.random() < 1 / SWEEP_ONE_IN) {
          sweptLocks.add(lockPath);
          await sweepDeadWaiters(lockPath);
        }
        if (created === 'created') {
          // The heartbeat must refresh the lock file itself, not the prepared file.
          await handle.close().catch(() => {});
          handle = await fs.open(lockPath, 'r');
        }
        return { token, handle };
      }
      // Woken by another waiter's take of the lock: it is live and just taken, nothing to judge yet. The
      // holder is looked at on the timer (at least every LOCK_RETRY.maxMs), so a dead one is still found.
      if (!woken || Date.now() - lastLook >= LOCK_RETRY.maxMs) {
        lastLook = Date.now();
        lockStats.looks += 1;
        const current = await inspectLock(lockPath);
        if (current === null) continue; // Released in between: try again at once.
        const verdict = judgeCached(current.owner);
        if (verdict === 'dead') {
          if (await takeOver(lockPath, current, own)) {
            tookOver = true;
            continue;
          }
          // Another waiter is taking it over: wait a little, as for a busy lock.
        }
        if (verdict === 'unknown') {
          const key = `${current.ino}:${current.mtimeMs}:${current.owner?.token ?? ''}`;
          if (watched?.key !== key) watched = { key, since: Date.now() };
          else if (Date.now() - watched.since >= limits.staleMs && (await takeOver(lockPath, current, own))) {
            tookOver = true;
            watched = null;
            continue;
          }
        }
        if (Date.now() - began >= limits.waitMs) throw busyError(lockPath, current.owner, Date.now() - began);
      }
      // Once: where the folder cannot be watched (null), the waiter polls rather than trying again at every attempt.
      if (release === undefined) release = watchRelease(lockPath);
      woken = release ? await release.wait(Math.random() * ceiling) : (await delay(Math.random() * ceiling), false);
      ceiling = Math.min(release ? LOCK_RETRY.watchedMaxMs : LOCK_RETRY.maxMs, ceiling * LOCK_RETRY.factor);
      // Every waiter hears a release: each first waits a few random ms, and one that meanwhile hears the lock
      // taken (the first waiter's link) goes back to waiting without trying, so a handoff costs a few attempts
      // rather than one per waiter.
      while (woken && release && (await release.wait(jitter()))) {
        woken = await release.wait(Math.random() * ceiling);
      }
    }
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  } finally {
    release?.close();
    // The lock file is a second link to the prepared file (or a copy): the prepared name goes either way.
    await fs.unlink(prepared).catch(() => {});
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
