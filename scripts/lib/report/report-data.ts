// The report of a session as plain data (snake_case, JSON-ready): aggregate --json, poll-session's final summary, and the source of every rendering.
import type { SessionEvent } from '../state/events.ts';
import { criticalPath, topologicalBatches } from '../scheduling/graph.ts';
import { getTask, hasTask, type Priority, type SessionState, type TaskRecord, type TaskStatus, type VerdictValue } from '../state/model.ts';
import { receiptPath } from '../verification/receipt-file.ts';
import { summarize } from './session-figures.ts';
import { buildTimeline, type TimelineBuilder, type TimelineSegment } from './timeline.ts';
import { mergeReport, type MergeReport } from '../isolation/merge-report.ts';
import { budgetPicture } from '../scheduling/budget.ts';
import { effectiveLimit } from '../scheduling/capacity.ts';

/** Version of the {@link ReportData} layout; bumped when a field changes meaning. */
export const REPORT_SCHEMA_VERSION = 1;

/** One task in the report. Times ISO 8601, durations ms, cost USD. */
export interface TaskReport {
  task: string;
  agent: string;
  status: TaskStatus;
  /** 1-based topological batch. */
  batch: number;
  depends_on: string[];
  priority: Priority;
  attempts: number;
  max_attempts: number;
  started_at: string | null;
  ended_at: string | null;
  duration_ms: number | null;
  cost_usd: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  error: string | null;
  result_path: string | null;
  on_critical_path: boolean;
  /** A claude agent's live progress (turns, last tool, tokens, estimated cost, API retries); absent when none was recorded. */
  live?: NonNullable<TaskRecord['live']>;
  /** An isolated task's branch, worktree, diff stat and merge (`--isolation worktree`); absent for a task that shared the tree. */
  merge?: NonNullable<TaskRecord['merge']>;
  /** Which host (worker name) ran each attempt, for agents run elsewhere (the BullMQ backend); absent for local agents. */
  hosts?: TaskRecord['attempt_hosts'];
  /** What the agent did, over its attempts (verification/receipts.ts); absent before any receipt. The whole receipt: `receipt_path`. */
  receipts?: NonNullable<TaskRecord['receipts']>;
  /** The receipt file beside the result (every attempt's tool calls, files, commands, denials); absent without receipts. */
  receipt_path?: string;
  /** The verdict on a completed task and its evidence (verification/verdict.ts); absent when not judged. */
  verdict?: NonNullable<TaskRecord['verdict']>;
}

/** The whole report. Documented in references/events.md ("aggregate --json"). */
export interface ReportData {
  schema_version: typeof REPORT_SCHEMA_VERSION;
  session_id: string;
  /** When the report was computed. */
  generated_at: string;
  /** When the session was created. */
  created_at: string;
  /** Every task has ended. */
  finished: boolean;
  total: number;
  counts: Record<TaskStatus, number>;
  /** Completed tasks by verdict: verified, unverified (success claimed without evidence), contradicted (disproved). */
  verdicts: Record<VerdictValue, number>;
  /** First start and last end of the tasks that ran. */
  started_at: string | null;
  ended_at: string | null;
  /** From the first start to the last end (ms). */
  makespan_ms: number | null;
  /** Sum of the tasks' durations (ms, the last attempt of each). */
  work_ms: number;
  /** work_ms / makespan_ms: the average number of tasks running at once. */
  parallelism: number | null;
  /** Most tasks running at the same instant, and the session's limit. */
  peak_workers: number;
  max_workers: number;
  /** The longest chain of dependent tasks by duration: the least makespan any schedule could reach, even with unlimited workers. */
  critical_path: { tasks: string[]; length_ms: number };
  /** Totals over the tasks that reported a cost (null when none did: mock agents report none). */
  cost: { usd: number | null; input_tokens: number | null; output_tokens: number | null; reported_tasks: number };
  /** Tasks that failed, were skipped or were cancelled, with the reason recorded. */
  failures: Array<{ task: string; agent: string; status: TaskStatus; error: string | null; attempts: number }>;
  /** Topological batches: batch 1 has no dependencies, batch k depends only on earlier ones. */
  batches: string[][];
  /** Every task, in topological order. */
  tasks: TaskReport[];
  /** Each run of each task (one per attempt when events are available), by start time. */
  timeline: TimelineSegment[];
  /** The merge section of an isolated session (`--isolation worktree`); absent when no task was isolated. */
  merge?: MergeReport;
  /** The rate-limit-adaptive limit (scheduling/capacity.ts): the state's `capacity` plus the limit in force now. */
  capacity: SessionState['capacity'] & { effective_limit: number };
  /** The session budget (scheduling/budget.ts), USD: spent is every task's recorded cost; overshoot = max(0, spent - budget). */
  budget: {
    usd: number | null;
    on_budget: SessionState['budget']['on_budget'];
    spent_usd: number;
    overshoot_usd: number | null;
    reached_at: string | null;
  };
}

