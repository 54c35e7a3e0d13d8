// The plan runner: runs a whole task DAG in one process, on the same state, events, result files and scheduling decision as background mode.
import type { AgentExecutor } from '../agents/agent-types.ts';
import { OrchestratorError } from '../core/errors.ts';
import type { Plan, PlanTask } from './plan.ts';
import { writePlanStatuses } from './plan-status.ts';
import { resultPathFor } from '../execution/result-file.ts';
import { taskLine } from '../progress/event-lines.ts';
import { busySlots, decide, taskOf } from '../scheduling/scheduling.ts';
import { launchesPaused } from '../scheduling/capacity.ts';
import { watchState } from '../state/state-watcher.ts';
import { applyDecision, launchAdoptions } from '../execution/task-queue.ts';
import { ACTIVE_STATUSES, TERMINAL_STATUSES, parseStateJson, type RunnerKind, type SessionState, type TaskStatus } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { readState, updateState } from '../state/state-store.ts';
import { executeClaimedTask } from '../execution/task-execution.ts';
import { orphanOf, stopOrphanedAgents, type OrphanedAgent } from '../execution/orphaned-agents.ts';
import { openSession, reapDeadTasks, registerTask, setStatus, type SessionChoice } from '../scheduling/transitions.ts';

/** What to do with tasks not started yet when one fails. */
export type FailurePolicy = 'stop' | 'continue';

/** Options of {@link runPlan}. */
export interface PlanRunOptions {
  paths: SessionPaths;
  plan: Plan;
  workers: number;
  runner: RunnerKind;
  /** Builds the executor of one task (mock delay/fail are per task). */
  executorFor: (task: PlanTask) => AgentExecutor;
  outputDir: string;
  agentCwd: string;
  /** Keep the current session and run only tasks not completed in it. */
  resume: boolean;
  onFailure: FailurePolicy;
  /** A line of progress (default: nothing). */
  log?: (line: string) => void;
  /** Aborting cancels the run: running tasks are stopped and marked failed with the reason. */
  signal?: AbortSignal;
  /** Id of the new session (orchestrate --session_id, --detach); default a fresh one. Ignored with `resume`. */
  sessionId?: string;
  /** With `resume`: run `merge_failed` tasks again too (orchestrate --retry_merge); by default they stay as they are. */
  retryMerge?: boolean;
  /** `--adaptive`, `--budget_usd`, `--on_budget` (scheduling/capacity.ts, budget.ts); absent ones keep the session's. */
  limits?: Pick<SessionChoice, 'adaptive' | 'budgetUsd' | 'onBudget'>;
}

/** Outcome of a plan run. */
export interface PlanRunResult {
  sessionId: string;
  statuses: Record<string, TaskStatus>;
  /** Task names in the order they started. */
  startOrder: string[];
}

/**
 * Registers every task of the plan in a session and runs the DAG, taking its turns from the
 * session's one scheduling decision (scheduling.ts `decide`): a task starts when its dependencies
 * completed, no earlier task holding one of its files is active, and one of the session's
 * `workers` slots is free, counting the slots held by every process of the session (background
 * agents too); ready tasks take slots by priority, then plan order. Queued background tasks the
 * decision selects are started too (task-queue.ts), as any process of the session does.
 * A failed dependency skips its dependants; with `onFailure: 'stop'`, a failure also stops every
 * task not started yet (`skipped`). The plan's status column is rewritten after every change.
 *
 * @throws OrchestratorError when `resume` finds no session for this plan.
 */
