// The inter-process lock around every change of the state file (proper-lockfile, mkdir-based, stale-aware).
import { watch, type FSWatcher } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
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
 * Short first waits hand the lock over quickly when few processes want it; the ceiling keeps dozens
 * of waiting processes from burning the CPU the holder needs (measured with bench/lock-writers.ts:
 * with node-retry's 5-40 ms randomised schedule 8 writers left the lock idle between holders).
 */
export const LOCK_RETRY = { firstMs: 2, factor: 1.5, maxMs: 25, totalMs: 60_000 } as const;

/** Counters of this process's lock use, read by the benchmarks (bench/lock-writer.ts). */
export const lockStats = {
  /** Attempts to take the lock (one mkdir each, plus a stat when it is busy). */
  attempts: 0,
  /** Locks taken. */
  acquired: 0,
};

const V = (process.env.DTO_LOCK_VARIANT ?? 'watch:2:1.5:100').split(':');
const VARIANT = { watch: V[0] === 'watch', firstMs: Number(V[1]), factor: Number(V[2]), maxMs: Number(V[3]) };

async function acquire(target: string, lockPath: string, onCompromised: () => void): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_RETRY.totalMs;
  let ceiling: number = VARIANT.firstMs;
  let watcher: FSWatcher | null = null;
  let wake: (() => void) | null = null;
  try {
    for (;;) {
      lockStats.attempts += 1;
      try {
        const release = await lockfile.lock(target, { lockfilePath: lockPath, realpath: false, stale: LOCK_STALE_MS, retries: 0, onCompromised });
        lockStats.acquired += 1;
        return release;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() >= deadline) throw error;
      }
      if (VARIANT.watch && watcher === null) {
        try {
          const base = path.basename(lockPath);
          watcher = watch(path.dirname(lockPath), { persistent: false }, (_e, file) => {
            if (file === base) wake?.();
          });
          watcher.on('error', () => {});
        } catch {
          // No inotify: the timer alone.
        }
      }
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, Math.random() * ceiling);
      });
      clearTimeout(timer);
      wake = null;
      ceiling = Math.min(VARIANT.maxMs, ceiling * VARIANT.factor);
    }
  } finally {
    watcher?.close();
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
