// Figures of a session derived from its state (counts by status, makespan, work, parallelism, peak workers, cost, exit code),
// and the one renderer of the end summary in its variants (text block, Markdown, orchestrate's line, poll-session's lines).
import { mergeRunLine } from '../isolation/merge-report.ts';
import { EXIT } from '../cli/errors.ts';
import { countOf, formatDuration, formatTokens, formatUsd } from '../cli/format.ts';
import type { PollOutcome } from '../progress/poll-loop.ts';
import type { ReportData } from './report-data.ts';
import { TASK_STATUSES, TERMINAL_STATUSES, type SessionState, type TaskRecord, type TaskStatus } from '../state/model.ts';

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
  const entries = Object.entries(state.tasks);
  for (const [name, task] of entries) {
    counts[task.status] += 1;
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

/** Exit code for a finished session: 0 if every task completed, 1 if any failed, was skipped or cancelled. */
export function exitCodeFor(summary: SessionSummary): number {
  return summary.counts.completed === summary.total ? EXIT.ok : EXIT.taskFailed;
}

/** The `═` rule framing the text blocks (the seeds' width). */
export const RULE = '═'.repeat(60);

/**
 * Variants of the end summary, each for one reader:
 * - `block`: the seeds' "EXECUTION SUMMARY" text block (aggregate's stdout, poll-session `--verbose` and the board at the end);
 * - `markdown`: the same figures as Markdown list items (final_output.md and its HTML page);
 * - `run`: orchestrate's last line, `Session S: 5 of 8 completed, 1 failed, 2 skipped; makespan 9.1 s, parallelism 2.40x. Next: NEXT writes the report.`;
 * - `outcome`: how a poll ended, in words (the last line of `--verbose` and of the board);
 * - `poll`: the `[poll]` line that ends a slice (quoted in SKILL.md and README: keep its wording).
 */
export type SummaryVariant =
  | { variant: 'block' }
  | { variant: 'markdown' }
  | { variant: 'run'; /** The command that writes the report. */ next: string }
  | { variant: 'outcome'; outcome: PollOutcome; /** `--timeout` (s), for the time-out wording. */ timeoutS?: number }
  | {
      variant: 'poll';
      outcome: PollOutcome;
      exitCode: number;
      /** ms since the epoch: the end of "elapsed" while tasks are active. */
      now: number;
      /** `--expect`: the tasks the session must have; shown while fewer are registered. */
      expect?: number;
      /** The command that writes the report, shown once every task ended. */
      nextCommand: string;
      timeoutS?: number;
    };

/** Options of {@link renderSummary}: the variant, plus failed tasks whose replacement is on its way (counted as active). */
export type SummaryRenderOptions = SummaryVariant & { replacing?: number };

/** `, 1 failed, 2 skipped` for the statuses among `statuses` that occur (empty when none does). */
export function endedCounts(counts: Record<TaskStatus, number>, statuses: readonly TaskStatus[]): string {
  return statuses
    .filter((status) => counts[status] > 0)
    .map((status) => `, ${counts[status]} ${status}`)
    .join('');
}

function parallelismText(parallelism: number | null): string {
  return parallelism === null ? '-' : `${parallelism.toFixed(2)}x`;
}

/**
 * Renders the end summary of a session from its report data ({@link ReportData}, see report-data.ts), in
 * one of the {@link SummaryVariant}s. `data` null means no session appeared (only `outcome` and `poll`
 * have words for that).
 *
 * @returns `block` and `markdown`: lines joined with `\n` (`block` ends with a newline, `markdown` does not);
 *   the others one line without newline.
 */
export function renderSummary(data: ReportData | null, options: SummaryRenderOptions): string {
  const replacing = options.replacing ?? 0;
  if (data === null) {
    if (options.variant === 'poll')
      return `[poll] No session appeared within ${options.timeoutS} s: run the same command again (exit ${options.exitCode}).`;
    if (options.variant === 'outcome') return `Timed out after ${options.timeoutS} s: no session appeared.`;
    throw new Error(`renderSummary: the ${options.variant} summary needs a session`);
  }
  const { counts, total } = data;
  const ended = counts.completed + counts.failed + counts.skipped + counts.cancelled + counts.merge_failed - replacing;
  const active = total - ended;
  switch (options.variant) {
    case 'block':
      return executionBlock(data);
    case 'markdown':
      return markdownItems(data, active).join('\n');
    case 'run':
      return (
        `Session ${data.session_id}: ${counts.completed} of ${total} completed${endedCounts(counts, ['failed', 'merge_failed', 'skipped', 'cancelled'])}; ` +
        `makespan ${formatDuration(data.makespan_ms)}, parallelism ${parallelismText(data.parallelism)}. Next: ${options.next} writes the report.` +
        limitLines(data)
          .map((line) => `\n${line}`)
          .join('')
      );
    case 'outcome':
      if (options.outcome === 'timeout') return `Timed out after ${options.timeoutS} s with tasks still active (${active} of ${total}).`;
      if (options.outcome === 'active') return `${active} of ${total} tasks still active.`;
      return `All ${total} tasks ended: ${counts.completed} completed${endedCounts(counts, ['failed', 'merge_failed', 'skipped', 'cancelled'])}. Makespan ${formatDuration(data.makespan_ms)}.`;
    case 'poll':
      return pollLine(data, options, replacing);
  }
}

/** The seeds' "EXECUTION SUMMARY" block. */
function executionBlock(data: ReportData): string {
  const lines = [RULE, 'EXECUTION SUMMARY', RULE, `Completed: ${data.counts.completed} of ${data.total} tasks`];
  for (const status of ['failed', 'merge_failed', 'skipped', 'cancelled'] as const) {
    const list = data.failures.filter((f) => f.status === status);
    if (list.length === 0) continue;
    const reasons = list.map((f) => `${f.task}: ${(f.error ?? 'no reason recorded').replace(/\s+/g, ' ')}`).join('; ');
    const label = status === 'merge_failed' ? 'Merge failed' : `${status[0]!.toUpperCase()}${status.slice(1)}`;
    lines.push(`${label}: ${countOf(list.length, 'task')} (${reasons})`);
  }
  lines.push(
    `Duration: ${formatDuration(data.makespan_ms)} makespan (first start to last end)`,
    `Sum of task durations: ${formatDuration(data.work_ms)}`,
    `Parallelism achieved: ${parallelismText(data.parallelism)} (sum / makespan)`,
    `Critical path: ${data.critical_path.tasks.join(' -> ') || '-'} (${formatDuration(data.critical_path.length_ms)}, the best any schedule could do)`,
    `Workers used: ${data.peak_workers} at most at once (limit ${data.max_workers})`,
  );
  if (data.cost.usd !== null) {
    lines.push(
      `Cost: ${formatUsd(data.cost.usd)} (${formatTokens(data.cost.input_tokens)} input / ${formatTokens(data.cost.output_tokens)} output tokens)`,
    );
  }
  lines.push(...limitLines(data));
  // Worktree isolation: where the work is and how to land it (a model reads this from aggregate, never orchestrate's log).
  const merge = mergeRunLine(data.merge ?? null);
  if (merge) lines.push(merge);
  lines.push(RULE);
  return lines.join('\n') + '\n';
}

/** The same figures as Markdown list items. */
function markdownItems(data: ReportData, active: number): string[] {
  const { counts } = data;
  const cost =
    data.cost.usd === null
      ? 'not reported (mock agents report none)'
      : `${formatUsd(data.cost.usd)} (${formatTokens(data.cost.input_tokens)} input tokens, ${formatTokens(data.cost.output_tokens)} output tokens; ${data.cost.reported_tasks} of ${data.total} tasks reported)`;
  return [
    `- Completed: **${counts.completed} of ${data.total}** tasks`,
    `- Failed: ${counts.failed}, skipped: ${counts.skipped}, cancelled: ${counts.cancelled}` +
      (counts.merge_failed > 0 ? `, merge failed: ${counts.merge_failed}` : '') +
      (active > 0 ? ` (still active: ${active})` : ''),
    `- Makespan (first start to last end): ${formatDuration(data.makespan_ms)}`,
    `- Sum of task durations: ${formatDuration(data.work_ms)}`,
    `- Achieved parallelism (sum / makespan): ${parallelismText(data.parallelism)}`,
    `- Critical path: ${data.critical_path.tasks.join(' → ') || '-'} (${formatDuration(data.critical_path.length_ms)}): ` +
      'the shortest makespan any schedule could reach, even with unlimited workers',
    `- Workers: ${data.peak_workers} at most at once (limit ${data.max_workers})`,
    `- Total cost: ${cost}`,
    ...limitLines(data).map((line) => `- ${line}`),
  ];
}

/**
 * The budget and rate-limit lines (scheduling/budget.ts, capacity.ts), only when they apply:
 * `Budget: $0.0900, spent $0.0750, overshoot $0.0000 (--on_budget finish; reached, the rest skipped)`,
 * `Rate limits: 6 seen by the agents; worker limit now 3 of 8 (adaptive)`.
 */
function limitLines(data: ReportData): string[] {
  const lines: string[] = [];
  const { budget, capacity } = data;
  if (budget.usd !== null) {
    const money = (usd: number) => `$${usd.toFixed(4)}`;
    lines.push(
      `Budget: ${money(budget.usd)}, spent ${money(budget.spent_usd)}, overshoot ${money(budget.overshoot_usd ?? 0)} ` +
        `(--on_budget ${budget.on_budget}${budget.reached_at ? '; reached: no task started after it' : ''})`,
    );
  }
  if (capacity.hits > 0) {
    lines.push(
      `Rate limits: ${capacity.hits} seen by the agents; worker limit now ${capacity.effective_limit} of ${data.max_workers} ` +
        `(${capacity.adaptive ? 'adaptive' : '--adaptive off'})`,
    );
  }
  return lines;
}

/**
 * The `[poll]` line, e.g. `[poll] 7/20 completed, 3 running, 10 waiting, 0 failed; 4m12s elapsed. Still running: run the same command again (exit 3).`
 * or `[poll] All 20 tasks ended: 19 completed, 1 failed; 31m02s elapsed. Next: "<run>" aggregate (exit 1).`
 * Elapsed time runs from the session's creation to now, or to the last task's end once all ended.
 */
function pollLine(data: ReportData, options: Extract<SummaryVariant, { variant: 'poll' }>, replacing: number): string {
  const { counts, total } = data;
  const ended = options.outcome === 'completed' || options.outcome === 'failed';
  const created = Date.parse(data.created_at);
  const endMs = ended && data.ended_at !== null ? Math.max(Date.parse(data.ended_at), created) : options.now;
  const elapsed = `${formatElapsed(endMs - created)} elapsed`;
  const others = endedCounts(counts, ['merge_failed', 'skipped', 'cancelled']);
  if (ended) {
    return `[poll] All ${total} tasks ended: ${counts.completed} completed${endedCounts(counts, ['failed'])}${others}; ${elapsed}. Next: ${options.nextCommand} (exit ${options.exitCode}).`;
  }
  const running = counts.running + counts.retrying + replacing;
  const waiting = counts.pending + counts.waiting;
  const expecting =
    options.expect !== undefined && total < options.expect ? ` (${total} of ${options.expect} expected tasks registered)` : '';
  // The session's adaptive worker limit, while rate limits hold it below max_workers (scheduling/capacity.ts).
  const limited =
    data.capacity.adaptive && data.capacity.limit !== null && data.capacity.effective_limit < data.max_workers
      ? `; rate limited: at most ${data.capacity.effective_limit} of ${data.max_workers} workers`
      : '';
  return (
    `[poll] ${counts.completed}/${total} completed, ${running} running, ${waiting} waiting, ${counts.failed - replacing} failed${others}${expecting}${limited}; ` +
    `${elapsed}. Still running: run the same command again (exit ${options.exitCode}).`
  );
}

/** Elapsed time as `42s`, `4m12s` or `1h05m`. */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  if (total < 60) return `${total}s`;
  if (total < 3600) return `${Math.floor(total / 60)}m${String(total % 60).padStart(2, '0')}s`;
  return `${Math.floor(total / 3600)}h${String(Math.floor((total % 3600) / 60)).padStart(2, '0')}m`;
}
