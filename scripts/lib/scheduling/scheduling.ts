// Pure scheduling rules over a session state: dependencies, the worker limit, priorities, file conflicts and leases,
// and the one scheduling decision (decide) every process of a session takes its turns from.
import { checkIdentityCached } from '../process/identity.ts';
import { PRIORITIES, TERMINAL_STATUSES, type SessionState, type TaskRecord } from '../state/model.ts';
import { deathReason, SLOT_STATUSES, type IdentityCheck, type RunStateCheck } from './liveness.ts';

export { deathReason, SLOT_STATUSES, STARVED_LEASES, type IdentityCheck, type RunStateCheck } from './liveness.ts';
import { budgetAdmits, budgetPicture, budgetReached, budgetStopReason } from './budget.ts';
import { effectiveLimit, launchesPaused } from './capacity.ts';
import { taskOf } from '../state/task-machine.ts';

export { taskOf } from '../state/task-machine.ts';

/** The registration index of a task (its agent number), the tie-breaker after priority. */
export function registrationIndex(record: TaskRecord): number {
  return Number(record.agent.slice('Agent-'.length));
}

/**
 * Tasks that must end before `name` may run because they declare a file it declares too (the
 * seeds' implicit dependency): any running task sharing a file, and any earlier-registered task
 * sharing one that has not ended. Paths are compared as written after normalising `./`.
 */
export function fileConflicts(state: SessionState, name: string): string[] {
  if (!taskOf(state, name)) return [];
  return conflictsIn(state, name, new Map(Object.entries(state.tasks).map(([other, task]) => [other, task.status])));
}

function normaliseFile(file: string): string {
  return file.replace(/^(\.\/)+/, '').replace(/\/+/g, '/');
}

/** Number of tasks holding a worker slot (running or retrying, claimed launches included). */
export function busySlots(state: SessionState): number {
  return Object.values(state.tasks).filter((task) => SLOT_STATUSES.has(task.status)).length;
}

/** Orders tasks for a free slot: priority (P0 first), then registration order. */
export function compareForSlot(a: TaskRecord, b: TaskRecord): number {
  return PRIORITIES.indexOf(a.priority) - PRIORITIES.indexOf(b.priority) || registrationIndex(a) - registrationIndex(b);
}

/** Options of {@link decide}. */
export interface DecideOptions {
  /** The decision's clock (dependency deadlines, leases). */
  now: Date;
  /**
   * The process asking (its pid). The answer then lists only what it may act on: tasks it owns and
   * queued tasks nobody owns (waiting, `pid` null). Slots still go in the session's order, so a task
   * of another owner ahead in the queue keeps its slot for that owner. Omitted: every task.
   */
  owner?: number;
  /** Tells whether a recorded owner is alive (default {@link checkIdentityCached}; tests inject one). */
  identity?: IdentityCheck;
  /** Tells whether a live owner is stopped (default {@link processRunState}; tests inject one). */
  runState?: RunStateCheck;
}

/** What the session should do now (see {@link decide}). */
export interface Decision {
  /** Waiting tasks that take a free slot now, in slot order. */
  start: string[];
  /** Waiting tasks to mark `skipped`: a dependency failed, was skipped or was cancelled. */
  skip: Array<{ name: string; reason: string }>;
  /** Tasks to mark `failed`: a dependency never appeared by the deadline, or (`died`) the owner died or its lease expired. */
  fail: Array<{ name: string; reason: string; died: boolean }>;
  /** Tasks that keep waiting, and on what (dependencies, tasks holding a file; empty: a worker slot or the budget). */
  wait: Array<{ name: string; on: string[] }>;
  /** Running tasks to stop (`cancelled`): the budget is spent and the session says `on_budget: stop`. */
  stop: Array<{ name: string; reason: string }>;
  /**
   * Launch claims past their lease with no process ever recorded for them (the claimer died between its claim and
   * the launch, e.g. stopped by cancel-session): no agent ever ran the task, so it is queued again, not failed.
   */
  requeue: Array<{ name: string; reason: string }>;
}

