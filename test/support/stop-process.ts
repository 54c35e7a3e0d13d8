// Stopping a process (SIGSTOP) at a moment it does not hold the session lock.
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { inspectLock } from '../../scripts/lib/state/lock.ts';

/** Resolves once `/proc/<pid>/stat` says the process is stopped (state T), within about a second. */
async function stopped(pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // Field 3, after the command name in parentheses (which may itself hold spaces or parentheses).
    if (/^[TtXZ]/.test(stat.slice(stat.lastIndexOf(')') + 2))) return;
    await delay(5);
  }
  throw new Error(`process ${pid} did not stop after SIGSTOP`);
}

/**
 * SIGSTOPs `pid` at a moment it does not hold the lock at `lockPath`: stopped while holding it, it
 * would block every writer of the session for good (a live holder is never robbed; that fault is
 * tested in test/state/lock-owner.test.ts), which is not what a test of leases means to stop.
 * When it was caught holding the lock (or taking it: a lock file whose owner is not written yet),
 * it is continued and stopped again a moment later.
 *
 * @throws when it was caught holding the lock 200 times in a row.
 */
export async function stopOutsideLock(pid: number, lockPath: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    process.kill(pid, 'SIGSTOP');
    await stopped(pid);
    const lock = await inspectLock(lockPath).catch(() => undefined);
    if (lock === null || (lock?.owner != null && lock.owner.pid !== pid)) return;
    process.kill(pid, 'SIGCONT');
    await delay(5 + Math.random() * 20);
  }
  throw new Error(`process ${pid} held ${lockPath} every time it was stopped`);
}
