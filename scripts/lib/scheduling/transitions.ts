// Every change of a task's status, as a function on a state transaction: one place for the state machine.
import { OrchestratorError } from '../core/errors.ts';
import type { EventType } from '../state/events.ts';
import { checkIdentityCached, HOST, identityOf, selfIdentity } from '../process/identity.ts';
import {
  ACTIVE_STATUSES,
  newTaskRecord,
  TERMINAL_STATUSES,
  type DepFailurePolicy,
  type Priority,
  type RunnerKind,
  type SessionState,
  type TaskRecord,
  type TaskStatus,
} from '../state/model.ts';
import { deathReason, taskOf, type Decision, type IdentityCheck } from './scheduling.ts';
import { configureCapacity, noteCompletion } from './capacity.ts';

export { deathReason, type IdentityCheck } from './scheduling.ts';
import { createSessionState, type StateTransaction } from '../state/state-store.ts';

/** How a script chooses its session. */
export interface SessionChoice {
  /** Archive the current session and start a new one. */
  newSession?: boolean;
  /** Join the session with this id, or archive the current one and start it. */
  sessionId?: string;
  /** Worker limit; kept in the session once set. */
  maxWorkers?: number;
  /** Plan file of an `orchestrate` session. */
  planPath?: string;
  /** `--adaptive on|off` (rate-limit-adaptive concurrency, capacity.ts); kept in the session once set. */
  adaptive?: boolean;
  /** `--budget_usd` (budget.ts); kept in the session once set. */
  budgetUsd?: number;
  /** `--on_budget finish|stop`; kept once set. */
  onBudget?: 'finish' | 'stop';
}

/** Writes the capacity and budget choices into a session (new or joined). */
function configureSession(state: SessionState, choice: SessionChoice, fresh: boolean): void {
  configureCapacity(state, { adaptive: choice.adaptive, fresh });
  if (choice.budgetUsd !== undefined && choice.budgetUsd !== state.budget.usd) {
    state.budget.usd = choice.budgetUsd;
    state.budget.reached_at = null;
  }
  if (choice.onBudget !== undefined) state.budget.on_budget = choice.onBudget;
}

/**
 * Makes sure `tx.state` is the session the caller asked for, creating or archiving as needed.
 * @returns the session state to change.
 */
export function openSession(tx: StateTransaction, choice: SessionChoice): SessionState {
  const current = tx.state;
  const switching = choice.newSession || (choice.sessionId !== undefined && current?.session_id !== choice.sessionId);
  if (!current || switching) {
    if (current) tx.archiveCurrent();
    const fresh = createSessionState({ sessionId: choice.sessionId, maxWorkers: choice.maxWorkers, now: tx.now });
    fresh.plan_path = choice.planPath ?? null;
    tx.state = fresh;
    configureSession(fresh, choice, true);
    tx.emit('session_started', {
      max_workers: fresh.max_workers,
      previous_session_id: current?.session_id ?? null,
      adaptive: fresh.capacity.adaptive,
      budget_usd: fresh.budget.usd,
    });
    return fresh;
  }
  if (choice.maxWorkers !== undefined) current.max_workers = choice.maxWorkers;
  if (choice.planPath !== undefined) current.plan_path = choice.planPath;
  configureSession(current, choice, false);
  return current;
}

/** What is known of a task when it is registered. */
export interface TaskRegistration {
  name: string;
  goal: string;
  dependsOn?: string[];
  priority?: Priority;
  files?: string[];
  onDepFailure?: DepFailurePolicy;
  runner: RunnerKind;
  /** Owner process; null for plan-mode tasks not started yet. */
  pid: number | null;
  /**
   * Start time token of the owner process (see process/identity.ts). Default: read now, from this
   * process when `pid` is ours, else from the live process `pid` (null if it is not running).
   */
  pidStart?: string | null;
  maxAttempts?: number;
  launch?: TaskRecord['launch'];
  /**
   * The owner renews `heartbeat_at` while the task waits (background agents do, every lease / 3), so
   * a stopped or hung waiting agent is noticed after the lease like a running one. Default false
   * (the plan runner: the orchestrator's own waiting tasks hold no lease until they run).
   */
  waitingLease?: boolean;
  /** How long the task waits for a dependency that is not registered yet (ms); stored as `dep_deadline`. Default: forever. */
  depTimeoutMs?: number;
}

