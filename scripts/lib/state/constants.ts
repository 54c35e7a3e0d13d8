// The session state's constants and name-safe table helpers: no imports, so the zod schema and the model both build on them without a cycle.

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

/**
 * Verdicts on a completed task (verification/verdict.ts), best first: `verified` (the evidence covers what it
 * declared), `unverified` (success claimed without evidence), `contradicted` (the receipts or the check disprove it).
 */
export const VERDICTS = ['verified', 'unverified', 'contradicted'] as const;
export type VerdictValue = (typeof VERDICTS)[number];

/** What happens to running agents when the session budget is spent (`--on_budget`). */
export const ON_BUDGET = ['finish', 'stop'] as const;
export type OnBudget = (typeof ON_BUDGET)[number];

/** Whether `value` is a plain object (prototype Object.prototype or null): what YAML and JSON mappings are read as. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Whether `name` is a task of `tasks` (an own key: never an inherited member such as `toString`). */
export function hasTask(tasks: Readonly<Record<string, unknown>>, name: string): boolean {
  return Object.hasOwn(tasks, name);
}

/**
 * A new null-prototype table holding `entries` in order: every user-given name (`__proto__` too) is an
 * ordinary own key. Used for the task table (model.ts `createTaskTable`).
 */
export function createNullTable<T>(entries: Iterable<readonly [string, T]> = []): Record<string, T> {
  const table = Object.create(null) as Record<string, T>;
  // defineProperty, not assignment: safe even if a caller hands in an ordinary object's entries.
  for (const [name, value] of entries) Object.defineProperty(table, name, { value, writable: true, enumerable: true, configurable: true });
  return table;
}
