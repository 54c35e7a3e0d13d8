// Registering a plan's tasks in the session (new, or resumed) before the plan runner takes its turns.
import { OrchestratorError } from '../core/errors.ts';
import { orphanOf, type OrphanedAgent } from '../execution/orphaned-agents.ts';
import { taskOf } from '../scheduling/scheduling.ts';
import { openSession, reapDeadTasks, registerTask } from '../scheduling/transitions.ts';
import { TERMINAL_STATUSES } from '../state/model.ts';
import { readState, updateState } from '../state/state-store.ts';
import type { PlanRunOptions } from './plan-run-options.ts';

/**
 * Opens the session (new, or resumed) and registers the plan's tasks that must run: not the completed ones, nor
 * (without `retryMerge`) those whose work did not merge.
 * @returns the session's id and the agents of the registered tasks' earlier attempts (to stop before anything runs).
 * @throws OrchestratorError `no_session` when `resume` finds no session of this plan, `task_conflict` when a task of
 *   the plan is still active in it.
 */
export async function registerPlan(options: PlanRunOptions): Promise<{ sessionId: string; orphans: OrphanedAgent[] }> {
  const { paths, plan } = options;
  if (options.resume) {
    const current = await readState(paths);
    if (!current || current.plan_path !== plan.path) {
      throw new OrchestratorError(
        'no_session',
        `Cannot resume: the current session (${current ? `${current.session_id}, plan ${current.plan_path ?? 'none'}` : 'none'}) ` +
          `was not started from ${plan.path}. Run without --resume to start a new session.`,
      );
    }
  }
  return updateState(paths, (tx) => {
    const state = options.resume
      ? openSession(tx, { ...options.limits })
      : openSession(tx, {
          newSession: true,
          sessionId: options.sessionId,
          maxWorkers: options.workers,
          planPath: plan.path,
          ...options.limits,
        });
    state.max_workers = options.workers;
    if (options.resume) reapDeadTasks(tx, state);
    const orphans: OrphanedAgent[] = [];
    for (const task of plan.tasks) {
      const existing = taskOf(state, task.id);
      if (existing?.status === 'completed') continue;
      // A task whose work did not merge waits for the user's decision: --retry_merge re-runs it (told what conflicted).
      if (existing?.status === 'merge_failed' && !options.retryMerge) continue;
      if (existing && !TERMINAL_STATUSES.has(existing.status)) {
        throw new OrchestratorError(
          'task_conflict',
          `Cannot resume: task ${task.id} is still ${existing.status} (pid ${existing.pid}). Stop it with cancel-session first.`,
        );
      }
      orphans.push(...orphanOf(task.id, existing?.agent_child));
      registerTask(tx, state, {
        name: task.id,
        goal: task.goal,
        dependsOn: task.dependsOn,
        priority: task.priority,
        files: task.files,
        runner: options.runner,
        pid: process.pid,
      });
    }
    return { sessionId: state.session_id, orphans };
  });
}