let self: ReturnType<typeof selfIdentity> | undefined;

/**
 * The identity fields (`pid`, `pid_start`, `host`) of a task owned by process `pid`.
 * @param pidStart - the start token if known; read now when undefined.
 */
export function ownerFields(pid: number | null, pidStart?: string | null): Pick<TaskRecord, 'pid' | 'pid_start' | 'host'> {
  if (pid === null) return { pid: null, pid_start: null, host: null };
  if (pidStart !== undefined) return { pid, pid_start: pidStart, host: HOST };
  const identity = pid === process.pid ? (self ??= selfIdentity()) : identityOf(pid);
  return { pid, pid_start: identity?.start ?? null, host: HOST };
}

/** Puts a task's record under its name as an own property, whatever the name (`__proto__` included). */
export function putTask(state: SessionState, name: string, record: TaskRecord): void {
  Object.defineProperty(state.tasks, name, { value: record, writable: true, enumerable: true, configurable: true });
}

/**
 * Explains why a task name cannot be registered again, or returns null if it can: a name that is
 * new, or whose last attempt failed, was skipped or was cancelled, may be (re)registered.
 */
export function registrationConflict(state: SessionState | null, name: string): string | null {
  const existing = state ? taskOf(state, name) : undefined;
  if (!existing) return null;
  if (existing.status === 'completed') {
    return (
      `Task ${JSON.stringify(name)} already completed in session ${state!.session_id} (${existing.agent}). ` +
      'Pick another --task_name, or start a new session with --new_session.'
    );
  }
  if (ACTIVE_STATUSES.has(existing.status)) {
    return (
      `Task ${JSON.stringify(name)} is already ${existing.status} in session ${state!.session_id} ` +
      `(${existing.agent}, pid ${existing.pid ?? '-'}). Pick another --task_name, or wait for it to end.`
    );
  }
  return null;
}

/**
 * Registers a task (status `pending`) or, for a task whose last attempt ended badly, a new attempt.
 * @returns the task's record.
 * @throws OrchestratorError `task_conflict` when the name is running or completed.
 */
export function registerTask(tx: StateTransaction, state: SessionState, reg: TaskRegistration): TaskRecord {
  const conflict = registrationConflict(state, reg.name);
  if (conflict) throw new OrchestratorError('task_conflict', conflict);
  const previous = taskOf(state, reg.name);
  const agent = previous?.agent ?? `Agent-${String(Object.keys(state.tasks).length + 1).padStart(2, '0')}`;
  const record = newTaskRecord({
    status: 'pending',
    agent,
    goal: reg.goal,
    depends_on: reg.dependsOn ?? [],
    priority: reg.priority ?? 'P2',
    files: reg.files ?? [],
    on_dep_failure: reg.onDepFailure ?? 'skip',
    runner: reg.runner,
    ...ownerFields(reg.pid, reg.pidStart),
    heartbeat_at: reg.waitingLease ? tx.now.toISOString() : null,
    attempts: previous?.attempts ?? 0,
    max_attempts: reg.maxAttempts ?? 1,
    registered_at: tx.now.toISOString(),
    launch: reg.launch ?? null,
    dep_deadline: reg.depTimeoutMs === undefined ? null : new Date(tx.now.getTime() + reg.depTimeoutMs).toISOString(),
    // Spending accumulates over attempts, so the session's totals stay honest after a re-run.
    cost_usd: previous?.cost_usd ?? null,
    input_tokens: previous?.input_tokens ?? null,
    output_tokens: previous?.output_tokens ?? null,
  });
  putTask(state, reg.name, record);
  tx.emit('registered', { task: reg.name, agent, pid: reg.pid, depends_on: record.depends_on, priority: record.priority });
  return record;
}

