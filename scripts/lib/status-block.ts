// Plain-text blocks for readers that are not terminals (Claude, logs): the full status table and the execution summary, as in the seeds.
import { formatClock, formatDuration, formatTokens, formatUsd, renderTextTable, STATUS_ICONS } from './format.ts';
import type { ReportData } from './report-data.ts';
import type { StatusView, TaskRow } from './status-view.ts';

/** The `═` rule framing the blocks (the seeds' width). */
export const RULE = '═'.repeat(60);

/** Icon of a row's status (`replacing` borrows the seeds' warning sign). */
export function rowIcon(status: TaskRow['status']): string {
  return status === 'replacing' ? '⚠️' : STATUS_ICONS[status];
}

/**
 * The full status table (the seeds' "ORCHESTRATION STATUS" refresh): one row per task in
 * topological order, then the current batch, counts, workers, elapsed time, estimated time left
 * and, when any agent reported it, the cost so far.
 *
 * @returns lines joined with `\n`, ending with a newline.
 */
export function renderStatusBlock(view: StatusView): string {
  const withCost = view.rows.some((row) => row.costUsd !== null);
  const header = ['task', 'agent', 'status', 'elapsed', 'tries', ...(withCost ? ['cost'] : []), 'note'];
  const rows = view.rows.map((row) => [
    `${rowIcon(row.status)} ${row.name}`,
    row.agent,
    row.status,
    formatDuration(row.elapsedMs),
    `${row.attempts}/${row.maxAttempts}`,
    ...(withCost ? [formatUsd(row.costUsd)] : []),
    row.note.replace(/\s+/g, ' '),
  ]);
  const lines = [RULE, `ORCHESTRATION STATUS: session ${view.sessionId}`, RULE, renderTextTable(header, rows), RULE];
  if (view.currentBatch) {
    const b = view.currentBatch;
    lines.push(`Batch ${b.number} of ${b.of}: ${b.completed} completed | ${b.running} running | ${b.pending} pending${b.failed ? ` | ${b.failed} failed` : ''}`);
  }
  lines.push(
    `Tasks: ${countsText(view)}`,
    `Workers: ${view.busyWorkers} active | ${Math.max(0, view.maxWorkers - view.busyWorkers)} available (limit ${view.maxWorkers})`,
    `Time elapsed: ${formatClock(view.elapsedMs)} | estimated time left: ${view.etaMs === null ? 'unknown yet' : formatClock(view.etaMs)}`,
  );
  if (view.cost.usd !== null) lines.push(`Cost so far: ${formatUsd(view.cost.usd)} (${formatTokens(view.cost.inputTokens)} input / ${formatTokens(view.cost.outputTokens)} output tokens)`);
  lines.push(RULE);
  return lines.join('\n') + '\n';
}

/** `5 in all: 1 completed | 2 running | ...` with only the statuses that occur. */
export function countsText(view: Pick<StatusView, 'total' | 'counts' | 'replacing'>): string {
  const parts = Object.entries(view.counts).filter(([, n]) => n > 0).map(([status, n]) => `${n} ${status}`);
  if (view.replacing > 0) parts.push(`${view.replacing} being replaced`);
  return `${view.total} in all${parts.length ? `: ${parts.join(' | ')}` : ''}`;
}

/**
 * The seeds' "EXECUTION SUMMARY" block: completed X of Y, each failure with its reason, makespan,
 * sum of durations, achieved parallelism, critical path, peak workers and cost.
 *
 * @returns lines joined with `\n`, ending with a newline.
 */
export function renderExecutionSummary(data: ReportData): string {
  const lines = [RULE, 'EXECUTION SUMMARY', RULE, `Completed: ${data.counts.completed} of ${data.total} tasks`];
  for (const status of ['failed', 'skipped', 'cancelled'] as const) {
    const list = data.failures.filter((f) => f.status === status);
    if (list.length === 0) continue;
    const reasons = list.map((f) => `${f.task}: ${(f.error ?? 'no reason recorded').replace(/\s+/g, ' ')}`).join('; ');
    lines.push(`${status[0]!.toUpperCase()}${status.slice(1)}: ${list.length} task${list.length === 1 ? '' : 's'} (${reasons})`);
  }
  lines.push(
    `Duration: ${formatDuration(data.makespan_ms)} makespan (first start to last end)`,
    `Sum of task durations: ${formatDuration(data.work_ms)}`,
    `Parallelism achieved: ${data.parallelism === null ? '-' : `${data.parallelism.toFixed(2)}x`} (sum / makespan)`,
    `Critical path: ${data.critical_path.tasks.join(' -> ') || '-'} (${formatDuration(data.critical_path.length_ms)}, the best any schedule could do)`,
    `Workers used: ${data.peak_workers} at most at once (limit ${data.max_workers})`,
  );
  if (data.cost.usd !== null) {
    lines.push(`Cost: ${formatUsd(data.cost.usd)} (${formatTokens(data.cost.input_tokens)} input / ${formatTokens(data.cost.output_tokens)} output tokens)`);
  }
  lines.push(RULE);
  return lines.join('\n') + '\n';
}
