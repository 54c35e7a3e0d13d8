// Plain-text blocks for readers that are not terminals (Claude, logs): the full status table, as in the seeds (the execution summary: session-summary.ts).
import { formatClock, formatDuration, formatTokens, formatUsd, renderTextTable } from '../core/format.ts';
import { STATUS_ICONS } from '../state/status-icons.ts';
import { RULE } from '../report/session-summary.ts';
import type { StatusView, TaskRow } from './status-view.ts';

export { RULE };

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
    lines.push(
      `Batch ${b.number} of ${b.of}: ${b.completed} completed | ${b.running} running | ${b.pending} pending${b.failed ? ` | ${b.failed} failed` : ''}`,
    );
  }
  lines.push(
    `Tasks: ${countsText(view)}`,
    `Workers: ${view.busyWorkers} active | ${Math.max(0, view.maxWorkers - view.busyWorkers)} available (limit ${view.maxWorkers})`,
    `Time elapsed: ${formatClock(view.elapsedMs)} | estimated time left: ${view.etaMs === null ? 'unknown yet' : formatClock(view.etaMs)}`,
  );
  if (view.cost.usd !== null)
    lines.push(
      `Cost so far: ${formatUsd(view.cost.usd)} (${formatTokens(view.cost.inputTokens)} input / ${formatTokens(view.cost.outputTokens)} output tokens)`,
    );
  lines.push(RULE);
  return lines.join('\n') + '\n';
}

/** `5 in all: 1 completed | 2 running | ...` with only the statuses that occur. */
export function countsText(view: Pick<StatusView, 'total' | 'counts' | 'replacing'>): string {
  const parts = Object.entries(view.counts)
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${n} ${status}`);
  if (view.replacing > 0) parts.push(`${view.replacing} being replaced`);
  return `${view.total} in all${parts.length ? `: ${parts.join(' | ')}` : ''}`;
}
