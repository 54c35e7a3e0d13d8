// The inter-process lock around every change of the state file (proper-lockfile, mkdir-based, stale-aware).
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
 * Retry schedule while the lock is busy (node-retry options, as proper-lockfile takes them):
 * short randomised waits, 5-40 ms, so dozens of writers interleave quickly; about 60 s in all,
 * far beyond {@link LOCK_STALE_MS}, so a killed holder never makes a writer give up.
 */
const RETRIES = { retries: 2000, factor: 1.25, minTimeout: 5, maxTimeout: 40, randomize: true };

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
    release = await lockfile.lock(target, {
      lockfilePath: lockPath,
      realpath: false,
      stale: LOCK_STALE_MS,
      retries: RETRIES,
      onCompromised: () => {
        compromised = true;
      },
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

/** Baseline instrumentation placeholder (attempts are not counted by node-retry). */
export const lockStats = { attempts: NaN, acquired: 0 };
