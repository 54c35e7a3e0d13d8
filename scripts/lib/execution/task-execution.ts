// Runs a task that this process has claimed (status running): its lease and cancel watch, the executor, result file, final status.
import { errorMessage } from '../core/errors.ts';
import type { AgentExecutor, AgentOutcome } from '../agents/agent-types.ts';
import { writeResultFile } from './result-file.ts';
import { SLOT_STATUSES, taskOf } from '../scheduling/scheduling.ts';
import { type SessionState, type TaskRecord, type TaskStatus } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { readState, updateState, type StateTransaction } from '../state/state-store.ts';
import { setStatus } from '../scheduling/transitions.ts';
import { applyDecision, launchAdoptions, schedulePass, type AppliedDecision } from './task-queue.ts';
import type { AgentLaunch } from './agent-command.ts';
import { claimedTaskContext } from './agent-context.ts';
import { watchForCancel } from './cancel-watch.ts';
import { LeaseKeeper } from './lease-keeper.ts';
import { ownsTask, transitionOwnTask } from './task-ownership.ts';
import { receiptPath, writeReceiptFile } from '../verification/receipt-file.ts';
import { finalReceipt } from '../verification/final-receipt.ts';

export { ownsTask, transitionOwnTask } from './task-ownership.ts';

/** Options of {@link executeClaimedTask}. */
export interface ExecuteOptions {
  paths: SessionPaths;
  name: string;
  /** The state just after the claim (the task is `running` and owned by this process). */
  state: SessionState;
  resultPath: string;
  /** Directory the agent works in. */
  agentCwd: string;
  executor: AgentExecutor;
  /** Aborting it stops the executor; its reason becomes the failure message. */
  controller: AbortController;
  /**
   * Take the session's scheduling decision at each heartbeat (task-queue.ts `schedulePass`): for a
   * background agent, which owns nothing else. The plan runner schedules its own tasks in its loop.
   * The task's final status and the decision that gives its slot on are then one commit, so the
   * slot is refilled by this agent, which carries the environment its task was started with, and
   * never by a poller that happened to look in between (it would start the next agent with its own).
   */
  schedule?: boolean;
  /** With `schedule`: which queued launches this process could run itself (task-queue.ts `applyDecision`). */
  keep?: (launch: AgentLaunch) => boolean;
}

/** What {@link executeClaimedTask} ends with. */
export interface ExecutionEnd {
  status: TaskStatus;
  record: TaskRecord | null;
  /** With `schedule`, when the final status was this process's to write: the decision applied in the same commit (its launches started). */
  applied?: AppliedDecision;
}

/**
 * Runs the executor of a claimed task and records its outcome.
 *
 * While it runs, the task's heartbeat (`heartbeat_at`) is renewed every `lease_ms / 3`, and a
 * `cancelled` status written by cancel-session aborts the executor at once (the state file is
 * watched). The result file is written before the final status, so `completed` always has one.
 * If the task stopped being ours (cancelled, reaped, replaced), its status is left as it is and no
 * result file is written (ownership is checked again right before the result file's rename; an
 * agent that resumes after losing its task stops its executor within a few seconds).
 *
 * @returns the task's final status and record.
 */
export async function executeClaimedTask(options: ExecuteOptions): Promise<ExecutionEnd> {
  const { paths, name, state, controller } = options;
  const renew = (tx: StateTransaction, s: SessionState | null) => {
    const current = s ? taskOf(s, name) : undefined;
    if (current && ownsTask(current) && SLOT_STATUSES.has(current.status)) current.heartbeat_at = tx.now.toISOString();
  };
  // With `schedule`, each renewal also takes the session's scheduling decision in the same write, so
  // the deaths of other agents are noticed and their slots given on while anything runs.
  const lease = new LeaseKeeper(
    { renew: () => (options.schedule ? schedulePass(paths, { prelude: renew }) : updateState(paths, (tx) => renew(tx, tx.state))) },
    Math.max(1000, Math.floor(state.lease_ms / 3)),
  );
  lease.start();
  const stopWatching = watchForCancel(paths, name, state.session_id, controller);
  const { ctx, settled } = claimedTaskContext(options);

  let outcome: AgentOutcome;
  try {
    outcome = await options.executor(ctx);
  } catch (error) {
    outcome = { status: 'failed', error: errorMessage(controller.signal.aborted ? controller.signal.reason : error), body: '' };
  } finally {
    lease.stop();
    stopWatching();
    await settled();
  }
  // The agent's end is when its executor returned, before anything is read or written about it.
  const endedAt = new Date();
  if (controller.signal.aborted) {
    const reason = errorMessage(controller.signal.reason);
    const failed = await transitionOwnTask(paths, name, (tx, s) => setStatus(tx, s, name, 'failed', { reason }));
    return failed ? { status: 'failed', record: failed } : currentStatus(paths, name);
  }

  return recordOutcome(options, outcome, endedAt);
}

