// The fast check of a session state: validates, without zod, a state in the canonical form the state writer produces.
//
// Why: every agent start reads the state and validates it before its write; loading zod and
// building the state schema cost about a third of a start that only registers a task, and dozens of
// those start at once (bench/RESULTS.md, "Start-up cost"). A state this process or another agent
// wrote has every field, in the schema's order, with values the schema accepts: that form is checked
// here field by field. Anything else (a missing or extra field, another order, an older layout, a
// value out of range) is not judged here: the caller hands it to the zod schema (schema.ts), which
// fills defaults, converts older layouts and explains what is wrong.
//
// The guarantee, tested by test/state/state-check.test.ts on generated and mutated states: whatever
// this check accepts, the schema accepts too and reads as the very same value (same fields, same
// order, same JSON). The check may refuse more than the schema does, never less.
import { TASK_NAME_PATTERN, SESSION_ID_PATTERN } from '../core/names.ts';
import {
  createTaskTable,
  DEP_FAILURE_POLICIES,
  isPlainObject,
  MAX_TIMER_MS,
  MERGE_STATUSES,
  ON_BUDGET,
  PRIORITIES,
  RUNNERS,
  STATE_VERSION,
  TASK_STATUSES,
  VERDICTS,
  type SessionState,
} from './model.ts';

type Check = (value: unknown) => boolean;

const string: Check = (v) => typeof v === 'string';
const boolean: Check = (v) => typeof v === 'boolean';
/** zod 4's `z.number()` refuses NaN and the infinities. */
const number: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const nonnegative: Check = (v) => number(v) && (v as number) >= 0;
const positive: Check = (v) => number(v) && (v as number) > 0;
/** zod 4's `.int()` takes safe integers only. */
const int: Check = (v) => Number.isSafeInteger(v);
const intNonnegative: Check = (v) => int(v) && (v as number) >= 0;
const intPositive: Check = (v) => int(v) && (v as number) > 0;
const timerMs: Check = (v) => intNonnegative(v) && (v as number) <= MAX_TIMER_MS;
const nullable =
  (check: Check): Check =>
  (v) =>
    v === null || check(v);
const oneOf =
  (values: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v);
const matches =
  (pattern: RegExp): Check =>
  (v) =>
    typeof v === 'string' && pattern.test(v);
const arrayOf =
  (check: Check): Check =>
  (v) =>
    Array.isArray(v) && v.every(check);

/**
 * An ISO time as `Date.prototype.toISOString` writes it (UTC, milliseconds, `Z`), and a real one
 * (it reads back to itself): a subset of zod's `z.iso.datetime({ offset: true })`, which also takes
 * offsets and other precisions (those go to the schema).
 */
const ISO_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const isoTime: Check = (v) => {
  if (typeof v !== 'string' || !ISO_UTC_MS.test(v)) return false;
  const time = Date.parse(v);
  return !Number.isNaN(time) && new Date(time).toISOString() === v;
};

/**
 * An object with exactly these fields, in this order (the schema's), each passing its check. The
 * fields are listed in the schema's order; test/state/state-check.test.ts compares them with it.
 */
function object(shape: Record<string, Check>): Check & { keys: readonly string[] } {
  const keys = Object.keys(shape);
  const checks = keys.map((key) => shape[key]!);
  const check = (v: unknown): boolean => {
    if (!isPlainObject(v)) return false;
    const own = Object.keys(v);
    if (own.length !== keys.length) return false;
    for (let i = 0; i < keys.length; i++) {
      if (own[i] !== keys[i] || !checks[i]!(v[keys[i]!])) return false;
    }
    return true;
  };
  return Object.assign(check, { keys });
}

const taskName = matches(TASK_NAME_PATTERN);

/** The fields of `LiveProgressSchema`. */
export const LIVE_PROGRESS = object({
  turns: intNonnegative,
  last_tool: nullable(string),
  input_tokens: nonnegative,
  output_tokens: nonnegative,
  est_cost_usd: nullable(nonnegative),
  api_retries: intNonnegative,
  last_api_error: nullable(string),
  last_event_at: isoTime,
});

/** The fields of `ReceiptSummarySchema`. */
export const RECEIPT_SUMMARY = object({
  tool_calls: object({
    read: intNonnegative,
    search: intNonnegative,
    edit: intNonnegative,
    bash: intNonnegative,
    web: intNonnegative,
    other: intNonnegative,
  }),
  files_written: intNonnegative,
  commands: intNonnegative,
  commands_failed: intNonnegative,
  denials: intNonnegative,
  lines_added: intNonnegative,
  lines_removed: intNonnegative,
  lines_from: oneOf(['git', 'edits']),
  simulated: boolean,
});

/** The fields of `TaskMergeSchema`. */
export const TASK_MERGE = object({
  branch: string,
  worktree: nullable(string),
  status: oneOf(MERGE_STATUSES),
  diff_stat: nullable(object({ files: intNonnegative, insertions: intNonnegative, deletions: intNonnegative })),
  conflicts: arrayOf(string),
  commit: nullable(string),
  gate_output: nullable(string),
  expected_changes_missing: boolean,
});