/**
 * The one scheduling decision of a session, a pure function of its state (plus the clock and the
 * identity check): both background agents and the plan runner, poll-session and orchestrate take
 * their turns from it, so every process of a session agrees on who runs next.
 *
 * 1. Active tasks whose owner died or whose lease expired fail (`died`), freeing their slots.
 * 2. Waiting tasks (`pending`/`waiting`) whose dependency ended badly are skipped (unless
 *    `on_dep_failure: run`); those with a dependency still unregistered past `dep_deadline` fail.
 *    Both cascade within the same decision: a dependant of a task skipped here is skipped too.
 * 3. With a session budget that is reached (budget.ts `budgetReached`: spent + one task's reserve
 *    exceeds it), every waiting task is skipped with a `budget: ...` reason; with `on_budget: stop`
 *    the running ones are stopped once the money gone (recorded + live estimates) reaches it.
 * 4. The remaining waiting tasks whose dependencies completed and that hold no file conflict
 *    ({@link fileConflicts}) take the free slots by priority (P0 first), then registration order;
 *    the rest wait. Free slots: the effective limit (capacity.ts `effectiveLimit`: `max_workers`,
 *    or less after rate limits) minus every running/retrying task of every process; none while new
 *    starts are paused for a known reset time. Each start must also fit the budget
 *    (budget.ts `budgetAdmits`). Running agents are never stopped by the limit.
 *
 * @returns the decision, each list in slot order (start) or registration order (the rest).
 */
export function decide(state: SessionState, options: DecideOptions): Decision {
  const { now, owner } = options;
  const identity = options.identity ?? checkIdentityCached;
  const status = new Map<string, string>();
  const entries = Object.entries(state.tasks).sort(([, a], [, b]) => registrationIndex(a) - registrationIndex(b));
  for (const [name, task] of entries) status.set(name, task.status);
  const all: Decision = { start: [], skip: [], fail: [], wait: [], stop: [], requeue: [] };
  for (const [name, task] of entries) {
    const reason = deathReason(state, task, now, identity, options.runState);
    if (reason === null) continue;
    if (task.pid === null && task.launched === null) {
      // Queued again, in its place: this same decision may give it a slot (a new claim).
      all.requeue.push({ name, reason });
      status.set(name, 'waiting');
    } else {
      all.fail.push({ name, reason, died: true });
      status.set(name, 'failed');
    }
  }
  const waiting = (name: string) => status.get(name) === 'pending' || status.get(name) === 'waiting';
  cascadeDependencyEnds(entries, status, now, all);
  const holdsSlot = (name: string) => SLOT_STATUSES.has(status.get(name)!);
  const money = budgetPicture(state, (name) => status.get(name)!);
  const spentOut = budgetReached(money);
  if (spentOut !== null) {
    for (const [name] of entries) {
      if (!waiting(name)) continue;
      all.skip.push({ name, reason: spentOut });
      status.set(name, 'skipped');
    }
  }
  const stopWhy = budgetStopReason(state, money);
  if (stopWhy !== null) for (const [name] of entries) if (holdsSlot(name)) all.stop.push({ name, reason: stopWhy });
  let free = launchesPaused(state, now) ? 0 : effectiveLimit(state) - entries.filter(([name]) => holdsSlot(name)).length;
  const ready: Array<[string, TaskRecord]> = [];
  for (const [name, task] of entries) {
    if (!waiting(name)) continue;
    const on = task.depends_on.filter(
      (dep) => status.get(dep) !== 'completed' && !TERMINAL_STATUSES.has(status.get(dep) as TaskRecord['status']),
    );
    if (on.length > 0) {
      all.wait.push({ name, on });
      continue;
    }
    const conflicts = conflictsIn(state, name, status);
    if (conflicts.length > 0) all.wait.push({ name, on: conflicts });
    else ready.push([name, task]);
  }
  ready.sort(([, a], [, b]) => compareForSlot(a, b));
  const slotWaits: Array<{ name: string; on: string[] }> = [];
  for (const [name] of ready) {
    if (free > 0 && budgetAdmits(money, all.start.length)) {
      all.start.push(name);
      free -= 1;
    } else {
      slotWaits.push({ name, on: [] });
    }
  }
  all.wait = [...all.wait, ...slotWaits].sort(
    (a, b) => registrationIndex(taskOf(state, a.name)!) - registrationIndex(taskOf(state, b.name)!),
  );
  if (owner === undefined) return all;
  const mine = (name: string) => {
    const pid = taskOf(state, name)!.pid;
    return pid === owner || pid === null;
  };
  return {
    start: all.start.filter(mine),
    skip: all.skip.filter(({ name }) => mine(name)),
    // Anyone may record a death: the dead cannot.
    fail: all.fail.filter(({ name, died }) => died || mine(name)),
    wait: all.wait.filter(({ name }) => mine(name)),
    // Anyone may stop a task for the budget: its owner sees the cancel and ends its agent (task-execution.ts).
    stop: all.stop,
    // A claim has no owner: anyone may queue it again.
    requeue: all.requeue,
  };
}