/** Sets a task's status and the fields that go with it, and logs the event. */
export function setStatus(
  tx: StateTransaction,
  state: SessionState,
  name: string,
  status: TaskStatus,
  fields: Partial<TaskRecord> & { reason?: string } = {},
): TaskRecord {
  const record = taskOf(state, name);
  if (!record) throw new OrchestratorError('usage', `No task ${JSON.stringify(name)} in session ${state.session_id}.`);
  const { reason, ...rest } = fields;
  const now = tx.now.toISOString();
  // A launch's process belongs to the claim it was started for: any new status ends that (launchAdoptions records it after).
  record.launched = null;
  Object.assign(record, rest);
  record.status = status;
  if (status !== 'waiting') record.waiting_on = [];
  if (status !== 'retrying') record.next_retry_at = null;
  if (status === 'running' && !rest.started_at) {
    record.started_at = now;
    record.heartbeat_at = now;
    record.ended_at = null;
    record.duration_ms = null;
    record.error = null;
    record.agent_died = false;
    record.attempts += 1;
  }
  if (TERMINAL_STATUSES.has(status)) {
    record.ended_at = rest.ended_at ?? now;
    record.duration_ms = record.started_at ? Date.parse(record.ended_at) - Date.parse(record.started_at) : null;
    if (reason !== undefined) record.error = reason;
    // A prediction is about work in progress; the merge itself (or its failure) now speaks.
    record.predicted_conflicts = [];
  }
  if (status === 'retrying' && reason !== undefined) record.error = reason;
  // The additive increase of the adaptive limit happens at completions (capacity.ts).
  if (status === 'completed') noteCompletion(tx, state);
  const eventType: EventType = status === 'pending' ? 'registered' : status === 'running' ? 'started' : status;
  tx.emit(eventType, {
    task: name,
    agent: record.agent,
    pid: record.pid,
    attempt: record.attempts,
    ...(TERMINAL_STATUSES.has(status) ? { duration_ms: record.duration_ms } : {}),
    ...(record.error && status !== 'completed' ? { error: record.error } : {}),
    ...(status === 'waiting' ? { waiting_on: record.waiting_on } : {}),
  });
  return record;
}

/**
 * Marks every active task whose process is gone, or whose lease expired, as `failed`.
 * Whichever script notices first does it, under the lock.
 * @returns the names marked failed.
 */
export function reapDeadTasks(tx: StateTransaction, state: SessionState, alive: IdentityCheck = checkIdentityCached): string[] {
  const reaped: string[] = [];
  for (const [name, record] of Object.entries(state.tasks)) {
    const reason = deathReason(state, record, tx.now, alive);
    if (reason) {
      setStatus(tx, state, name, 'failed', { reason, agent_died: true });
      reaped.push(name);
    }
  }
  return reaped;
}

/**
 * Acts on the budget part of a decision, inside its transaction: running tasks in `decision.stop`
 * are marked `cancelled` with the budget reason (their owners see it and end their agents, as after
 * cancel-session: identity-checked, own process group only), and the first time the budget is found
 * reached a `budget` event is logged and `budget.reached_at` set.
 * @returns the names cancelled.
 */
export function applyBudgetStops(tx: StateTransaction, state: SessionState, decision: Decision): string[] {
  const stopped: string[] = [];
  for (const { name, reason } of decision.stop) {
    const task = taskOf(state, name);
    if (!task || TERMINAL_STATUSES.has(task.status)) continue;
    setStatus(tx, state, name, 'cancelled', { reason });
    stopped.push(name);
  }
  const why = decision.stop[0]?.reason ?? decision.skip.find(({ reason }) => reason.startsWith('budget: '))?.reason;
  if (why !== undefined && state.budget.reached_at === null) {
    state.budget.reached_at = tx.now.toISOString();
    tx.emit('budget', { budget_usd: state.budget.usd, on_budget: state.budget.on_budget, error: why });
  }
  return stopped;
}