export async function runPlan(options: PlanRunOptions): Promise<PlanRunResult> {
  const { paths, plan } = options;
  const log = options.log ?? (() => {});
  const { sessionId, orphans } = await registerPlan(options);
  await stopOrphanedAgents(orphans, log); // An agent that outlived the killed runner would work beside the next attempt.
  const byId = new Map(plan.tasks.map((task) => [task.id, task]));
  const startOrder: string[] = [];
  const inFlight = new Map<string, Promise<void>>();
  const controllers = new Map<string, AbortController>();
  let stopReason: string | null = null;
  let lastOwnState: SessionState | null = null;
  let replaced = false;
  const syncPlanFile = async (state: SessionState) => {
    if (plan.format === 'markdown') await writePlanStatuses(plan.path, state).catch(() => {});
  };
  options.signal?.addEventListener('abort', () => {
    for (const controller of controllers.values()) controller.abort(options.signal!.reason);
  });
  // Woken by state changes of any process of the session: a background agent ending frees a slot too.
  const watcher = watchState(paths, { events: false });
  const stopping = () => stopReason !== null || options.signal?.aborted === true;
  const runFinished = new Promise<void>((resolve) => {
    options.signal?.addEventListener('abort', () => resolve(), { once: true });
  });

  try {
    for (;;) {
      // The session's one scheduling decision (scheduling.ts decide), taken and recorded under the lock.
      const decision = await updateState(paths, (tx) => {
        const state = tx.state;
        // Another run replaced this session (a new orchestrate, or --new_session): its tasks are not ours
        // even where the names match, so this runner must neither claim nor skip anything there.
        if (!state || state.session_id !== sessionId)
          return { replacedBy: state?.session_id ?? null, applied: null, stopped: [], state: null };
        const stopped: string[] = [];
        if (stopping()) {
          for (const name of byId.keys()) {
            const task = taskOf(state, name);
            if (task && (task.status === 'pending' || task.status === 'waiting') && task.pid === process.pid) {
              setStatus(tx, state, name, 'skipped', { reason: stopReason ?? 'orchestration interrupted' });
              stopped.push(name);
            }
          }
        }
        const applied = applyDecision(tx, state, process.pid, paths.statePath);
        return { replacedBy: undefined, applied, stopped, state: parseStateJson(JSON.stringify(state)) };
      });
      if (decision.state === null || decision.applied === null) {
        replaced = true;
        stopReason ??= `session ${sessionId} was replaced by ${decision.replacedBy ?? 'nothing (latest.yaml is gone)'}`;
        log(`⚠️  ${stopReason}: this runner stops; its running agents are stopped.`);
        for (const controller of controllers.values()) controller.abort(new Error(stopReason));
        await Promise.allSettled(inFlight.values());
        break;
      }
      const { applied, state } = decision;
      lastOwnState = state;
      await launchAdoptions(paths, applied.adoptions);
      for (const name of [...decision.stopped, ...applied.skipped, ...applied.failed]) log(taskLine(state, name));
      for (const name of applied.own) {
        startOrder.push(name);
        log(taskLine(state, name));
        const controller = new AbortController();
        controllers.set(name, controller);
        const run = (async () => {
          const { status } = await executeClaimedTask({
            paths,
            name,
            state,
            resultPath: resultPathFor(options.outputDir, name),
            agentCwd: options.agentCwd,
            executor: options.executorFor(byId.get(name)!),
            controller,
          });
          const after = await readState(paths).catch(() => null);
          log(after?.session_id === sessionId && taskOf(after, name) ? taskLine(after, name) : `${name} ${status}`);
          if (status !== 'completed' && options.onFailure === 'stop' && !stopReason) {
            stopReason = `stopped after ${name} ${status} (--on_failure stop)`;
          }
        })();
        inFlight.set(
          name,
          run.finally(() => {
            inFlight.delete(name);
            controllers.delete(name);
          }),
        );
      }
      await syncPlanFile(state);
      const waiting = [...byId.keys()].filter((name) => {
        const task = taskOf(state, name);
        return task !== undefined && ACTIVE_STATUSES.has(task.status) && !inFlight.has(name);
      });
      if (inFlight.size === 0 && waiting.length === 0) break;
      if (
        inFlight.size === 0 &&
        applied.own.length === 0 &&
        applied.adoptions.length === 0 &&
        busySlots(state) === 0 &&
        // New starts paused for a known rate-limit reset time: they start when it passes (capacity.ts).
        !launchesPaused(state, new Date())
      ) {
        // Nothing of the session runs and nothing can start: what remains is owned by someone else, or cannot be scheduled.
        await updateState(paths, (tx) => {
          const current = tx.state;
          if (current?.session_id !== sessionId) return;
          for (const name of waiting) {
            const task = taskOf(current, name);
            if (task && ACTIVE_STATUSES.has(task.status)) setStatus(tx, current, name, 'skipped', { reason: 'could not be scheduled' });
          }
        });
        continue;
      }
      await nextChange(paths, sessionId, watcher, inFlight, runFinished, stopping);
    }
  } finally {
    watcher.close();
  }
  if (replaced) {
    // The session file now describes another run: report what this run last saw, write nothing.
    return {
      sessionId,
      statuses: Object.fromEntries(
        plan.tasks.map((task) => {
          const status = lastOwnState ? taskOf(lastOwnState, task.id)?.status : undefined;
          return [task.id, status && TERMINAL_STATUSES.has(status) ? status : 'cancelled'];
        }),
      ),
      startOrder,
    };
  }
  const final = (await readState(paths))!;
  await syncPlanFile(final);
  return {
    sessionId,
    statuses: Object.fromEntries(plan.tasks.map((task) => [task.id, taskOf(final, task.id)?.status ?? 'skipped'])),
    startOrder,
  };
}

/** Opens the session (new, or resumed) and registers the plan's tasks that must run; returns its id and the agents of their earlier attempts. */
async function registerPlan(options: PlanRunOptions): Promise<{ sessionId: string; orphans: OrphanedAgent[] }> {
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

/** Abort helper so callers can stop a run from a signal handler. */
export function abortOnSignals(controller: AbortController, signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP']): () => void {
  const handler = (signal: NodeJS.Signals) => controller.abort(new Error(`orchestrator terminated by ${signal}`));
  for (const signal of signals) process.on(signal, handler);
  return () => {
    for (const signal of signals) process.off(signal, handler);
  };
}

/** Longest wait between two looks at the state when no change wakes the runner (ms). */
const PLAN_POLL_MS = 1000;

/**
 * Waits until one of this runner's tasks ends, or the state changed in a way that gives the runner
 * something to do (the decision, read without the lock, starts, skips or fails something it may act
 * on, or the session was replaced), or the run is stopping; at most {@link PLAN_POLL_MS} between looks.
 */
async function nextChange(
  paths: SessionPaths,
  sessionId: string,
  watcher: ReturnType<typeof watchState>,
  inFlight: ReadonlyMap<string, Promise<void>>,
  runFinished: Promise<void>,
  stopping: () => boolean,
): Promise<void> {
  let ended = false;
  const anyEnded =
    inFlight.size > 0
      ? Promise.race(inFlight.values()).then(() => {
          ended = true;
        })
      : new Promise<void>(() => {});
  for (;;) {
    await Promise.race([anyEnded, runFinished, watcher.next(PLAN_POLL_MS)]);
    if (ended || stopping()) return;
    const state = await readState(paths).catch(() => null);
    if (!state || state.session_id !== sessionId) return;
    const decision = decide(state, { now: new Date(), owner: process.pid });
    if (decision.start.length + decision.skip.length + decision.fail.length + decision.stop.length + decision.requeue.length > 0) return;
  }
}
