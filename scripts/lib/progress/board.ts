// The live progress board for a terminal: a header with counts, workers, elapsed time and time left, a row per task, the latest events.
import picocolors from 'picocolors';
import { countOf, displayWidth, formatClock, formatDuration, formatUsd, padToWidth, truncateToWidth } from '../core/format.ts';
import { STATUS_ICONS } from '../state/status-icons.ts';
import { rowIcon } from './status-block.ts';
import type { StatusView, TaskRow } from './status-view.ts';

/** Options of {@link renderBoard}. */
export interface BoardOptions {
  /** Terminal columns; every line is cut to fit. */
  width: number;
  /** Terminal rows; rows of tasks that do not fit are summarised in one line (active tasks are kept first). */
  height: number;
  /** Use ANSI colours (default false: plain text, as in snapshots). */
  color?: boolean;
  /** The latest event lines, oldest first; the last few are shown under the table. */
  recent?: readonly string[];
  /** How many recent lines to show at most (default 5). */
  recentLines?: number;
}

/** Rows reserved for the header (2), the column titles (1), the rule above the recent events (1) and the cursor line (1). */
const FIXED_ROWS = 5;

/**
 * Renders the board as plain lines (log-update redraws it in place).
 *
 * @example
 * renderBoard(buildStatusView(state, { now: Date.now() }), { width: 100, height: 30, recent })
 * @returns the board, lines joined with `\n`, no trailing newline; no line wider than `width`.
 */
export function renderBoard(view: StatusView, options: BoardOptions): string {
  const c = picocolors.createColors(options.color ?? false);
  const width = Math.max(20, options.width);
  const recent = (options.recent ?? []).slice(-(options.recentLines ?? 5));
  const fit = (line: string) => truncateToWidth(line, width);

  const eta = view.etaMs === null ? '' : ` · ~${formatClock(view.etaMs)} left`;
  const cost =
    view.budget != null
      ? ` · ${formatUsd(view.budget.spentUsd)} of ${formatUsd(view.budget.usd)} budget`
      : view.cost.usd === null
        ? ''
        : ` · ${formatUsd(view.cost.usd)}`;
  const workers = view.workersLabel ?? `workers ${view.busyWorkers}/${view.maxWorkers}`;
  const batch = view.currentBatch ? ` · batch ${view.currentBatch.number}/${view.currentBatch.of}` : '';
  const header1 = fit(`Session ${view.sessionId}${batch} · elapsed ${formatClock(view.elapsedMs)}${eta} · ${workers}${cost}`);
  const tally = Object.entries(view.counts)
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${STATUS_ICONS[status as keyof typeof STATUS_ICONS]} ${n} ${status}`);
  if (view.replacing > 0) tally.push(`⚠️ ${view.replacing} being replaced`);
  const header2 = fit(`${view.total} tasks: ${tally.join('  ') || 'none yet'}`);

  const withCost = view.rows.some((row) => row.costUsd !== null);
  const agentW = Math.max(5, ...view.rows.map((row) => row.agent.length));
  const elapsedW = Math.max(7, ...view.rows.map((row) => formatDuration(row.elapsedMs).length));
  const triesW = Math.max(5, ...view.rows.map((row) => `${row.attempts}/${row.maxAttempts}`.length));
  const costW = withCost ? Math.max(4, ...view.rows.map((row) => rowCost(row).length)) : 0;
  const fixed = 3 + agentW + 2 + 2 + elapsedW + 2 + triesW + (withCost ? 2 + costW : 0);
  const taskW = Math.max(4, Math.min(Math.max(4, ...view.rows.map((row) => displayWidth(row.name))), width - fixed - 2));
  const noteW = width - fixed - taskW - 2;

  const cells = (icon: string, agent: string, task: string, elapsed: string, tries: string, costText: string, note: string) =>
    [
      padToWidth(icon, 3),
      padToWidth(agent, agentW),
      '  ',
      padToWidth(truncateToWidth(task, taskW), taskW),
      '  ',
      padToWidth(elapsed, elapsedW, 'right'),
      '  ',
      padToWidth(tries, triesW),
      withCost ? `  ${padToWidth(costText, costW, 'right')}` : '',
      noteW >= 8 && note ? `  ${truncateToWidth(note, noteW)}` : '',
    ]
      .join('')
      .trimEnd();

  const titles = c.dim(fit(cells('', 'AGENT', 'TASK', 'ELAPSED', 'TRIES', 'COST', noteW >= 8 ? 'NOTE' : '')));
  const budget = Math.max(1, options.height - FIXED_ROWS - recent.length);
  const { shown, hidden } = pickRows(view.rows, budget);
  const lines = [c.bold(header1), header2, titles];
  for (const row of shown) {
    const line = cells(
      rowIcon(row.status),
      row.agent,
      row.name,
      formatDuration(row.elapsedMs),
      `${row.attempts}/${row.maxAttempts}`,
      rowCost(row),
      row.note.replace(/\s+/g, ' '),
    );
    lines.push(paint(c, row.status, fit(line)));
  }
  if (hidden.length > 0)
    lines.push(c.dim(fit(`… ${countOf(hidden.length, 'more task', 'more tasks')} not shown (${summariseHidden(hidden)})`)));
  if (recent.length > 0) {
    lines.push(c.dim('─'.repeat(Math.min(width, 60))));
    for (const line of recent) lines.push(fit(line));
  }
  return lines.join('\n');
}

/** Chooses which rows fit: active ones first, then failures, then the rest, shown in topological order. */
function pickRows(rows: readonly TaskRow[], budget: number): { shown: TaskRow[]; hidden: TaskRow[] } {
  if (rows.length <= budget) return { shown: [...rows], hidden: [] };
  const rank = (row: TaskRow) =>
    row.status === 'running' || row.status === 'retrying' || row.status === 'replacing'
      ? 0
      : row.status === 'waiting' || row.status === 'pending'
        ? 1
        : row.status === 'failed'
          ? 2
          : 3;
  const keep = new Set(
    rows
      .map((row, index) => ({ row, index }))
      .sort((a, b) => rank(a.row) - rank(b.row) || a.index - b.index)
      .slice(0, Math.max(0, budget - 1))
      .map(({ row }) => row),
  );
  return { shown: rows.filter((row) => keep.has(row)), hidden: rows.filter((row) => !keep.has(row)) };
}

function summariseHidden(rows: readonly TaskRow[]): string {
  const counts = new Map<string, number>();
  for (const row of rows) counts.set(row.status, (counts.get(row.status) ?? 0) + 1);
  return [...counts].map(([status, n]) => `${n} ${status}`).join(', ');
}

function paint(c: ReturnType<typeof picocolors.createColors>, status: TaskRow['status'], line: string): string {
  switch (status) {
    case 'failed':
    case 'merge_failed':
      return c.red(line);
    case 'running':
      return c.cyan(line);
    case 'retrying':
    case 'replacing':
      return c.yellow(line);
    case 'completed':
      return c.green(line);
    case 'skipped':
    case 'cancelled':
      return c.dim(line);
    default:
      return line;
  }
}

/** A row's cost: the recorded one, or `~$0.0123` for a running agent's live estimate. */
function rowCost(row: TaskRow): string {
  return `${row.costEstimated ? '~' : ''}${formatUsd(row.costUsd)}`;
}
