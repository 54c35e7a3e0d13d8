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

import { OrchestratorError } from '../core/errors.ts';
import { newSessionId, validateSessionId } from '../core/names.ts';

export { MAX_TIMER_MS } from '../core/limits.ts';
export * from './constants.ts';
import { createNullTable, STATE_VERSION } from './constants.ts';

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
  return createNullTable<TaskRecord>(entries);
}

/** The task named `name`, or undefined; an own-property lookup (see {@link TaskTable}). */
export function getTask(tasks: Readonly<TaskTable>, name: string): TaskRecord | undefined {
  return Object.hasOwn(tasks, name) ? tasks[name] : undefined;
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
    receipts: null,
    verdict: null,
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

/** Creates the state of an empty session. */
export function createSessionState(options: { sessionId?: string; maxWorkers?: number; now?: Date } = {}): SessionState {
  const maxWorkers = options.maxWorkers ?? 5;
  if (!Number.isSafeInteger(maxWorkers) || maxWorkers < 1)
    throw new OrchestratorError('usage', `max_workers must be a whole number of at least 1, got ${maxWorkers}.`);
  return newSessionState({
    sessionId: options.sessionId ? validateSessionId(options.sessionId) : newSessionId(options.now),
    now: (options.now ?? new Date()).toISOString(),
    maxWorkers,
  });
}
