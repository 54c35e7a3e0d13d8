// One attention watch per session folder (a lease judged by process identity), and --keep_watching: the plugin's monitor, following every run of the project in turn.
import { readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { OrchestratorError } from '../core/errors.ts';
import { checkIdentity, selfIdentity, type ProcessIdentity } from '../process/identity.ts';
import { writeFileAtomic } from '../state/atomic-write.ts';
import { withLock } from '../state/lock.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { readState } from '../state/state-store.ts';
import { watchState } from '../state/state-watcher.ts';
import { summarize } from '../report/session-summary.ts';
import type { FollowOptions } from './poll-loop.ts';

/** The lease file in the session folder: the identity of the one watch that reports attention lines there. */
export const WATCH_LEASE_FILE = 'attention-watch.json';

/** How often a keep-watching watch looks again while it has nothing to follow (ms): no session, or one already ended. */
export const KEEP_WATCHING_IDLE_MS = 2_000;

/**
 * At most one `--attention` watch reports a session folder's events, so two watches (the plugin's monitor and one the
 * model armed) never wake the model twice for one failure. The holder is recorded by identity (pid, start time, host)
 * and checked as agents are: a dead holder, or its pid reused, is `gone` and the lease is taken over; a live one is
 * never taken from. Check-and-take runs under the folder's `attention-watch.lock` (state/lock.ts), so two watches
 * starting at once cannot both win.
 */
export class WatchLease {
  private held = false;
  private readonly file: string;
  private readonly lockPath: string;

  /** @param dir - the session folder (it must exist before {@link tryAcquire}). */
  constructor(dir: string) {
    this.file = path.join(dir, WATCH_LEASE_FILE);
    this.lockPath = path.join(dir, 'attention-watch.lock');
  }

  /** Takes the lease unless a live watch holds it. @returns true when this process holds it now. */
  async tryAcquire(): Promise<boolean> {
    if (this.held) return true;
    const me = selfIdentity();
    this.held = await withLock(this.lockPath, async () => {
      const holder = await this.holder();
      if (holder && holder.pid !== me.pid) return false;
      await writeFileAtomic(this.file, `${JSON.stringify(me)}\n`, { action: 'record the attention watch' });
      return true;
    });
    return this.held;
  }

  /** The live watch holding the lease, or null (none, or its process is gone). */
  async holder(): Promise<ProcessIdentity | null> {
    let recorded: ProcessIdentity;
    try {
      recorded = JSON.parse(await readFile(this.file, 'utf8')) as ProcessIdentity;
    } catch {
      return null; // None, or unreadable: a half-written lease is never left (atomic write), so nobody holds it.
    }
    return Number.isInteger(recorded.pid) && checkIdentity(recorded) !== 'gone' ? recorded : null;
  }

  /** Gives the lease up, if this process holds it. Never throws. */
  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await withLock(this.lockPath, async () => {
      const holder = await this.holder();
      if (holder?.pid === process.pid) await unlink(this.file).catch(() => {});
    }).catch(() => {});
  }
}

/** What {@link keepWatching} needs: how to follow one session, and the clock to idle by. */
export interface KeepWatchingOptions {
  paths: SessionPaths;
  lease: WatchLease;
  /** Follows the current session until it ends (poll-loop.ts followSession with a fresh attention sink). */
  follow: (options: Pick<FollowOptions, 'waitForSessionS'>) => Promise<number>;
  /** Stops the watch (tests); otherwise it runs until its process is ended. */
  signal?: AbortSignal;
}

/**
 * `--attention --keep_watching`: runs until its process is ended (the plugin's monitor lives as long as the Claude Code
 * session), reporting each run of the project in turn. It waits quietly while there is no session, while another live
 * watch holds the lease, and while the current session has ended (a session that had ended before the watch saw it is
 * never reported: the background wait reports ends). A session that is still going is followed with the attention
 * cursor, so what an earlier watch printed is not printed again. A follow that fails on the state (gone between two
 * reads, or unusable) is waited out, not fatal.
 * @returns 0 when `signal` stops it.
 */
export async function keepWatching(options: KeepWatchingOptions): Promise<number> {
  const { paths, lease, signal } = options;
  const idle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  try {
    while (!signal?.aborted) {
      if (!(await stat(paths.statePath).catch(() => null)) || !(await lease.tryAcquire())) {
        await idle(KEEP_WATCHING_IDLE_MS);
        continue;
      }
      const state = await readState(paths).catch(() => null);
      if (!state || summarize(state).finished) {
        const watcher = watchState(paths, { events: false });
        await watcher.next(KEEP_WATCHING_IDLE_MS * 5);
        watcher.close();
        continue;
      }
      try {
        await options.follow({ waitForSessionS: 0 });
      } catch (error) {
        // The state went away between two reads (a session archived as the next starts) or is unusable for now:
        // the monitor lives as long as the Claude Code session, so it waits for the next state instead of dying.
        if (!(error instanceof OrchestratorError)) throw error;
        await idle(KEEP_WATCHING_IDLE_MS);
      }
    }
    return 0;
  } finally {
    await lease.release();
  }
}
