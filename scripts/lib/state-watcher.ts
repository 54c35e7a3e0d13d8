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

/**
 * Watches the session folder for renames onto `latest.yaml` (every write is one).
 *
 * Where inotify is unavailable or exhausted (`fs.inotify.max_user_instances`, 128 by default on
 * Linux), watching silently degrades to the timeout alone, so callers always pass one.
 */
export function watchState(paths: SessionPaths): StateWatcher {
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
    const base = path.basename(paths.statePath);
    watcher = watch(paths.dir, { persistent: false }, (_event, file) => {
      if (file === null || file === base || file === path.basename(paths.eventsPath)) wake();
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