/**
 * Records the outcome of a claimed task's executor, while this process still owns the task: the
 * result file first (ownership checked again right before its rename), then the final status, its
 * spending summed over attempts and, with `schedule`, the scheduling decision in the same commit.
 */
async function recordOutcome(options: ExecuteOptions, outcome: AgentOutcome, endedAt: Date): Promise<ExecutionEnd> {
  const { paths, name, state } = options;
  // latest.yaml deleted under us: still write the result file (from the state of the claim), then
  // the final transition below fails with session_vanished, naming the file and what to do.
  const latestState = await readState(paths).catch((e: unknown) => {
    if ((e as { code?: string }).code === 'session_vanished') return state;
    throw e;
  });
  const current = latestState ? taskOf(latestState, name) : undefined;
  if (!current || !ownsTask(current)) return { status: current?.status ?? 'cancelled', record: current ?? null };
  const error = outcome.status !== 'completed' ? (outcome.error ?? 'agent failed') : undefined;
  // With worktree isolation the lines changed are exact, from the task's diff (the merge record's diff stat).
  const receipt = outcome.receipt ? finalReceipt(outcome.receipt, outcome.status, outcome.record?.merge?.diff_stat ?? null) : null;
  try {
    await writeResultFile(
      options.resultPath,
      {
        task: name,
        agent: current.agent,
        status: outcome.status,
        session_id: state.session_id,
        attempt: current.attempts,
        runner: current.runner,
        started_at: current.started_at,
        ended_at: endedAt.toISOString(),
        duration_ms: current.started_at ? endedAt.getTime() - Date.parse(current.started_at) : null,
        depends_on: current.depends_on,
        error,
        ...outcome.frontmatter,
        ...receipt?.frontmatter,
      },
      outcome.body,
      {
        // Looked at again right before the rename: a task reaped and replaced while this process was stopped
        // since its last look keeps the replacement's result file. (A state file deleted mid-run is no reason to
        // drop the result: the final transition names that file.)
        beforeCommit: async () => {
          const now = await readState(paths).catch(() => null);
          if (now !== null && !ownsTask(taskOf(now, name))) throw new TaskLost();
        },
      },
    );
  } catch (writeError) {
    if (writeError instanceof TaskLost) return currentStatus(paths, name);
    throw writeError;
  }
  if (receipt) await writeReceiptFile(receiptPath(options.resultPath), receipt.document);
  // Spending accumulates over attempts (registerTask carries the earlier attempts' totals over).
  const spent = { ...outcome.record, ...receipt?.record };
  for (const key of ['cost_usd', 'input_tokens', 'output_tokens'] as const) {
    const earlier = current[key];
    const now = spent[key];
    if (typeof now === 'number' && typeof earlier === 'number') spent[key] = earlier + now;
  }
  const finished = await transitionOwnTask(paths, name, (tx, s) => {
    const record = setStatus(tx, s, name, outcome.status, {
      ...spent,
      ended_at: endedAt.toISOString(),
      result_path: options.resultPath,
      reason: error,
    });
    const applied = options.schedule ? applyDecision(tx, s, process.pid, paths.statePath, options.keep) : undefined;
    return { record, applied };
  });
  if (!finished) return currentStatus(paths, name);
  if (finished.applied) await launchAdoptions(paths, finished.applied.adoptions);
  return { status: finished.record.status, record: finished.record, applied: finished.applied };
}

/** Thrown by the result file's pre-commit check: the task is no longer this process's. */
class TaskLost extends Error {}

async function currentStatus(paths: SessionPaths, name: string): Promise<{ status: TaskStatus; record: TaskRecord | null }> {
  const state = await readState(paths);
  const latest = (state ? taskOf(state, name) : undefined) ?? null;
  return { status: latest?.status ?? 'cancelled', record: latest };
}
