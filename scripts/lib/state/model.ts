// The session state's constants, its task table and its defaults, without zod (see schema.ts for the schema itself).
//
// Every agent start reads and writes the state; what it needs of the model is here, so a start that
// only registers a task loads no schema library: the fast check (state-check.ts) validates a state in
// the canonical form these defaults and the state writer produce, and only anything else loads the
// zod schema (bench/RESULTS.md, "Start-up cost"). The types come from the zod schema (type-only
// imports, erased when compiled), so the two cannot drift apart in shape; test/state/state-check.test.ts
// checks that the defaults below are exactly what the schema fills in.
import type { Budget, Capacity, SessionState, TaskRecord } from './schema.ts';

export type { Budget, Capacity, LiveProgress, SessionState, TaskMerge, TaskRecord, TaskRecordInput } from './schema.ts';

/**
 * The longest delay a timer can hold (ms): 2^31 - 1, about 24.8 days. Node's `setTimeout` turns a
 * longer delay into 1 ms (with a TimeoutOverflowWarning), so a bigger duration would fire at once;
 * every duration read from a flag, a plan or the state is bounded by it.
 * Source: Node.js docs, timers, `setTimeout` ("When delay is larger than 2147483647 ... set to 1").
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Version of the state file layout. Bump it, with a migration, when a field changes meaning. */
export const STATE_VERSION = 1;

/** Every status a task can have. See `references/workflow.md` for the state machine. */
export const TASK_STATUSES = [
  'pending',
  'waiting',
  'running',
  'retrying',
  'completed',
  'failed',
  'skipped',
  'cancelled',
  // An isolated task (`--isolation worktree`) whose work did not merge: a conflict or a failed `--merge_check`.
  'merge_failed',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Statuses a task never leaves on its own (only a new attempt re-registers it). */
export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['completed', 'failed', 'skipped', 'cancelled', 'merge_failed']);

/** Statuses in which an agent process owns the task. */
export const ACTIVE_STATUSES: ReadonlySet<TaskStatus> = new Set(['pending', 'waiting', 'running', 'retrying']);

