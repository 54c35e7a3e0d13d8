// Runs a task that this process has claimed (status running): heartbeat, executor, result file, final status.
import { errorMessage } from '../core/errors.ts';
import { openEventReader } from '../state/event-reader.ts';
import type { AgentContext, AgentExecutor, AgentOutcome } from '../agents/agent-types.ts';
import { applyLiveProgress } from '../agents/live-progress.ts';
import { writeResultFile } from './result-file.ts';
import { selfIdentity } from '../process/identity.ts';
import { SLOT_STATUSES, taskOf } from '../scheduling/scheduling.ts';
import { TERMINAL_STATUSES, type SessionState, type TaskRecord, type TaskStatus } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { readState, updateState, type StateTransaction } from '../state/state-store.ts';
import { watchState } from '../state/state-watcher.ts';
import { setStatus } from '../scheduling/transitions.ts';
import { applyDecision, launchAdoptions, schedulePass, type AppliedDecision } from './task-queue.ts';
import { setTimeout as delay } from 'node:timers/promises';
import { noteRateLimit, retryMayStart } from '../scheduling/capacity.ts';
import { agentBudgetShare } from '../scheduling/budget.ts';
import type { AgentLaunch } from './agent-command.ts';

/** How often a retry waiting for the adaptive limit looks again (ms; plus up to as much jitter). */
const RETRY_SLOT_POLL_MS = 300;

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
  const record = taskOf(state, name)!;
  const renew = (tx: StateTransaction, s: SessionState | null) => {
    const current = s ? taskOf(s, name) : undefined;
    if (current && ownsTask(current) && SLOT_STATUSES.has(current.status)) current.heartbeat_at = tx.now.toISOString();
  };
  /** A renewal still waiting for the lock: the next tick does not queue a second one behind it (on a starved machine they piled up). */
  let beating = false;
  const heartbeat = setInterval(
    () => {
      if (beating) return;
      beating = true;
      // With `schedule`, each tick also takes the session's scheduling decision in the same write, so
      // the deaths of other agents are noticed and their slots given on while anything runs.
      const beat = options.schedule ? schedulePass(paths, { prelude: renew }) : updateState(paths, (tx) => renew(tx, tx.state));
      void beat
        .catch(() => {
          // A missed heartbeat is retried at the next tick; the lease allows for several.
        })
        .finally(() => (beating = false));
    },
    Math.max(1000, Math.floor(state.lease_ms / 3)),
  );
  heartbeat.unref();
  const stopWatching = watchForCancel(paths, name, state.session_id, controller);

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
    cwd: options.agentCwd,
    resultPath: options.resultPath,
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

  let outcome: AgentOutcome;
  try {
    outcome = await options.executor(ctx);
  } catch (error) {
    outcome = { status: 'failed', error: errorMessage(controller.signal.aborted ? controller.signal.reason : error), body: '' };
  } finally {
    clearInterval(heartbeat);
    stopWatching();
    await childWrites;
  }
  // The agent's end is when its executor returned, before anything is read or written about it.
  const endedAt = new Date();
  if (controller.signal.aborted) {
    const reason = errorMessage(controller.signal.reason);
    const failed = await transitionOwnTask(paths, name, (tx, s) => setStatus(tx, s, name, 'failed', { reason }));
    return failed ? { status: 'failed', record: failed } : currentStatus(paths, name);
  }

  // latest.yaml deleted under us: still write the result file (from the state of the claim), then
  // the final transition below fails with session_vanished, naming the file and what to do.
  const latestState = await readState(paths).catch((e: unknown) => {
    if ((e as { code?: string }).code === 'session_vanished') return state;
    throw e;
  });
  const current = latestState ? taskOf(latestState, name) : undefined;
  if (!current || !ownsTask(current)) return { status: current?.status ?? 'cancelled', record: current ?? null };
  const error = outcome.status !== 'completed' ? (outcome.error ?? 'agent failed') : undefined;
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
  // Spending accumulates over attempts (registerTask carries the earlier attempts' totals over).
  const spent = { ...outcome.record };
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
function watchForCancel(paths: SessionPaths, name: string, sessionId: string, controller: AbortController): () => void {
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
