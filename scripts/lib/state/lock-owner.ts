// Who holds the session lock (lock.ts): the owner record in the lock file, and whether that owner is dead, alive, or
// cannot be told from this machine (process/identity.ts decides for a process of this host).
import { readFileSync, readlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import { checkIdentity, HOST, isZombie, pidExists, processStartTime, selfIdentity } from '../process/identity.ts';

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
export async function inspectLock(lockPath: string): Promise<Inspected | null> {
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
export function judgeCached(owner: LockOwner | null): 'dead' | 'alive' | 'unknown' {
  const seen = owner ? aliveSeen.get(owner.token) : undefined;
  if (seen !== undefined && Date.now() - seen < ALIVE_CACHE_MS) return 'alive';
  const verdict = judgeOwner(owner);
  if (owner && verdict === 'alive') {
    if (aliveSeen.size > 64) aliveSeen.clear();
    aliveSeen.set(owner.token, Date.now());
  }
  return verdict;
}

/** One look at the lock file: its owner record (null when unreadable), inode and mtime (ms). */
export type Inspected = { owner: LockOwner | null; ino: number; mtimeMs: number };

/** Whether two looks at the lock file saw the same lock: the same token, or for an unreadable record the same inode and mtime. */
export function sameLock(a: Inspected, b: Inspected): boolean {
  return b.owner ? a.owner?.token === b.owner.token : a.owner === null && a.ino === b.ino && a.mtimeMs === b.mtimeMs;
}

let self: ReturnType<typeof selfIdentity> | null = null;

/** The owner record (JSON text) this process writes into a lock it takes, with its random `token`. */
export function ownerRecord(token: string): string {
  const identity = (self ??= selfIdentity());
  return JSON.stringify({ ...identity, pidns: PIDNS, boot: BOOT, token, acquired_at: new Date().toISOString() } satisfies LockOwner);
}