/** Options of {@link buildReportData}. */
export interface ReportOptions {
  /** The session's events (from events.jsonl), for a timeline per attempt; null or absent uses the state alone. */
  events?: readonly SessionEvent[] | null;
  /** The timeline built as the events were read (a follower's), used instead of `events`. */
  timeline?: TimelineBuilder;
  /** The time of the report, ms since the epoch (default now): `generated_at` and the end of runs still going. */
  now?: number;
  /** Failed tasks whose replacement is on its way (counted as not finished). */
  replacing?: ReadonlySet<string>;
}

/** The session's dependency graph, restricted to registered tasks (own-key lookups: any task name is safe). */
export function sessionGraph(state: SessionState): Map<string, string[]> {
  return new Map(Object.entries(state.tasks).map(([name, task]) => [name, task.depends_on.filter((dep) => hasTask(state.tasks, dep))]));
}

/** Computes the report's data from a state (and, optionally, its events). */
export function buildReportData(state: SessionState, options: ReportOptions = {}): ReportData {
  const now = options.now ?? Date.now();
  const graph = sessionGraph(state);
  let batches: string[][];
  try {
    batches = topologicalBatches(graph);
  } catch {
    batches = [[...graph.keys()]];
  }
  const batchOf = new Map(batches.flatMap((names, index) => names.map((name) => [name, index + 1] as const)));
  const durations = new Map(Object.entries(state.tasks).map(([name, task]) => [name, task.duration_ms ?? 0]));
  let critical = { path: [] as string[], lengthMs: 0 };
  try {
    critical = criticalPath(graph, durations);
  } catch {
    // A cycle cannot come from a validated plan; the report still renders without a critical path.
  }
  const onPath = new Set(critical.path);
  const summary = summarize(state, { replacing: options.replacing });
  const tasks = batches.flat().map((name): TaskReport => {
    const t = getTask(state.tasks, name)!;
    return {
      task: name,
      agent: t.agent,
      status: t.status,
      batch: batchOf.get(name) ?? 1,
      depends_on: t.depends_on,
      priority: t.priority,
      attempts: t.attempts,
      max_attempts: t.max_attempts,
      started_at: t.started_at,
      ended_at: t.ended_at,
      duration_ms: t.duration_ms,
      cost_usd: t.cost_usd,
      input_tokens: t.input_tokens,
      output_tokens: t.output_tokens,
      error: t.error,
      result_path: t.result_path,
      on_critical_path: onPath.has(name),
      ...(t.live ? { live: t.live } : {}),
      ...(t.merge ? { merge: t.merge } : {}),
      ...(t.attempt_hosts.length > 0 ? { hosts: t.attempt_hosts } : {}),
      ...(t.receipts ? { receipts: t.receipts, ...(t.result_path ? { receipt_path: receiptPath(t.result_path) } : {}) } : {}),
      ...(t.verdict ? { verdict: t.verdict } : {}),
    };
  });
  return {
    schema_version: REPORT_SCHEMA_VERSION,
    session_id: state.session_id,
    generated_at: new Date(now).toISOString(),
    created_at: state.created_at,
    finished: summary.finished,
    total: summary.total,
    counts: summary.counts,
    verdicts: summary.verdicts,
    started_at: summary.firstStart,
    ended_at: summary.lastEnd,
    makespan_ms: summary.makespanMs,
    work_ms: summary.workMs,
    parallelism: summary.parallelism === null ? null : Math.round(summary.parallelism * 100) / 100,
    peak_workers: summary.peakWorkers,
    max_workers: state.max_workers,
    critical_path: { tasks: critical.path, length_ms: critical.lengthMs },
    cost: {
      usd: summary.cost.usd,
      input_tokens: summary.cost.inputTokens,
      output_tokens: summary.cost.outputTokens,
      reported_tasks: summary.cost.reportedTasks,
    },
    failures: tasks
      .filter(
        (task) => task.status === 'failed' || task.status === 'merge_failed' || task.status === 'skipped' || task.status === 'cancelled',
      )
      .map((task) => ({ task: task.task, agent: task.agent, status: task.status, error: task.error, attempts: task.attempts })),
    batches,
    tasks,
    timeline: options.timeline ? options.timeline.build(state, now) : buildTimeline(state, options.events ?? null, now),
    ...optionalMerge(state),
    ...limitsReport(state),
  };
}

/** The `capacity` and `budget` sections (scheduling/capacity.ts, budget.ts). */
function limitsReport(state: SessionState): Pick<ReportData, 'capacity' | 'budget'> {
  const spent = Math.round(budgetPicture(state).spentUsd * 1e6) / 1e6;
  const usd = state.budget.usd;
  return {
    capacity: { ...state.capacity, effective_limit: effectiveLimit(state) },
    budget: {
      usd,
      on_budget: state.budget.on_budget,
      spent_usd: spent,
      overshoot_usd: usd === null ? null : Math.max(0, Math.round((spent - usd) * 1e6) / 1e6),
      reached_at: state.budget.reached_at,
    },
  };
}

function optionalMerge(state: SessionState): { merge?: MergeReport } {
  const merge = mergeReport(state);
  return merge ? { merge } : {};
}
