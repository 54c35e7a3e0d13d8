// Worker replacement (the seeds' "replace failed workers, same ID"): restart the agent of a task whose process died.
import { startAgent, validateAgentLaunch, type AgentLaunch } from './agent-command.ts';
import { orphanOf, stopOrphanedAgents, type OrphanedAgent } from './orphaned-agents.ts';
import { errorMessage } from '../core/errors.ts';
import type { SessionState } from '../state/model.ts';
import { taskOf } from '../scheduling/scheduling.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { updateState } from '../state/state-store.ts';

/**
 * Tasks whose agent died (process gone or lease expired) and may be started again: a recorded
 * launch, attempts left (`attempts < max_attempts`), and no replacement started yet for this attempt.
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

/** A replacement that was not started, and why. */
export interface RefusedReplacement {
  task: string;
  reason: string;
}

/**
 * Starts a replacement agent for each candidate. Under the lock, each candidate's recorded launch
 * is validated ({@link validateAgentLaunch}: a state file is data and may come from anywhere) and
 * the task is claimed for replacement, so two pollers never start two. A launch that fails
 * validation is never run: the task stays failed, its launch is cleared and its error says why
 * (`not replaced: ...`), and `onRefused` is told. Valid ones are started detached, without a
 * shell, through the skill's own launcher (`runScript`), with the command rebuilt from the
 * validated fields. The replacement re-registers the same task name as its next attempt, keeping
 * its agent id.
 *
 * A dead agent's own process that still runs (its `claude` CLI, `agent_child`) is stopped first
 * (orphaned-agents.ts), so the task never has two agents at once.
 *
 * @param onRefused - told about each refused launch (default: a line on stderr).
 * @param onStopped - told about each orphaned agent stopped (default: a line on stderr).
 * @returns the replaced tasks with the new process ids.
 */
export async function replaceDeadTasks(
  paths: SessionPaths,
  onRefused: (refused: RefusedReplacement) => void = ({ task, reason }) =>
    void process.stderr.write(`poll-session: not replacing ${task}: ${reason}\n`),
  onStopped: (line: string) => void = (line) => void process.stderr.write(`poll-session: ${line}\n`),
): Promise<Array<{ task: string; pid: number | undefined }>> {
  const { claimed, refused } = await updateState(paths, (tx) => {
    const claimed: Array<{ name: string; launch: AgentLaunch; orphans: OrphanedAgent[] }> = [];
    const refused: RefusedReplacement[] = [];
    const state = tx.state;
    if (!state) return { claimed, refused };
    for (const name of replacementCandidates(state)) {
      const task = taskOf(state, name)!;
      let launch: AgentLaunch;
      try {
        launch = validateAgentLaunch(task.launch, name, paths.statePath);
      } catch (error) {
        const reason = `recorded launch refused: ${errorMessage(error)}`;
        task.launch = null;
        task.error = `${task.error ?? 'agent died'}; not replaced: ${reason}`;
        refused.push({ task: name, reason });
        continue;
      }
      task.replaced_attempt = task.attempts;
      task.replaced_at = tx.now.toISOString();
      tx.emit('replaced', { task: name, agent: task.agent, attempt: task.attempts + 1, error: task.error });
      claimed.push({ name, launch, orphans: orphanOf(name, task.agent_child) });
    }
    return { claimed, refused };
  });
  for (const entry of refused) onRefused(entry);
  return Promise.all(
    claimed.map(async ({ name, launch, orphans }) => {
      // The dead agent's CLI may have outlived it (a process group of its own): stopped before its replacement starts.
      await stopOrphanedAgents(orphans, onStopped);
      const outcome = await startAgent(launch);
      return { task: name, pid: 'pid' in outcome ? outcome.pid : undefined };
    }),
  );
}
