// The one renderer of a session's end summary in its variants (text block, Markdown, orchestrate's line, poll-session's
// lines); the figures it shows come from session-figures.ts (re-exported here).
import { mergeRunLine } from '../isolation/merge-report.ts';
import { countOf, formatDuration, formatTokens, formatUsd } from '../core/format.ts';
import { verdictNote, type PollOutcome } from './session-figures.ts';
import type { ReportData } from './report-data.ts';
import type { TaskStatus } from '../state/model.ts';

export * from './session-figures.ts';

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
        `Session ${data.session_id}: ${counts.completed} of ${total} completed${verdictNote(data.verdicts)}${endedCounts(counts, ['failed', 'merge_failed', 'skipped', 'cancelled'])}; ` +
        `makespan ${formatDuration(data.makespan_ms)}, parallelism ${parallelismText(data.parallelism)}. Next: ${options.next} writes the report.` +
        limitLines(data)
          .map((line) => `\n${line}`)
          .join('')
      );
    case 'outcome':
      if (options.outcome === 'timeout') return `Timed out after ${options.timeoutS} s with tasks still active (${active} of ${total}).`;
      if (options.outcome === 'active') return `${active} of ${total} tasks still active.`;
      return `All ${total} tasks ended: ${counts.completed} completed${verdictNote(data.verdicts)}${endedCounts(counts, ['failed', 'merge_failed', 'skipped', 'cancelled'])}. Makespan ${formatDuration(data.makespan_ms)}.`;
    case 'poll':
      return pollLine(data, options, replacing);
  }
}

/**
 * `Unverified: 1 task (T: no tool call at all)` and `Contradicted: ...` lines of the completed tasks not verified,
 * each with its evidence; none when every judged task was verified.
 */
export function verdictLines(data: Pick<ReportData, 'tasks'>): string[] {
  const lines: string[] = [];
  for (const value of ['unverified', 'contradicted'] as const) {
    const list = data.tasks.filter((task) => task.status === 'completed' && task.verdict?.value === value);
    if (list.length === 0) continue;
    const label = `${value[0]!.toUpperCase()}${value.slice(1)}`;
    lines.push(
      `${label}: ${countOf(list.length, 'task')} (${list.map((t) => `${t.task}: ${t.verdict!.evidence.join('; ')}`).join(' | ')})`,
    );
  }
  return lines;
}

/** The seeds' "EXECUTION SUMMARY" block. */
function executionBlock(data: ReportData): string {
  const lines = [RULE, 'EXECUTION SUMMARY', RULE, `Completed: ${data.counts.completed} of ${data.total} tasks`, ...verdictLines(data)];
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
    return `[poll] All ${total} tasks ended: ${counts.completed} completed${verdictNote(data.verdicts)}${endedCounts(counts, ['failed'])}${others}; ${elapsed}. Next: ${options.nextCommand} (exit ${options.exitCode}).`;
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
