// Whether this process still owns a claimed task, and changes made only while it does.
import { selfIdentity } from '../process/identity.ts';
import { taskOf } from '../scheduling/scheduling.ts';
import { TERMINAL_STATUSES, type SessionState, type TaskRecord } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { updateState, type StateTransaction } from '../state/state-store.ts';

let selfStart: string | null | undefined;

/**
 * True while this process still owns the task (nobody cancelled, reaped or replaced it): the
 * record names this process (pid, and start time when recorded) and has not ended.
 */
export function ownsTask(record: TaskRecord | undefined): boolean {
  if (record === undefined || record.pid !== process.pid || TERMINAL_STATUSES.has(record.status)) return false;
  selfStart ??= selfIdentity().start;
  return record.pid_start == null || selfStart === null || record.pid_start === selfStart;
}

/**
 * Applies `change` to a task under the lock, but only while this process still owns it.
 * @returns what `change` returned, or null if the task is no longer ours (or `change` returned null).
 */
export async function transitionOwnTask<T>(
  paths: SessionPaths,
  name: string,
  change: (tx: StateTransaction, state: SessionState) => T | null,
): Promise<T | null> {
  return updateState(paths, (tx) => {
    const state = tx.state;
    if (!state || !ownsTask(taskOf(state, name))) return null;
    return change(tx, state);
  });
}
