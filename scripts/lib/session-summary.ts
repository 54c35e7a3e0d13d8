// Figures of a session derived from its state: counts by status, makespan, work, parallelism, exit code.
import { EXIT } from './errors.ts';
import { TASK_STATUSES, TERMINAL_STATUSES, type SessionState, type TaskStatus } from './schema.ts';

/** Derived figures of one session. Times in ms. */
export interface SessionSummary {
  total: number;
  counts: Record<TaskStatus, number>;
  /** Every task has ended (completed, failed, skipped or cancelled). */
  finished: boolean;
  /** From the first start to the last end of the tasks that ran (ms); null if none ran. */
  makespanMs: number | null;
  /** Sum of the durations of the tasks that ran (ms). */
  workMs: number;
  /** workMs / makespanMs: how many tasks ran at once on average; null if nothing ran. */
  parallelism: number | null;
  firstStart: string | null;
  lastEnd: string | null;
}

/** Computes the {@link SessionSummary} of a state. */
export function summarize(state: SessionState): SessionSummary {
  const counts = Object.fromEntries(TASK_STATUSES.map((status) => [status, 0])) as Record<TaskStatus, number>;
  let first: number | null = null;
  let last: number | null = null;
  let workMs = 0;
  const tasks = Object.values(state.tasks);
  for (const task of tasks) {
    counts[task.status] += 1;
    if (task.started_at) first = Math.min(first ?? Infinity, Date.parse(task.started_at));
    if (task.ended_at && task.started_at) last = Math.max(last ?? -Infinity, Date.parse(task.ended_at));
    if (task.duration_ms !== null) workMs += task.duration_ms;
  }
  const makespanMs = first !== null && last !== null ? Math.max(0, last - first) : null;
  return {
    total: tasks.length,
    counts,
    finished: tasks.length > 0 && tasks.every((task) => TERMINAL_STATUSES.has(task.status)),
    makespanMs,
    workMs,
    parallelism: makespanMs ? workMs / makespanMs : null,
    firstStart: first === null ? null : new Date(first).toISOString(),
    lastEnd: last === null ? null : new Date(last).toISOString(),
  };
}

/** Exit code for a finished session: 0 if every task completed, 1 if any failed, was skipped or cancelled. */
export function exitCodeFor(summary: SessionSummary): number {
  return summary.counts.completed === summary.total ? EXIT.ok : EXIT.taskFailed;
}
