// Waiting for the state lock costs (almost) nothing while it is held: with dozens of agents starting at once, waiters that
// polled every 50 ms took the CPU the holder needed (100 registrations: 27.5 s and 535 ms of CPU each, bench/RESULTS.md).
import { describe, expect, it } from 'vitest';
import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { lockStats, withLock } from '../../scripts/lib/state/lock.ts';
import { tempProject } from '../support/project.ts';

describe('waiting for the state lock', () => {
  it('a waiter sleeps until the release instead of polling: few attempts and looks while a holder keeps the lock, then each enters once, in turn', async () => {
    const project = await tempProject();
    const lockPath = project.paths.lockPath;
    await mkdir(project.paths.dir, { recursive: true });
    const WAITERS = 10;
    const HOLD_MS = 3000;
    let inside = 0;
    let most = 0;
    const entered: number[] = [];
    const enter = async (id: number) => {
      inside++;
      most = Math.max(most, inside);
      entered.push(id);
      await sleep(5);
      inside--;
    };
    const takenOnRelease = lockStats.takenOnRelease;
    let before = { attempts: 0, looks: 0 };
    let during = { attempts: 0, looks: 0 };
    let waiters: Array<Promise<void>> = [];
    await withLock(lockPath, async () => {
      waiters = Array.from({ length: WAITERS }, (_, id) => withLock(lockPath, () => enter(id)));
      before = { attempts: lockStats.attempts, looks: lockStats.looks };
      await sleep(HOLD_MS);
      during = { attempts: lockStats.attempts - before.attempts, looks: lockStats.looks - before.looks };
    });
    await Promise.all(waiters);
    expect(entered.sort((a, b) => a - b)).toEqual(Array.from({ length: WAITERS }, (_, id) => id));
    expect(most).toBe(1);
    // Polling (a random wait of at most 100 ms, a take attempt and a look at the owner each time) made about 60 attempts
    // and 60 looks per waiter in 3 s; sleeping until the release, with a timer growing to 1 s as the fallback, about 17.
    expect(during.attempts / WAITERS).toBeLessThan(30);
    expect(during.looks / WAITERS).toBeLessThan(30);
    // What hands the lock on is the release itself, not a waiter's timer (grown to 1 s by then).
    expect(lockStats.takenOnRelease - takenOnRelease).toBeGreaterThanOrEqual(WAITERS / 2);
  }, 30_000);
});
