// Every change of a task's status with its scheduling consequences, as functions on a state transaction: opening a
// session, the adaptive limit's growth at a completion, reaping dead tasks, budget stops. The state machine itself is
// state/task-machine.ts, next to the transaction.
import { checkIdentityCached } from '../process/identity.ts';
import { createSessionState, type StateTransaction } from '../state/state-store.ts';
import { setTaskStatus, type StatusFields } from '../state/task-machine.ts';
import { TERMINAL_STATUSES, type SessionState, type TaskRecord, type TaskStatus } from '../state/model.ts';
import { deathReason, taskOf, type Decision, type IdentityCheck } from './scheduling.ts';
import { configureCapacity, noteCompletion } from './capacity.ts';

export { deathReason, type IdentityCheck } from './scheduling.ts';
export { ownerFields, putTask, registerTask, registrationConflict, type TaskRegistration } from '../state/task-machine.ts';

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

/**
 * Sets a task's status (state/task-machine.ts `setTaskStatus`, the state machine) and applies what it means for
 * scheduling: a completion may grow the adaptive limit by one (capacity.ts, the additive increase).
 * @returns the task's record. @throws OrchestratorError `usage` when the session has no task `name`.
 */
export function setStatus(
  tx: StateTransaction,
  state: SessionState,
  name: string,
  status: TaskStatus,
  fields: StatusFields = {},
): TaskRecord {
  // The additive increase of the adaptive limit happens at completions (capacity.ts).
  return setTaskStatus(tx, state, name, status, fields, status === 'completed' ? () => noteCompletion(tx, state) : undefined);
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
