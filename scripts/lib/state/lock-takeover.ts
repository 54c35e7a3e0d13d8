// Taking over the session lock (lock.ts) from a dead or stale owner without ever removing a live one, and clearing
// what killed lock users left behind: their temporary state files, prepared owner records and take-over claims.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pidExists } from '../process/identity.ts';
import { describeFsError } from './atomic-write.ts';
import { lockStats } from './lock-limits.ts';
import { inspectLock, judgeOwner, sameLock, type Inspected } from './lock-owner.ts';

let asideCounter = 0;

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
 * Sweeps killed waiters' files (see sweepDeadWaiters) after this process took `lockPath`: always after a take-over and
 * at its first take of each lock, otherwise one time in {@link SWEEP_ONE_IN}.
 */
export async function sweepAfterTake(lockPath: string, tookOver: boolean): Promise<void> {
  if (!tookOver && sweptLocks.has(lockPath) && Math.random() >= 1 / SWEEP_ONE_IN) return;
  sweptLocks.add(lockPath);
  await sweepDeadWaiters(lockPath);
}
