// The inter-process lock around every change of the state file (proper-lockfile, mkdir-based, stale-aware).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import { OrchestratorError } from './errors.ts';

/**
 * A lock whose holder stopped refreshing it for this long is stale and taken over (ms).
 * proper-lockfile refreshes the lock's mtime every `stale / 2` ms while it is held, so a holder
 * killed with SIGKILL is replaced within about this time. Its floor is 2000 ms.
 */
export const LOCK_STALE_MS = 3000;

/**
 * Retry schedule while the lock is busy (ms): full jitter between 0 and a ceiling that starts at
 * `firstMs` and grows by `factor` per busy attempt up to `maxMs`; give up after `totalMs`, far
 * beyond {@link LOCK_STALE_MS}, so a killed holder never makes a writer give up.
 *
 * Short first waits hand the lock over quickly when few processes want it; the 100 ms ceiling
 * keeps dozens of waiting processes from taking the CPU the holder needs. Measured with
 * bench/lock-writers.ts (64 writers): a 25 ms ceiling made 225 attempts per update and halved the
 * throughput; waking every waiter on release (fs.watch) was worse still (a herd per handoff).
 */
export const LOCK_RETRY = { firstMs: 2, factor: 1.5, maxMs: 100, totalMs: 60_000 } as const;

/** Counters of this process's lock use, read by the benchmarks (bench/lock-writer.ts). */
export const lockStats = {
  /** Attempts to take the lock (one mkdir each, plus a stat when it is busy). */
  attempts: 0,
  /** Locks taken. */
  acquired: 0,
};

async function acquire(target: string, lockPath: string, onCompromised: () => void): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_RETRY.totalMs;
  let ceiling: number = LOCK_RETRY.firstMs;
  for (;;) {
    lockStats.attempts += 1;
    try {
      const release = await lockfile.lock(target, { lockfilePath: lockPath, realpath: false, stale: LOCK_STALE_MS, retries: 0, onCompromised });
      lockStats.acquired += 1;
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() >= deadline) throw error;
    }
    await delay(Math.random() * ceiling);
    ceiling = Math.min(LOCK_RETRY.maxMs, ceiling * LOCK_RETRY.factor);
  }
}

/**
 * Runs `fn` while holding the lock at `lockPath`.
 *
 * If the lock is compromised while `fn` runs (its mtime could not be refreshed in time, so another
 * process may have taken it over), the result is discarded and an error thrown: callers that wrote
 * under it use a temporary file and rename only while `isCompromised()` is false.
 *
 * @param lockPath - the lock directory to create, e.g. `<dir>/latest.yaml.lock`; its folder is created.
 * @param fn - the critical section; receives `isCompromised`.
 * @throws OrchestratorError `lock_failed` if the lock cannot be had within about a minute.
 */
export async function withLock<T>(lockPath: string, fn: (isCompromised: () => boolean) => Promise<T>): Promise<T> {
  const target = lockPath.replace(/\.lock$/, '');
  await mkdir(path.dirname(lockPath), { recursive: true });
  let compromised = false;
  let release: () => Promise<void>;
  try {
    release = await acquire(target, lockPath, () => {
      compromised = true;
    });
  } catch (error) {
    throw new OrchestratorError(
      'lock_failed',
      `Could not take the session lock ${lockPath}: ${(error as Error).message}. ` +
        'If no orchestrator process is running, remove that folder and try again.',
      { cause: error },
    );
  }
  try {
    return await fn(() => compromised);
  } finally {
    await release().catch(() => {
      // Already released or compromised: nothing of ours is left to clean up.
    });
  }
}
