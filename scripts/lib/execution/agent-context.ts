// The context a claimed task's agent runs with: its task, its dependencies' results, and the callbacks that record what it does in the state (each only while this process owns the task).
import { setTimeout as delay } from 'node:timers/promises';
import type { AgentContext } from '../agents/agent-types.ts';
import { applyLiveProgress } from '../agents/live-progress.ts';
import { agentBudgetShare } from '../scheduling/budget.ts';
import { noteRateLimit, retryMayStart } from '../scheduling/capacity.ts';
import { taskOf } from '../scheduling/scheduling.ts';
import { setStatus } from '../scheduling/transitions.ts';
import type { SessionState } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { updateState } from '../state/state-store.ts';
import { transitionOwnTask } from './task-ownership.ts';

/** How often a retry waiting for the adaptive limit looks again (ms; plus up to as much jitter). */
const RETRY_SLOT_POLL_MS = 300;

/** What a claimed task's agent context is built from. */
export interface ClaimedTask {
  paths: SessionPaths;
  name: string;
  /** The state just after the claim. */
  state: SessionState;
  resultPath: string;
  agentCwd: string;
  controller: AbortController;
}

/**
 * The agent context of a claimed task (agent-types.ts `AgentContext`): what the agent is to do, and
 * callbacks that record its retries, its process, predicted conflicts, live progress, new tries and
 * rate limits in the state, each as a change made only while this process owns the task.
 * @returns the context, and `settled()`: resolves once every write of the agent's process identity landed (they are serialised).
 */
export function claimedTaskContext(task: ClaimedTask): { ctx: AgentContext; settled: () => Promise<void> } {
  const { paths, name, state, controller } = task;
  const record = taskOf(state, name)!;
  let childWrites: Promise<void> = Promise.resolve();
  const ctx: AgentContext = {
    taskName: name,
    agent: record.agent,
    goal: record.goal,
    dependsOn: record.depends_on,
    files: record.files,
    attempt: record.attempts,
    session_id: state.session_id,
    session_created_at: state.created_at,
    cwd: task.agentCwd,
    resultPath: task.resultPath,
    dependencyResults: Object.fromEntries(
      record.depends_on.flatMap((dep) => {
        const depPath = taskOf(state, dep)?.result_path;
        return depPath ? [[dep, depPath]] : [];
      }),
    ),
    signal: controller.signal,
    markRetrying: async (reason, delayMs) => {
      await transitionOwnTask(paths, name, (tx, s) =>
        setStatus(tx, s, name, 'retrying', { reason, next_retry_at: new Date(tx.now.getTime() + delayMs).toISOString() }),
      );
    },
    recordChild: (identity) => {
      // Serialised, so a late "started" write never lands after the "ended" one.
      childWrites = childWrites.then(() =>
        transitionOwnTask(paths, name, (_tx, s) => {
          taskOf(s, name)!.agent_child = identity;
          return true;
        }).then(
          () => undefined,
          () => undefined,
        ),
      );
      return childWrites;
    },
    recordPredictedConflicts: async (conflicts) => {
      await transitionOwnTask(paths, name, (tx, s) => {
        const task = taskOf(s, name)!;
        task.predicted_conflicts = [...conflicts];
        tx.emit('conflict_predicted', { task: name, agent: task.agent, paths: [...conflicts] });
        return true;
      });
    },
    recordProgress: async (progress) => {
      // The runner throttles these (at most one per few seconds); an unchanged picture writes nothing.
      await transitionOwnTask(paths, name, (tx, s) => applyLiveProgress(tx, s, name, progress));
    },
    markRunning: async (options) => {
      // A retry obeys the session's adaptive limit and launch pause like a new start (scheduling/capacity.ts);
      // a try already started elsewhere only counts (waiting for a slot it holds would wait forever with one worker).
      for (;;) {
        const running = await transitionOwnTask(paths, name, (tx, s) =>
          options?.started || retryMayStart(s, tx.now) ? setStatus(tx, s, name, 'running') : ('wait' as const),
        );
        if (running === 'wait' && !controller.signal.aborted) {
          await delay(RETRY_SLOT_POLL_MS + Math.floor(Math.random() * RETRY_SLOT_POLL_MS), undefined, { signal: controller.signal }).catch(
            () => undefined,
          );
          continue;
        }
        if (running && running !== 'wait') ctx.attempt = running.attempts;
        return;
      }
    },
    reportRateLimit: async (signal) => {
      await updateState(paths, (tx) =>
        tx.state?.session_id === state.session_id ? noteRateLimit(tx, tx.state, { ...signal, task: name }) : null,
      );
    },
    budgetShareUsd: agentBudgetShare(state, name),
  };

  return { ctx, settled: () => childWrites };
}
