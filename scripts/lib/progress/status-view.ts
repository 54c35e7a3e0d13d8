// The view model behind the progress board and the status table: rows in topological order, counts, workers, elapsed time, time left, cost.
import { topologicalBatches, criticalPath } from '../scheduling/graph.ts';
import { sessionGraph } from '../report/report-data.ts';
import { SLOT_STATUSES } from '../scheduling/scheduling.ts';
import { getTask, TERMINAL_STATUSES, type SessionState, type TaskRecord, type TaskStatus } from '../state/model.ts';
import { summarize, type CostTotals } from '../report/session-summary.ts';
import { capacityLabel } from '../scheduling/capacity.ts';
import { budgetPicture } from '../scheduling/budget.ts';
import { countOf } from '../core/format.ts';
import { describeReceipt, totalCalls } from '../verification/receipts.ts';

/** One task as the board and the table show it. Times in ms. */
export interface TaskRow {
  name: string;
  agent: string;
  /** The record's status, or `replacing` while a replacement agent is on its way. */
  status: TaskStatus | 'replacing';
  /** Run time: the duration once ended, the time since start while running, null before it ran. */
  elapsedMs: number | null;
  attempts: number;
  maxAttempts: number;
  /** US dollars: the recorded cost, else (while it runs) the live estimate; see `costEstimated`. */
  costUsd: number | null;
  /** `costUsd` is the live estimate of a running agent (shown with a `~`), not a cost the CLI reported. */
  costEstimated: boolean;
  /** A running claude agent's live progress (task field `live`), or null. */
  live: { turns: number; lastTool: string | null; estCostUsd: number | null; apiRetries: number } | null;
  /** What is worth knowing beyond the status: what it waits on, why it failed. Empty when nothing. */
  note: string;
}

/** Everything the board and the status table show, computed once from a state. */
export interface StatusView {
  sessionId: string;
  total: number;
  counts: Record<TaskStatus, number>;
  /** Tasks waiting for a replacement agent (counted in `counts.failed` too). */
  replacing: number;
  /** Tasks holding a worker slot (running or retrying), and the session's limit. */
  busyWorkers: number;
  maxWorkers: number;
  /**
   * The header's workers text: `workers 2/5`, with the rate-limit state when there is one
   * (`workers 2/5 (rate limited to 2, since 12:01:07)`, scheduling/capacity.ts `capacityLabel`);
   * absent in views built by hand (the board then shows `workers busy/max`).
   */
  workersLabel?: string;
  /** The session budget and what is spent (USD), or null without one. */
  budget?: { usd: number; spentUsd: number } | null;
  /** Since the session was created (ms). */
  elapsedMs: number;
  /** Rough time left (ms), see {@link estimateTimeLeft}; null when it cannot be told yet. */
  etaMs: number | null;
  cost: CostTotals;
  /** The first topological batch that has not ended, with its counts (the seeds' "Group G1: 2 completed | 1 running | 0 pending"). */
  currentBatch: { number: number; of: number; completed: number; running: number; pending: number; failed: number } | null;
  rows: TaskRow[];
}

/** Options of {@link buildStatusView}. */
export interface ViewOptions {
  /** The time to measure elapsed times against (ms since the epoch). */
  now: number;
  /** Failed tasks whose replacement agent is on its way (shown as `replacing`, counted as active). */
  replacing?: ReadonlySet<string>;
}

/** Builds the {@link StatusView} of a state at `options.now`. */
export function buildStatusView(state: SessionState, options: ViewOptions): StatusView {
  const { now } = options;
  const replacing = options.replacing ?? new Set<string>();
  const summary = summarize(state, { replacing });
  const graph = sessionGraph(state);
  const batches = safeBatches(graph);
  const order = batches.flat();
  const rows = order.map((name): TaskRow => {
    const task = getTask(state.tasks, name)!;
    const elapsedMs = task.duration_ms ?? (task.started_at ? Math.max(0, now - Date.parse(task.started_at)) : null);
    const status = replacing.has(name) && task.status === 'failed' ? 'replacing' : task.status;
    const live = task.live
      ? { turns: task.live.turns, lastTool: task.live.last_tool, estCostUsd: task.live.est_cost_usd, apiRetries: task.live.api_retries }
      : null;
    const costEstimated = task.cost_usd === null && live !== null && live.estCostUsd !== null && SLOT_STATUSES.has(task.status);
    const costUsd = costEstimated ? live.estCostUsd : task.cost_usd;
    return {
      name,
      agent: task.agent,
      status,
      elapsedMs,
      attempts: task.attempts,
      maxAttempts: task.max_attempts,
      costUsd,
      costEstimated,
      live,
      note: noteFor(state, task, status, now),
    };
  });
  const busy = Object.values(state.tasks).filter((task) => SLOT_STATUSES.has(task.status)).length;
  const ended = (name: string) => TERMINAL_STATUSES.has(getTask(state.tasks, name)!.status) && !replacing.has(name);
  const index = batches.findIndex((names) => !names.every(ended));
  const currentBatch =
    index === -1
      ? null
      : {
          number: index + 1,
          of: batches.length,
          completed: batches[index]!.filter((name) => getTask(state.tasks, name)!.status === 'completed').length,
          running: batches[index]!.filter((name) => SLOT_STATUSES.has(getTask(state.tasks, name)!.status)).length,
          pending: batches[index]!.filter((name) => !ended(name) && !SLOT_STATUSES.has(getTask(state.tasks, name)!.status)).length,
          failed: batches[index]!.filter((name) => ended(name) && getTask(state.tasks, name)!.status !== 'completed').length,
        };
  return {
    sessionId: state.session_id,
    total: summary.total,
    counts: summary.counts,
    replacing: summary.replacing,
    busyWorkers: busy,
    maxWorkers: state.max_workers,
    workersLabel: capacityLabel(state, busy, new Date(now)),
    budget: state.budget.usd === null ? null : { usd: state.budget.usd, spentUsd: budgetPicture(state).spentUsd },
    elapsedMs: Math.max(0, now - Date.parse(state.created_at)),
    etaMs: estimateTimeLeft(state, now, replacing),
    cost: summary.cost,
    currentBatch,
    rows,
  };
}

