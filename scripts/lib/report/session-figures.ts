// The figures of one session computed from its state (counts, makespan, parallelism, cost) and the exit code they give.
import { EXIT } from '../core/errors.ts';
import {
  TASK_STATUSES,
  TERMINAL_STATUSES,
  type SessionState,
  type TaskRecord,
  type TaskStatus,
  type VerdictValue,
} from '../state/model.ts';

/** How a poll-session wait ended: every task completed, any failed, its time ran out, or still active after one pass. */
export type PollOutcome = 'completed' | 'failed' | 'timeout' | 'active';

/** Cost of a session, summed over the task records that report it (real `claude -p` agents; mock agents report none). */
export interface CostTotals {
  /** Sum of `cost_usd` (USD), or null when no task reported a cost. */
  usd: number | null;
  /** Sum of `input_tokens`, or null when no task reported any. */
  inputTokens: number | null;
  /** Sum of `output_tokens`, or null when no task reported any. */
  outputTokens: number | null;
  /** How many tasks reported a cost. */
  reportedTasks: number;
}

/** Derived figures of one session. Times in ms. */
export interface SessionSummary {
  total: number;
  counts: Record<TaskStatus, number>;
  /** Tasks that ended `failed` but whose replacement agent was started and has not registered yet (see {@link SummaryOptions}). */
  replacing: number;
  /** Tasks not ended yet, replacements pending included. */
  active: number;
  /** Every task has ended (completed, failed, skipped or cancelled) and no replacement is pending. */
  finished: boolean;
  /** From the first start to the last end of the tasks that ran (ms); null if none ran. */
  makespanMs: number | null;
  /** Sum of the durations of the tasks that ran (ms; the last attempt of each). */
  workMs: number;
  /** workMs / makespanMs: how many tasks ran at once on average; null if nothing ran. */
  parallelism: number | null;
  /** Most tasks running at the same instant (from `started_at`/`ended_at`; a task still running counts until now). */
  peakWorkers: number;
  firstStart: string | null;
  lastEnd: string | null;
  cost: CostTotals;
  /** Completed tasks by verdict (verification/verdict.ts); a completed task without one (an older state) is not counted. */
  verdicts: Record<VerdictValue, number>;
}

/** Options of {@link summarize}. */
export interface SummaryOptions {
  /**
   * Names of `failed` tasks to count as still active because a replacement agent is on its way
   * (poll-session `--replace_dead`; see {@link isReplacementPending}). Default: none.
   */
  replacing?: ReadonlySet<string>;
}

/**
 * Tells whether a replacement agent was started for the task's last attempt and has not
 * re-registered it yet: `failed` with `replaced_attempt === attempts`. (Re-registration resets
 * `replaced_attempt` to null.)
 */
export function isReplacementPending(task: TaskRecord): boolean {
  return task.status === 'failed' && task.replaced_attempt !== null && task.replaced_attempt === task.attempts;
}

/** Computes the {@link SessionSummary} of a state. */
export function summarize(state: SessionState, options: SummaryOptions = {}): SessionSummary {
  const counts = Object.fromEntries(TASK_STATUSES.map((status) => [status, 0])) as Record<TaskStatus, number>;
  let first: number | null = null;
  let last: number | null = null;
  let workMs = 0;
  let replacing = 0;
  let active = 0;
  const verdicts: Record<VerdictValue, number> = { verified: 0, unverified: 0, contradicted: 0 };
  const entries = Object.entries(state.tasks);
  for (const [name, task] of entries) {
    counts[task.status] += 1;
    if (task.status === 'completed' && task.verdict) verdicts[task.verdict.value] += 1;
    if (!TERMINAL_STATUSES.has(task.status)) active += 1;
    else if (options.replacing?.has(name) && task.status === 'failed') {
      replacing += 1;
      active += 1;
    }
    if (task.started_at) first = Math.min(first ?? Infinity, Date.parse(task.started_at));
    if (task.ended_at && task.started_at) last = Math.max(last ?? -Infinity, Date.parse(task.ended_at));
    if (task.duration_ms !== null) workMs += task.duration_ms;
  }
  const makespanMs = first !== null && last !== null ? Math.max(0, last - first) : null;
  return {
    total: entries.length,
    counts,
    replacing,
    active,
    finished: entries.length > 0 && active === 0,
    makespanMs,
    workMs,
    parallelism: makespanMs ? workMs / makespanMs : null,
    peakWorkers: peakConcurrency(entries.map(([, task]) => task)),
    firstStart: first === null ? null : new Date(first).toISOString(),
    lastEnd: last === null ? null : new Date(last).toISOString(),
    cost: costTotals(entries.map(([, task]) => task)),
    verdicts,
  };
}

/** Sums the reported cost and tokens of tasks; fields no task reported stay null. */
export function costTotals(tasks: readonly TaskRecord[]): CostTotals {
  const sum = (pick: (task: TaskRecord) => number | null): number | null => {
    const values = tasks.map(pick).filter((value): value is number => value !== null);
    return values.length === 0 ? null : values.reduce((a, b) => a + b, 0);
  };
  const usd = sum((task) => task.cost_usd);
  return {
    // Rounded to a millionth of a dollar so float sums print cleanly.
    usd: usd === null ? null : Math.round(usd * 1e6) / 1e6,
    inputTokens: sum((task) => task.input_tokens),
    outputTokens: sum((task) => task.output_tokens),
    reportedTasks: tasks.filter((task) => task.cost_usd !== null).length,
  };
}

/** Most tasks running at one instant; an end at t frees its worker before a start at t. */
function peakConcurrency(tasks: readonly TaskRecord[]): number {
  const points: Array<[number, number]> = [];
  for (const task of tasks) {
    if (!task.started_at) continue;
    points.push([Date.parse(task.started_at), 1]);
    if (task.ended_at) points.push([Date.parse(task.ended_at), -1]);
  }
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let peak = 0;
  for (const [, delta] of points) peak = Math.max(peak, (current += delta));
  return peak;
}

/**
 * Exit code for a finished session: 0 if every task completed, 1 if any failed, was skipped or cancelled, or completed
 * with its answer `contradicted` by its receipts or check (an `unverified` one is named, not failed).
 */
export function exitCodeFor(summary: SessionSummary): number {
  return summary.counts.completed === summary.total && summary.verdicts.contradicted === 0 ? EXIT.ok : EXIT.taskFailed;
}

/** ` (2 unverified, 1 contradicted)` after a count of completed tasks, or `` when every judged task was verified. */
export function verdictNote(verdicts: Record<VerdictValue, number>): string {
  const parts = (['unverified', 'contradicted'] as const).filter((v) => verdicts[v] > 0).map((v) => `${verdicts[v]} ${v}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}