/**
 * Skips the waiting tasks whose dependency ended without completing (`on_dep_failure: skip`) and fails
 * those whose missing dependency never appeared before their deadline, into `all`; repeated until a
 * pass changes nothing, since each end may end the tasks that wait on it. `status` is updated as it goes.
 */
function cascadeDependencyEnds(entries: ReadonlyArray<[string, TaskRecord]>, status: Map<string, string>, now: Date, all: Decision): void {
  const waiting = (name: string) => status.get(name) === 'pending' || status.get(name) === 'waiting';
  for (let changed = true; changed;) {
    changed = false;
    for (const [name, task] of entries) {
      if (!waiting(name)) continue;
      const missing: string[] = [];
      for (const dep of task.depends_on) {
        const depStatus = status.get(dep);
        if (depStatus === undefined) {
          missing.push(dep);
        } else if (
          depStatus !== 'completed' &&
          TERMINAL_STATUSES.has(depStatus as TaskRecord['status']) &&
          task.on_dep_failure === 'skip'
        ) {
          all.skip.push({ name, reason: `dependency ${dep} ${depStatus === 'cancelled' ? 'was cancelled' : depStatus}` });
          status.set(name, 'skipped');
          changed = true;
          break;
        }
      }
      if (waiting(name) && missing.length > 0 && task.dep_deadline !== null && now.getTime() > Date.parse(task.dep_deadline)) {
        const waited = Math.round((Date.parse(task.dep_deadline) - Date.parse(task.registered_at)) / 1000);
        all.fail.push({ name, reason: `dependency ${missing.join(', ')} never appeared in the session (waited ${waited} s)`, died: false });
        status.set(name, 'failed');
        changed = true;
      }
    }
  }
}

/** {@link fileConflicts} judged on the decision's statuses (tasks it has just failed or skipped hold nothing). */
function conflictsIn(state: SessionState, name: string, status: ReadonlyMap<string, string>): string[] {
  const task = taskOf(state, name)!;
  if (task.files.length === 0) return [];
  const mine = new Set(task.files.map(normaliseFile));
  const index = registrationIndex(task);
  const conflicts: string[] = [];
  for (const [other, record] of Object.entries(state.tasks)) {
    const now = status.get(other)! as TaskRecord['status'];
    if (other === name || TERMINAL_STATUSES.has(now)) continue;
    const holds = SLOT_STATUSES.has(now) || registrationIndex(record) < index;
    if (holds && record.files.some((file) => mine.has(normaliseFile(file)))) conflicts.push(other);
  }
  return conflicts;
}