/** Task priorities, P0 first (the seeds' P0 critical ... P3 nice-to-have). */
export const PRIORITIES = ['P0', 'P1', 'P2', 'P3'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** What happens to a task whose dependency failed, was skipped or was cancelled. */
export const DEP_FAILURE_POLICIES = ['skip', 'run'] as const;
export type DepFailurePolicy = (typeof DEP_FAILURE_POLICIES)[number];

/** Which runner executes a task's agent. */
export const RUNNERS = ['mock', 'claude'] as const;
export type RunnerKind = (typeof RUNNERS)[number];

/** What became of an isolated task's work (`--isolation worktree`, see scripts/lib/isolation/). */
export const MERGE_STATUSES = ['merged', 'empty', 'conflict', 'gate_failed', 'not_merged'] as const;
export type MergeStatus = (typeof MERGE_STATUSES)[number];

/** What happens to running agents when the session budget is spent (`--on_budget`). */
export const ON_BUDGET = ['finish', 'stop'] as const;
export type OnBudget = (typeof ON_BUDGET)[number];

/**
 * The tasks of a session keyed by task name: a null-prototype object, so every user-given name
 * (`__proto__`, `constructor`, `toString` are valid task names) is an ordinary own key, a lookup of
 * a name that is not a task finds nothing inherited, and assigning `tasks['__proto__']` adds a task
 * instead of changing a prototype. Build one with {@link createTaskTable}; look names up with
 * {@link getTask} / {@link hasTask} (own-property checks) when the table may have come from elsewhere.
 */
export type TaskTable = Record<string, TaskRecord>;

/** A new {@link TaskTable} (null prototype) holding `entries` in order. */
export function createTaskTable(entries: Iterable<readonly [string, TaskRecord]> = []): TaskTable {
  const table = Object.create(null) as TaskTable;
  // defineProperty, not assignment: safe even if a caller hands in an ordinary object's entries.
  for (const [name, task] of entries)
    Object.defineProperty(table, name, { value: task, writable: true, enumerable: true, configurable: true });
  return table;
}

/** Whether `name` is a task of `tasks` (an own key: never an inherited member such as `toString`). */
export function hasTask(tasks: Readonly<Record<string, unknown>>, name: string): boolean {
  return Object.hasOwn(tasks, name);
}

/** The task named `name`, or undefined; an own-property lookup (see {@link TaskTable}). */
export function getTask(tasks: Readonly<TaskTable>, name: string): TaskRecord | undefined {
  return Object.hasOwn(tasks, name) ? tasks[name] : undefined;
}

/** Whether `value` is a plain object (prototype Object.prototype or null): what YAML and JSON mappings are read as. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Parses the JSON of a validated state (`JSON.stringify` of a {@link SessionState}) back into a
 * state, with `tasks` as a null-prototype {@link TaskTable} (JSON.parse alone would give an
 * ordinary object, on which `tasks.toString` finds Object.prototype's function).
 */
export function parseStateJson(json: string): SessionState {
  const state = JSON.parse(json) as SessionState;
  state.tasks = createTaskTable(Object.entries(state.tasks));
  return state;
}

/** The session field `capacity` of a new session: what the schema fills in for a missing one (see CapacitySchema). */
export function defaultCapacity(): Capacity {
  return {
    adaptive: true,
    limit: null,
    rate_limited_since: null,
    last_decrease_at: null,
    last_change_at: null,
    last_hit_at: null,
    pause_until: null,
    hits: 0,
    quiet_ms: 30_000,
    window_ms: 5_000,
  };
}

/** The session field `budget` of a new session: no cap (see BudgetSchema). */
export function defaultBudget(): Budget {
  return { usd: null, on_budget: 'finish', reserve_usd: null, reached_at: null };
}

/** The fields a new task record must be given; every other field starts at the schema's default. */
export type NewTaskFields = Pick<TaskRecord, 'status' | 'agent' | 'goal' | 'registered_at'> & Partial<TaskRecord>;

/**
 * A complete task record: the schema's default for every field not given, every field in the
 * schema's order (the order the state file is written in, which the fast check expects). The
 * values given are taken as they are: validate them first (the state writer checks the whole state
 * before every commit, and refuses what the schema would).
 */
export function newTaskRecord(fields: NewTaskFields): TaskRecord {
  const record: TaskRecord = {
    status: fields.status,
    agent: fields.agent,
    goal: fields.goal,
    depends_on: [],
    priority: 'P2',
    files: [],
    on_dep_failure: 'skip',
    runner: 'mock',
    pid: null,
    pid_start: null,
    host: null,
    agent_child: null,
    attempts: 0,
    max_attempts: 1,
    registered_at: fields.registered_at,
    started_at: null,
    ended_at: null,
    heartbeat_at: null,
    duration_ms: null,
    result_path: null,
    error: null,
    waiting_on: [],
    next_retry_at: null,
    dep_deadline: null,
    adoption_token: null,
    launched: null,
    agent_died: false,
    replaced_attempt: null,
    replaced_at: null,
    launch: null,
    cost_usd: null,
    input_tokens: null,
    output_tokens: null,
    num_turns: null,
    claude_session_id: null,
    permission_denials: null,
    live: null,
    merge: null,
    predicted_conflicts: [],
    attempt_hosts: [],
  };
  // Given fields replace defaults in place, so the key order stays the schema's.
  for (const key of Object.keys(fields) as Array<keyof TaskRecord>) {
    if (fields[key] !== undefined && Object.hasOwn(record, key)) (record as Record<string, unknown>)[key] = fields[key];
  }
  return record;
}

/** The state of an empty session (as the schema would read it: every default filled in, in order). */
export function newSessionState(fields: { sessionId: string; now: string; maxWorkers: number }): SessionState {
  return {
    version: STATE_VERSION,
    session_id: fields.sessionId,
    created_at: fields.now,
    updated_at: fields.now,
    max_workers: fields.maxWorkers,
    lease_ms: 30_000,
    plan_path: null,
    integration: null,
    capacity: defaultCapacity(),
    budget: defaultBudget(),
    tasks: createTaskTable(),
  };
}
