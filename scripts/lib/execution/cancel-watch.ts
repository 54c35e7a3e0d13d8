// The cancel watch of a claimed task: aborts its agent as soon as the task is cancelled or no longer this process's.
import { openEventReader } from '../state/event-reader.ts';
import { taskOf } from '../scheduling/scheduling.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { readState } from '../state/state-store.ts';
import { watchState } from '../state/state-watcher.ts';
import { ownsTask } from './task-ownership.ts';

/** Longest wait between two looks at the state for a cancel, when no event about the task arrives (ms). */
const CANCEL_POLL_MS = 2000;

/** Wait before looking again at a state that does not yet show the last event logged about the task (ms). */
const STATE_BEHIND_MS = 20;

/**
 * Aborts `controller` as soon as the task is marked `cancelled` in the state, or is no longer this
 * process's (its lease expired while this process was stopped or hung, and it was reaped, perhaps
 * already replaced): the agent then stops its work instead of running on beside the replacement.
 * A state file that cannot be read (deleted mid-run: the end of the task names it) aborts nothing.
 * Returns a stop function. The state is read when an event about this task (or the session) is
 * logged, and every {@link CANCEL_POLL_MS}: not on every change of every other task.
 */
export function watchForCancel(paths: SessionPaths, name: string, sessionId: string, controller: AbortController): () => void {
  const watcher = watchState(paths, { state: false });
  const log = openEventReader(paths.eventsPath);
  let stopped = false;
  void (async () => {
    await log.read().catch(() => undefined);
    let due = Date.now() + CANCEL_POLL_MS;
    let latestMine = '';
    while (!stopped && !controller.signal.aborted) {
      await watcher.next(Math.max(0, due - Date.now()));
      if (stopped) break;
      const batch = await log.read().catch(() => ({ events: [], rotated: true }));
      const mine = batch.rotated || batch.events.some((event) => event.task === name || event.task === undefined);
      if (mine) latestMine = batch.events.at(-1)?.ts ?? latestMine;
      if (!mine && Date.now() < due) continue;
      due = Date.now() + CANCEL_POLL_MS;
      const state = await readState(paths).catch(() => null);
      // Events are logged right before their state is renamed into place: a state older than the
      // last event about us is one change behind, so look again in a moment rather than in 2 s.
      // (Only for a fresh event: one whose commit never came, its writer killed in between, is not waited for.)
      if (state && latestMine > state.updated_at && Date.now() - Date.parse(latestMine) < 1000) due = Date.now() + STATE_BEHIND_MS;
      const task = state ? taskOf(state, name) : undefined;
      if (task?.status === 'cancelled' && task.pid === process.pid) controller.abort(new Error('cancelled by cancel-session'));
      else if (state?.session_id === sessionId && task !== undefined && !ownsTask(task)) {
        const why = task.pid === process.pid ? `it was marked ${task.status}` : `it now belongs to process ${task.pid ?? '(none)'}`;
        controller.abort(new Error(`this agent no longer owns the task (${why}; ${task.error ?? 'lease expired'})`));
      }
    }
  })();
  return () => {
    stopped = true;
    watcher.close();
    void log.close();
  };
}
