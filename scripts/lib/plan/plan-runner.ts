// The plan runner: runs a whole task DAG in one process, on the same state, events, result files and scheduling decision as background mode.
import { plainTaskLine } from '../execution/background-options.ts';
import { resultPathFor } from '../execution/result-file.ts';
import { stopOrphanedAgents } from '../execution/orphaned-agents.ts';
import { executeClaimedTask } from '../execution/task-execution.ts';
import { applyDecision, launchAdoptions, type AppliedDecision } from '../execution/task-queue.ts';
import { launchesPaused } from '../scheduling/capacity.ts';
import { busySlots, decide, taskOf } from '../scheduling/scheduling.ts';
import { setStatus } from '../scheduling/transitions.ts';
import { ACTIVE_STATUSES, TERMINAL_STATUSES, parseStateJson, type SessionState } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { watchState } from '../state/state-watcher.ts';
import { readState, updateState } from '../state/state-store.ts';
import type { PlanTask } from './plan.ts';
import type { PlanRunOptions, PlanRunResult } from './plan-run-options.ts';
import { registerPlan } from './plan-register.ts';
import { writePlanStatuses } from './plan-status.ts';

export type { FailurePolicy, PlanRunOptions, PlanRunResult } from './plan-run-options.ts';

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
  const log = options.log ?? (() => {});
  const { sessionId, orphans } = await registerPlan(options);
  await stopOrphanedAgents(orphans, log); // An agent that outlived the killed runner would work beside the next attempt.
  const run = new PlanRun(options, sessionId, log);
  options.signal?.addEventListener('abort', () => run.abortAll(options.signal!.reason));
  // Woken by state changes of any process of the session: a background agent ending frees a slot too.
  const watcher = watchState(options.paths, { events: false });
  const runFinished = new Promise<void>((resolve) => {
    options.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  try {
    for (;;) {
      const turn = await run.takeTurn();
      if (turn === null) {
        await run.stopReplaced();
        break;
      }
      const { applied, state } = turn;
      await launchAdoptions(options.paths, applied.adoptions);
      for (const name of [...turn.stopped, ...applied.skipped, ...applied.failed]) log(run.describe(state, name));
      for (const name of applied.own) run.start(name, state);
      await run.syncPlanFile(state);
      const waiting = run.waitingTasks(state);
      if (run.inFlight.size === 0 && waiting.length === 0) break;
      if (
        run.inFlight.size === 0 &&
        applied.own.length === 0 &&
        applied.adoptions.length === 0 &&
        busySlots(state) === 0 &&
        // New starts paused for a known rate-limit reset time: they start when it passes (capacity.ts).
        !launchesPaused(state, new Date())
      ) {
        // Nothing of the session runs and nothing can start: what remains is owned by someone else, or cannot be scheduled.
        await run.skipUnschedulable(waiting);
        continue;
      }
      await nextChange(options.paths, sessionId, watcher, run.inFlight, runFinished, () => run.stopping());
    }
  } finally {
    watcher.close();
  }
  return run.result();
}

/** One turn of the runner: the session's decision as applied (under the lock), and the state it left. */
interface Turn {
  applied: AppliedDecision;
  /** This runner's tasks skipped because the run is stopping. */
  stopped: string[];
  /** A copy of the state after the turn. */
  state: SessionState;
}

/** One run of a plan in this process: its tasks in flight, why it stops, and the last state of its session it saw. */
class PlanRun {
  readonly byId: Map<string, PlanTask>;
  readonly startOrder: string[] = [];
  readonly inFlight = new Map<string, Promise<void>>();
  readonly controllers = new Map<string, AbortController>();
  stopReason: string | null = null;
  lastOwnState: SessionState | null = null;
  replaced = false;
  readonly describe: (state: SessionState, name: string) => string;

  constructor(
    readonly options: PlanRunOptions,
    readonly sessionId: string,
    readonly log: (line: string) => void,
  ) {
    this.byId = new Map(options.plan.tasks.map((task) => [task.id, task]));
    this.describe = options.describe ?? plainTaskLine;
  }

  stopping(): boolean {
    return this.stopReason !== null || this.options.signal?.aborted === true;
  }

  abortAll(reason: unknown): void {
    for (const controller of this.controllers.values()) controller.abort(reason);
  }

  /**
   * The session's one scheduling decision (scheduling.ts decide), taken and recorded under the lock; while stopping,
   * this runner's tasks not started are skipped first. @returns null when another run replaced the session.
   */
  async takeTurn(): Promise<Turn | null> {
    const { paths } = this.options;
    const turn = await updateState(paths, (tx): Turn | { replacedBy: string | null } => {
      const state = tx.state;
      // Another run replaced this session (a new orchestrate, or --new_session): its tasks are not ours
      // even where the names match, so this runner must neither claim nor skip anything there.
      if (!state || state.session_id !== this.sessionId) return { replacedBy: state?.session_id ?? null };
      const stopped: string[] = [];
      if (this.stopping()) {
        for (const name of this.byId.keys()) {
          const task = taskOf(state, name);
          if (task && (task.status === 'pending' || task.status === 'waiting') && task.pid === process.pid) {
            setStatus(tx, state, name, 'skipped', { reason: this.stopReason ?? 'orchestration interrupted' });
            stopped.push(name);
          }
        }
      }
      const applied = applyDecision(tx, state, process.pid, paths.statePath);
      return { applied, stopped, state: parseStateJson(JSON.stringify(state)) };
    });
    if (!('applied' in turn)) {
      this.replaced = true;
      this.stopReason ??= `session ${this.sessionId} was replaced by ${turn.replacedBy ?? 'nothing (latest.yaml is gone)'}`;
      return null;
    }
    this.lastOwnState = turn.state;
    return turn;
  }

  /** The session was replaced: this runner stops its agents and waits for them. */
  async stopReplaced(): Promise<void> {
    this.log(`⚠️  ${this.stopReason}: this runner stops; its running agents are stopped.`);
    this.abortAll(new Error(this.stopReason ?? 'session replaced'));
    await Promise.allSettled(this.inFlight.values());
  }

  /** Runs a task this runner claimed, in the background of this process; it is in {@link inFlight} until it ends. */
  start(name: string, state: SessionState): void {
    const { options } = this;
    this.startOrder.push(name);
    this.log(this.describe(state, name));
    const controller = new AbortController();
    this.controllers.set(name, controller);
    const run = (async () => {
      const { status } = await executeClaimedTask({
        paths: options.paths,
        name,
        state,
        resultPath: resultPathFor(options.outputDir, name),
        agentCwd: options.agentCwd,
        executor: options.executorFor(this.byId.get(name)!),
        controller,
      });
      const after = await readState(options.paths).catch(() => null);
      this.log(after?.session_id === this.sessionId && taskOf(after, name) ? this.describe(after, name) : `${name} ${status}`);
      if (status !== 'completed' && options.onFailure === 'stop' && !this.stopReason) {
        this.stopReason = `stopped after ${name} ${status} (--on_failure stop)`;
      }
    })();
    this.inFlight.set(
      name,
      run.finally(() => {
        this.inFlight.delete(name);
        this.controllers.delete(name);
      }),
    );
  }

  /** The plan's tasks still active in `state` that this runner does not run itself. */
  waitingTasks(state: SessionState): string[] {
    return [...this.byId.keys()].filter((name) => {
      const task = taskOf(state, name);
      return task !== undefined && ACTIVE_STATUSES.has(task.status) && !this.inFlight.has(name);
    });
  }

  /** Skips `waiting` tasks that are still active: nothing of the session runs and none of them can start. */
  async skipUnschedulable(waiting: readonly string[]): Promise<void> {
    await updateState(this.options.paths, (tx) => {
      const current = tx.state;
      if (current?.session_id !== this.sessionId) return;
      for (const name of waiting) {
        const task = taskOf(current, name);
        if (task && ACTIVE_STATUSES.has(task.status)) setStatus(tx, current, name, 'skipped', { reason: 'could not be scheduled' });
      }
    });
  }

  /** Rewrites the status column of a Markdown plan. */
  async syncPlanFile(state: SessionState): Promise<void> {
    if (this.options.plan.format === 'markdown') await writePlanStatuses(this.options.plan.path, state).catch(() => {});
  }

  /** The run's outcome; after a replacement, what this run last saw of its session (nothing is written then). */
  async result(): Promise<PlanRunResult> {
    const { plan, paths } = this.options;
    const { sessionId, startOrder } = this;
    if (this.replaced) {
      const last = this.lastOwnState;
      const statusOf = (id: string) => {
        const status = last ? taskOf(last, id)?.status : undefined;
        return status && TERMINAL_STATUSES.has(status) ? status : 'cancelled';
      };
      return { sessionId, statuses: Object.fromEntries(plan.tasks.map((task) => [task.id, statusOf(task.id)])), startOrder };
    }
    const final = (await readState(paths))!;
    await this.syncPlanFile(final);
    return {
      sessionId,
      statuses: Object.fromEntries(plan.tasks.map((task) => [task.id, taskOf(final, task.id)?.status ?? 'skipped'])),
      startOrder,
    };
  }
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
