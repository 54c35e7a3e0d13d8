// Worker replacement (the seeds' "replace failed workers, same ID"): restart the agent of a task whose process died.
import { execa } from 'execa';
import type { SessionState } from './schema.ts';
import type { SessionPaths } from './session-paths.ts';
import { updateState } from './state-store.ts';

/**
 * Tasks whose agent died (process gone or lease expired) and may be started again: a recorded
 * launch command, attempts left (`attempts < max_attempts`), and no replacement started yet for
 * this attempt.
 */
export function replacementCandidates(state: SessionState): string[] {
  return Object.entries(state.tasks)
    .filter(
      ([, task]) =>
        task.status === 'failed' &&
        task.agent_died &&
        task.launch !== null &&
        task.attempts < task.max_attempts &&
        task.replaced_attempt !== task.attempts,
    )
    .map(([name]) => name);
}

/**
 * Starts a replacement agent for each candidate: under the lock, claims the task for replacement
 * (so two pollers never start two), then starts the recorded command detached, without a shell.
 * The replacement re-registers the same task name as its next attempt, keeping its agent id.
 *
 * @returns the replaced tasks with the new process ids.
 */
export async function replaceDeadTasks(paths: SessionPaths): Promise<Array<{ task: string; pid: number | undefined }>> {
  const claimed = await updateState(paths, (tx) => {
    const state = tx.state;
    if (!state) return [];
    const names = replacementCandidates(state);
    for (const name of names) {
      const task = state.tasks[name]!;
      task.replaced_attempt = task.attempts;
      task.replaced_at = tx.now.toISOString();
      tx.emit('replaced', { task: name, agent: task.agent, attempt: task.attempts + 1, error: task.error });
    }
    return names.map((name) => ({ name, launch: state.tasks[name]!.launch! }));
  });
  return claimed.map(({ name, launch }) => {
    const child = execa(process.execPath, launch.argv, { cwd: launch.cwd, detached: true, stdio: 'ignore', reject: false });
    child.unref();
    return { task: name, pid: child.pid };
  });
}
