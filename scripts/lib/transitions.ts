// Every change of a task's status, as a function on a state transaction: one place for the state machine.
import { OrchestratorError } from './errors.ts';
import type { EventType } from './events.ts';
import { isProcessAlive } from './process-util.ts';
import {
  ACTIVE_STATUSES,
  TaskRecordSchema,
  TERMINAL_STATUSES,
  type DepFailurePolicy,
  type Priority,
  type RunnerKind,
  type SessionState,
  type TaskRecord,
  type TaskStatus,
} from './schema.ts';
import { SLOT_STATUSES } from './scheduling.ts';
import { createSessionState, type StateTransaction } from './state-store.ts';

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
    tx.emit('session_started', { max_workers: fresh.max_workers, previous_session_id: current?.session_id ?? null });
    return fresh;
  }
  if (choice.maxWorkers !== undefined) current.max_workers = choice.maxWorkers;
  if (choice.planPath !== undefined) current.plan_path = choice.planPath;
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
  maxAttempts?: number;
  launch?: { argv: string[]; cwd: string } | null;
}

/**
 * Explains why a task name cannot be registered again, or returns null if it can: a name that is
 * new, or whose last attempt failed, was skipped or was cancelled, may be (re)registered.
 */
export function registrationConflict(state: SessionState | null, name: string): string | null {
  const existing = state?.tasks[name];
  if (!existing) return null;
  if (existing.status === 'completed') {
    return `Task ${JSON.stringify(name)} already completed in session ${state!.session_id} (${existing.agent}). ` +
      'Pick another --task_name, or start a new session with --new_session.';
  }
  if (ACTIVE_STATUSES.has(existing.status)) {
    return `Task ${JSON.stringify(name)} is already ${existing.status} in session ${state!.session_id} ` +
      `(${existing.agent}, pid ${existing.pid ?? '-'}). Pick another --task_name, or wait for it to end.`;
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
  const previous = state.tasks[reg.name];
  const agent = previous?.agent ?? `Agent-${String(Object.keys(state.tasks).length + 1).padStart(2, '0')}`;
  const record = TaskRecordSchema.parse({
    status: 'pending',
    agent,
    goal: reg.goal,
    depends_on: reg.dependsOn ?? [],
    priority: reg.priority ?? 'P2',
    files: reg.files ?? [],
    on_dep_failure: reg.onDepFailure ?? 'skip',
    runner: reg.runner,
    pid: reg.pid,
    attempts: previous?.attempts ?? 0,
    max_attempts: reg.maxAttempts ?? 1,
    registered_at: tx.now.toISOString(),
    launch: reg.launch ?? null,
    // Spending accumulates over attempts, so the session's totals stay honest after a re-run.
    cost_usd: previous?.cost_usd ?? null,
    input_tokens: previous?.input_tokens ?? null,
    output_tokens: previous?.output_tokens ?? null,
  });
  state.tasks[reg.name] = record;
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
  const record = state.tasks[name];
  if (!record) throw new OrchestratorError('usage', `No task ${JSON.stringify(name)} in session ${state.session_id}.`);
  const { reason, ...rest } = fields;
  const now = tx.now.toISOString();
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
  }
  if (status === 'retrying' && reason !== undefined) record.error = reason;
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

/** Why an active task is considered dead, or null if it is not. */
export function deathReason(state: SessionState, record: TaskRecord, now: Date, alive = isProcessAlive): string | null {
  if (!ACTIVE_STATUSES.has(record.status) || record.pid === null) return null;
  if (!alive(record.pid)) return 'agent process exited without reporting';
  if (SLOT_STATUSES.has(record.status) && record.heartbeat_at) {
    const age = now.getTime() - Date.parse(record.heartbeat_at);
    if (age > state.lease_ms) return `agent heartbeat stale for ${Math.round(age / 1000)} s (lease ${state.lease_ms / 1000} s)`;
  }
  return null;
}

/**
 * Marks every active task whose process is gone, or whose lease expired, as `failed`.
 * Whichever script notices first does it, under the lock.
 * @returns the names marked failed.
 */
export function reapDeadTasks(tx: StateTransaction, state: SessionState, alive = isProcessAlive): string[] {
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
