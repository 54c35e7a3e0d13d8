// The task state machine, next to the transaction it runs in (state-store.ts): registering a task and every change of
// its status, as functions on a state transaction. The scheduling consequences of a change (the adaptive limit's
// growth at a completion, reaping, budget stops) are added one floor up, in scheduling/transitions.ts.
import { OrchestratorError } from '../core/errors.ts';
import { HOST, identityOf, selfIdentity } from '../process/identity.ts';
import type { EventType } from './events.ts';
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
} from './model.ts';
import type { StateTransaction } from './state-store.ts';

/**
 * A task's record by name, or undefined: an own-property lookup, so names such as `toString`,
 * `constructor` or `__proto__` never find something inherited from Object.prototype.
 */
export function taskOf(state: SessionState, name: string): TaskRecord | undefined {
  return Object.hasOwn(state.tasks, name) ? state.tasks[name] : undefined;
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

/** Fields set with a new status; `reason` becomes the task's `error` where the status keeps one. */
export type StatusFields = Partial<TaskRecord> & { reason?: string };

/**
 * The task state machine: sets a task's status and the fields that go with it (a start counts an attempt and clears the
 * last error; an end records its time and duration; every new status ends a launch's claim), and logs the event, in
 * the caller's transaction. `consequences` runs once the record is changed and before its event is logged, in the same
 * transaction: scheduling/transitions.ts `setStatus` passes what the change means for scheduling (whose own events,
 * such as `capacity`, so come first).
 * @throws OrchestratorError `usage` when the session has no task `name`.
 */
export function setTaskStatus(
  tx: StateTransaction,
  state: SessionState,
  name: string,
  status: TaskStatus,
  fields: StatusFields = {},
  consequences?: () => void,
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
  consequences?.();
  const eventType: EventType = status === 'pending' ? 'registered' : status === 'running' ? 'started' : status;
  tx.emit(eventType, {
    task: name,
    agent: record.agent,
    pid: record.pid,
    attempt: record.attempts,
    ...(TERMINAL_STATUSES.has(status) ? { duration_ms: record.duration_ms } : {}),
    ...(record.error && status !== 'completed' ? { error: record.error } : {}),
    ...(status === 'waiting' ? { waiting_on: record.waiting_on } : {}),
    ...(status === 'completed' && record.verdict
      ? { verdict: record.verdict.value, ...(record.verdict.value !== 'verified' ? { evidence: record.verdict.evidence } : {}) }
      : {}),
  });
  return record;
}
