// The limits and counters of the session lock (lock.ts): how long a stale record lives, how often the holder refreshes
// it, the retry schedule of a waiter, and this process's counters for the benchmarks.

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
