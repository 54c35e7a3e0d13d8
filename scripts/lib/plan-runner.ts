// The plan runner: runs a whole task DAG in one process with p-limit, on the same state, events and result files as background mode.
import pLimit from 'p-limit';
import type { AgentExecutor } from './agent-types.ts';
import { OrchestratorError } from './errors.ts';
import type { Plan, PlanTask } from './plan.ts';
import { writePlanStatuses } from './plan-status.ts';
import { resultPathFor } from './result-file.ts';
import { checkDependencies, compareForSlot, fileConflicts, taskOf } from './scheduling.ts';
import { ACTIVE_STATUSES, TERMINAL_STATUSES, parseStateJson, type RunnerKind, type SessionState, type TaskStatus } from './schema.ts';
import type { SessionPaths } from './session-paths.ts';
import { readState, updateState } from './state-store.ts';
import { executeClaimedTask } from './task-execution.ts';
import { openSession, ownerFields, reapDeadTasks, registerTask, setStatus } from './transitions.ts';

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
}

/** Outcome of a plan run. */
export interface PlanRunResult {
  sessionId: string;
  statuses: Record<string, TaskStatus>;
  /** Task names in the order they started. */
  startOrder: string[];
}

/**
 * Registers every task of the plan in a session and runs the DAG: a task starts when its
 * dependencies completed, no earlier task holding one of its files is active, and one of the
 * `workers` slots (p-limit) is free; ready tasks take slots by priority, then plan order.
 * A failed dependency skips its dependants; with `onFailure: 'stop'`, a failure also stops every
 * task not started yet (`skipped`). The plan's status column is rewritten after every change.
 *
 * @throws OrchestratorError when `resume` finds no session for this plan.
 */