/**
 * A rough estimate of the time left (ms): every task not ended is assumed to take the mean duration
 * of the completed ones (a running task, that mean less what it already ran). The answer is the
 * larger of two lower bounds: the longest chain of remaining dependent tasks, and the remaining
 * work spread over `max_workers`.
 *
 * @returns 0 when nothing is left, null while no task has completed (nothing to go by).
 */
export function estimateTimeLeft(state: SessionState, now: number, replacing: ReadonlySet<string> = new Set()): number | null {
  const tasks = Object.entries(state.tasks);
  const left = tasks.filter(([name, task]) => !TERMINAL_STATUSES.has(task.status) || replacing.has(name));
  if (left.length === 0) return 0;
  const done = tasks.map(([, task]) => task).filter((task) => task.status === 'completed' && task.duration_ms !== null);
  if (done.length === 0) return null;
  const mean = done.reduce((sum, task) => sum + task.duration_ms!, 0) / done.length;
  const estimate = new Map<string, number>();
  for (const [name, task] of left) {
    const ran = SLOT_STATUSES.has(task.status) && task.started_at ? now - Date.parse(task.started_at) : 0;
    estimate.set(name, Math.max(0, mean - ran));
  }
  const remaining = new Map(left.map(([name, task]) => [name, task.depends_on.filter((dep) => estimate.has(dep))]));
  let chain = 0;
  try {
    chain = criticalPath(remaining, estimate).lengthMs;
  } catch {
    chain = 0;
  }
  const work = [...estimate.values()].reduce((a, b) => a + b, 0);
  return Math.round(Math.max(chain, work / Math.max(1, state.max_workers)));
}

function noteFor(state: SessionState, task: TaskRecord, status: TaskRow['status'], now: number): string {
  if (status === 'replacing') return `replacement agent starting (attempt ${task.attempts + 1} of ${task.max_attempts})`;
  if (status === 'waiting') {
    const on = blockers(state, task);
    return on.length > 0 ? `waiting on ${on.join(', ')}` : 'waiting for a free worker';
  }
  if (status === 'retrying') {
    const next = task.next_retry_at ? Date.parse(task.next_retry_at) - now : null;
    return `retry${next !== null && next > 0 ? ` in ${Math.ceil(next / 1000)} s` : ''}${task.error ? `: ${task.error}` : ''}`;
  }
  if (status === 'running') {
    const predicted = task.predicted_conflicts.length > 0 ? `predicted merge conflict in ${task.predicted_conflicts.join(', ')}` : '';
    const live = task.live ? liveNote(task.live) : '';
    const receipts = task.receipts && totalCalls(task.receipts.tool_calls) > 0 ? describeReceipt(task.receipts) : '';
    return [predicted, live, receipts].filter((part) => part !== '').join(' · ');
  }
  if (status === 'completed' && task.verdict && task.verdict.value !== 'verified')
    return `${task.verdict.value}: ${task.verdict.evidence.join('; ')}`;
  if (status === 'completed' && task.receipts) return describeReceipt(task.receipts);
  if (status === 'pending') return task.depends_on.length > 0 ? `depends on ${task.depends_on.join(', ')}` : 'queued';
  if (status === 'failed' || status === 'skipped' || status === 'cancelled' || status === 'merge_failed') return task.error ?? '';
  return '';
}

/** A running agent's progress in words: `turn 3 · last tool Bash · 2 API retries (429 rate_limit)`. */
export function liveNote(live: NonNullable<TaskRecord['live']>): string {
  const parts = [`turn ${live.turns}`];
  if (live.last_tool) parts.push(`last tool ${live.last_tool}`);
  if (live.api_retries > 0)
    parts.push(`${countOf(live.api_retries, 'API retry', 'API retries')}${live.last_api_error ? ` (${live.last_api_error})` : ''}`);
  return parts.join(' · ');
}

/**
 * What a waiting task waits on now: its dependencies not completed yet, and the tasks it recorded
 * as holding one of its files that are still active (the recorded `waiting_on` ages as tasks end).
 */
function blockers(state: SessionState, task: TaskRecord): string[] {
  const active = (name: string) => {
    const other = getTask(state.tasks, name);
    return other !== undefined && !TERMINAL_STATUSES.has(other.status);
  };
  // Not ended yet, or not registered at all.
  const deps = task.depends_on.filter((dep) => {
    const record = getTask(state.tasks, dep);
    return record === undefined || !TERMINAL_STATUSES.has(record.status);
  });
  const files = task.waiting_on.filter((name) => !task.depends_on.includes(name) && active(name));
  return [...new Set([...deps, ...files])];
}

function safeBatches(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  try {
    return topologicalBatches(graph);
  } catch {
    return [[...graph.keys()]];
  }
}
