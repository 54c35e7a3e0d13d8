// Wakes a reader when the state file changes: fs.watch on the session folder, with a timer as fallback.
import { watch, type FSWatcher } from 'node:fs';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { SessionPaths } from './session-paths.ts';

/** A change notifier for `latest.yaml`. */
export interface StateWatcher {
  /** Resolves at the next change of the state file, or after `timeoutMs`, whichever comes first. */
  next(timeoutMs: number): Promise<void>;
  close(): void;
}

/** Options of {@link watchState}. */
export interface WatchOptions {
  /**
   * Also wake on appends to `events.jsonl` (default true), for readers of the event log. Readers of
   * the state alone pass false: every write appends its events right before it renames the state,
   * so the append would only wake them early, before the change they are waiting for is visible.
   */
  events?: boolean;
  /**
   * Wake on renames onto `latest.yaml` (default true). Readers that act on events alone (a running
   * agent watching for its cancel, see task-execution.ts) pass false: a change's events are logged
   * right before its rename, so such a reader that then reads the state may find it one change
   * behind (compare `updated_at` with the event's `ts`) and looks again a moment later.
   */
  state?: boolean;
}

/**
 * Watches the session folder for renames onto `latest.yaml` (every write is one).
 *
 * Changes that arrive while the caller is busy are coalesced: the next `next()` resolves at once,
 * one time, however many changes there were.
 *
 * Where inotify is unavailable or exhausted (`fs.inotify.max_user_instances`, 128 by default on
 * Linux), watching silently degrades to the timeout alone, so callers always pass one.
 */
export function watchState(paths: SessionPaths, options: WatchOptions = {}): StateWatcher {
  let waiters: Array<() => void> = [];
  let changed = false;
  let watcher: FSWatcher | null = null;
  const wake = () => {
    changed = true;
    const pending = waiters;
    waiters = [];
    for (const resolve of pending) resolve();
  };
  try {
    mkdirSync(paths.dir, { recursive: true });
    const base = options.state === false ? null : path.basename(paths.statePath);
    const events = options.events === false ? null : path.basename(paths.eventsPath);
    watcher = watch(paths.dir, { persistent: false }, (_event, file) => {
      if (file === null || file === base || file === events) wake();
    });
    watcher.on('error', () => {
      watcher?.close();
      watcher = null;
    });
  } catch {
    watcher = null;
  }
  return {
    next(timeoutMs) {
      if (changed) {
        changed = false;
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== done);
          changed = false;
          resolve();
        }
        waiters.push(done);
      });
    },
    close() {
      watcher?.close();
      wake();
    },
  };
}