export async function runPlan(options: PlanRunOptions): Promise<PlanRunResult> {
  const { paths, plan } = options;
  const log = options.log ?? (() => {});
  const sessionId = await registerPlan(options);
  const byId = new Map(plan.tasks.map((task) => [task.id, task]));
  const limit = pLimit(options.workers);
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

  for (;;) {
    // Decide, under the lock, which tasks start now and which are skipped; then start them.
    const decision = await updateState(paths, (tx) => {
      const state = tx.state;
      // Another run replaced this session (a new orchestrate, or --new_session): its tasks are not ours
      // even where the names match, so this runner must neither claim nor skip anything there.
      if (!state || state.session_id !== sessionId) return { replacedBy: state?.session_id ?? null, toStart: [], skipped: [], state: null };
      const skipped: string[] = [];
      const toStart: string[] = [];
      for (const name of byId.keys()) {
        const task = taskOf(state, name);
        if (!task || task.status !== 'pending' && task.status !== 'waiting') continue;
        if (stopReason || options.signal?.aborted) {
          setStatus(tx, state, name, 'skipped', { reason: stopReason ?? 'orchestration interrupted' });
          skipped.push(name);
          continue;
        }
        const verdict = checkDependencies(state, name);
        if (verdict.kind === 'dependency_failed') {
          const how = verdict.status === 'cancelled' ? 'was cancelled' : verdict.status;
          setStatus(tx, state, name, 'skipped', { reason: `dependency ${verdict.dependency} ${how}` });
          skipped.push(name);
        }
      }
      const free = options.workers - inFlight.size;
      if (free > 0 && !stopReason && !options.signal?.aborted) {
        const ready = [...byId.keys()]
          .filter((name) => {
            const task = taskOf(state, name);
            return task && (task.status === 'pending' || task.status === 'waiting') && !inFlight.has(name) &&
              checkDependencies(state, name).kind === 'ready' && fileConflicts(state, name).length === 0;
          })
          .sort((a, b) => compareForSlot(taskOf(state, a)!, taskOf(state, b)!));
        for (const name of ready.slice(0, free)) {
          setStatus(tx, state, name, 'running', ownerFields(process.pid));
          toStart.push(name);
        }
      }
      for (const name of byId.keys()) {
        const task = taskOf(state, name);
        if (task?.status === 'pending' && !toStart.includes(name)) {
          const verdict = checkDependencies(state, name);
          setStatus(tx, state, name, 'waiting', {
            waiting_on: verdict.kind === 'blocked' ? verdict.on : fileConflicts(state, name),
          });
        }
      }
      return { replacedBy: undefined, toStart, skipped, state: parseStateJson(JSON.stringify(state)) };
    });
    if (decision.state === null) {
      replaced = true;
      stopReason ??= `session ${sessionId} was replaced by ${decision.replacedBy ?? 'nothing (latest.yaml is gone)'}`;
      log(`⚠️  ${stopReason}: this runner stops; its running agents are stopped.`);
      for (const controller of controllers.values()) controller.abort(new Error(stopReason));
      await Promise.allSettled(inFlight.values());
      break;
    }
    lastOwnState = decision.state;
    for (const name of decision.skipped) log(`⏭️  ${name} skipped (${taskOf(decision.state, name)!.error})`);
    for (const name of decision.toStart) {
      startOrder.push(name);
      log(`🔵 ${name} started (${taskOf(decision.state, name)!.agent})`);
      const controller = new AbortController();
      controllers.set(name, controller);
      const run = limit(async () => {
        const { status, record } = await executeClaimedTask({
          paths,
          name,
          state: decision.state,
          resultPath: resultPathFor(options.outputDir, name),
          agentCwd: options.agentCwd,
          executor: options.executorFor(byId.get(name)!),
          controller,
        });
        const icon = status === 'completed' ? '✅' : status === 'cancelled' ? '🚫' : '❌';
        log(`${icon} ${name} ${status}${record?.duration_ms != null ? ` in ${(record.duration_ms / 1000).toFixed(1)} s` : ''}${record?.error && status !== 'completed' ? `: ${record.error}` : ''}`);
        if (status !== 'completed' && options.onFailure === 'stop' && !stopReason) {
          stopReason = `stopped after ${name} ${status} (--on_failure stop)`;
        }
      });
      inFlight.set(
        name,
        run.finally(() => {
          inFlight.delete(name);
          controllers.delete(name);
        }),
      );
    }
    await syncPlanFile(decision.state);
    const active = Object.entries(decision.state.tasks).filter(([name, task]) => byId.has(name) && ACTIVE_STATUSES.has(task.status));
    if (inFlight.size === 0) {
      if (active.length === 0) break;
      if (decision.toStart.length === 0) {
        // Nothing runs and nothing can start: only tasks owned by someone else (or cancelled) remain.
        const stuck = active.map(([name]) => name);
        await updateState(paths, (tx) => {
          if (tx.state?.session_id !== sessionId) return;
          for (const name of stuck) {
            const task = taskOf(tx.state!, name);
            if (task && ACTIVE_STATUSES.has(task.status)) setStatus(tx, tx.state!, name, 'skipped', { reason: 'could not be scheduled' });
          }
        });
        continue;
      }
    }
    if (inFlight.size > 0) await Promise.race(inFlight.values());
  }
  if (replaced) {
    // The session file now describes another run: report what this run last saw, write nothing.
    return {
      sessionId,
      statuses: Object.fromEntries(plan.tasks.map((task) => {
        const status = lastOwnState ? taskOf(lastOwnState, task.id)?.status : undefined;
        return [task.id, status && TERMINAL_STATUSES.has(status) ? status : 'cancelled'];
      })),
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

/** Opens the session (new, or the resumed one) and registers the plan's tasks that must run. */
async function registerPlan(options: PlanRunOptions): Promise<string> {
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
    const state = options.resume ? tx.state! : openSession(tx, { newSession: true, sessionId: options.sessionId, maxWorkers: options.workers, planPath: plan.path });
    state.max_workers = options.workers;
    if (options.resume) reapDeadTasks(tx, state);
    for (const task of plan.tasks) {
      const existing = taskOf(state, task.id);
      if (existing?.status === 'completed') continue;
      if (existing && !TERMINAL_STATUSES.has(existing.status)) {
        throw new OrchestratorError('task_conflict', `Cannot resume: task ${task.id} is still ${existing.status} (pid ${existing.pid}). Stop it with cancel-session first.`);
      }
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
    return state.session_id;
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