/** A recorded launch; one that runs a program of the user's (`--check`) is signed (execution/launch-signature.ts). */
const LAUNCH = object({ script: string, args: arrayOf(string), cwd: string });
const SIGNED_LAUNCH = object({ script: string, args: arrayOf(string), cwd: string, signature: string });

/** The fields of `TaskRecordSchema`. `launch` in its current layout only (the older one goes to the schema, which drops it). */
export const TASK_RECORD = object({
  status: oneOf(TASK_STATUSES),
  agent: matches(/^Agent-\d{2,}$/),
  goal: string,
  depends_on: arrayOf(taskName),
  priority: oneOf(PRIORITIES),
  files: arrayOf((v) => typeof v === 'string' && v.length >= 1),
  on_dep_failure: oneOf(DEP_FAILURE_POLICIES),
  runner: oneOf(RUNNERS),
  pid: nullable(intPositive),
  pid_start: nullable(string),
  host: nullable(string),
  agent_child: nullable(object({ pid: int, start: nullable(string), host: nullable(string) })),
  attempts: intNonnegative,
  max_attempts: intPositive,
  registered_at: isoTime,
  started_at: nullable(isoTime),
  ended_at: nullable(isoTime),
  heartbeat_at: nullable(isoTime),
  duration_ms: nullable(nonnegative),
  result_path: nullable(string),
  error: nullable(string),
  waiting_on: arrayOf(string),
  next_retry_at: nullable(isoTime),
  dep_deadline: nullable(isoTime),
  adoption_token: nullable(string),
  launched: nullable(object({ pid: int, start: nullable(string), host: nullable(string) })),
  agent_died: boolean,
  replaced_attempt: nullable(intNonnegative),
  replaced_at: nullable(isoTime),
  launch: nullable((v) => LAUNCH(v) || SIGNED_LAUNCH(v)),
  cost_usd: nullable(nonnegative),
  input_tokens: nullable(nonnegative),
  output_tokens: nullable(nonnegative),
  num_turns: nullable(nonnegative),
  claude_session_id: nullable(string),
  permission_denials: nullable(nonnegative),
  live: nullable(LIVE_PROGRESS),
  merge: nullable(TASK_MERGE),
  predicted_conflicts: arrayOf(string),
  attempt_hosts: arrayOf(object({ attempt: intNonnegative, host: string })),
  receipts: nullable(RECEIPT_SUMMARY),
  verdict: nullable(object({ value: oneOf(VERDICTS), evidence: arrayOf(string) })),
});

/** The fields of `CapacitySchema`. */
export const CAPACITY = object({
  adaptive: boolean,
  limit: nullable(intPositive),
  rate_limited_since: nullable(isoTime),
  last_decrease_at: nullable(isoTime),
  last_change_at: nullable(isoTime),
  last_hit_at: nullable(isoTime),
  pause_until: nullable(isoTime),
  hits: intNonnegative,
  quiet_ms: timerMs,
  window_ms: timerMs,
});

/** The fields of `BudgetSchema`. */
export const BUDGET = object({
  usd: nullable(positive),
  on_budget: oneOf(ON_BUDGET),
  reserve_usd: nullable(nonnegative),
  reached_at: nullable(isoTime),
});

const TASK_TABLE: Check = (v) => {
  if (!isPlainObject(v)) return false;
  for (const name of Object.keys(v)) if (!taskName(name) || !TASK_RECORD(v[name])) return false;
  return true;
};

/** The fields of `SessionStateSchema`. */
export const SESSION_STATE = object({
  version: (v) => v === STATE_VERSION,
  session_id: matches(SESSION_ID_PATTERN),
  created_at: isoTime,
  updated_at: isoTime,
  max_workers: intPositive,
  lease_ms: (v) => intPositive(v) && (v as number) <= MAX_TIMER_MS,
  plan_path: nullable(string),
  integration: nullable(object({ branch: string, base: string, tip: string })),
  capacity: CAPACITY,
  budget: BUDGET,
  tasks: TASK_TABLE,
});

/**
 * The state `data` is, when it is in the canonical form (every field of the schema, in its order,
 * each value one the schema takes as it is); `undefined` otherwise, for the zod schema to judge.
 * The state returned is `data` itself with `tasks` made a null-prototype {@link TaskTable} (its
 * other objects are `data`'s own: parse a fresh copy when they must not be shared).
 *
 * @param data - a value read from YAML or JSON, or a state about to be written.
 * @returns the state, or undefined when only the schema can say.
 */
export function checkCanonicalState(data: unknown): SessionState | undefined {
  if (!SESSION_STATE(data)) return undefined;
  const state = data as SessionState;
  if (Object.getPrototypeOf(state.tasks) !== null) state.tasks = createTaskTable(Object.entries(state.tasks));
  return state;
}
