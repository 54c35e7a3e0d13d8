// poll-session's outputs: compact slices (default off a terminal), event lines with status tables (--verbose), a live board (terminal), JSON lines (--json).
import { createLogUpdate } from 'log-update';
import { renderBoard } from './board.ts';
import { formatEventLine, type LineContext } from './event-lines.ts';
import { formatDuration } from './format.ts';
import type { PassInfo, PollOutcome, ProgressSink } from './poll-loop.ts';
import { buildReportData } from './report-data.ts';
import type { ProgressEvent } from './run-tracker.ts';
import { summarize } from './session-summary.ts';
import { renderExecutionSummary, renderStatusBlock } from './status-block.ts';
import { buildStatusView } from './status-view.ts';

/** The seeds' refresh rule: a full status table after this many event lines ... */
export const TABLE_EVERY_EVENTS = 10;
/** ... or after this long (ms), whichever comes first. */
export const TABLE_EVERY_MS = 30_000;

/** Options shared by the sinks. */
export interface SinkOptions {
  /** Writes text as is (no newline added). */
  write: (text: string) => void;
  /** The `--timeout` in seconds, for the timeout message. */
  timeoutS?: number;
}

function lineContext(pass: PassInfo): LineContext {
  return { sessionStart: pass.state.created_at, waitingOn: (task) => pass.state.tasks[task]?.waiting_on };
}

/** The last line: how the poll ended, in words. */
export function finalLine(pass: PassInfo | null, outcome: PollOutcome, timeoutS?: number): string {
  if (!pass) return `Timed out after ${timeoutS} s: no session appeared.`;
  const summary = summarize(pass.state, { replacing: pass.replacing });
  if (outcome === 'timeout') return `Timed out after ${timeoutS} s with tasks still active (${summary.active} of ${summary.total}).`;
  if (outcome === 'active') return `${summary.active} of ${summary.total} tasks still active.`;
  const others = (['failed', 'skipped', 'cancelled'] as const).filter((s) => summary.counts[s] > 0).map((s) => `, ${summary.counts[s]} ${s}`).join('');
  return `All ${summary.total} tasks ended: ${summary.counts.completed} completed${others}. Makespan ${formatDuration(summary.makespanMs)}.`;
}

/**
 * Off a terminal (the way Claude reads it): the status table first, then one line per event, and
 * the full table again after {@link TABLE_EVERY_EVENTS} lines or {@link TABLE_EVERY_MS}; at the end
 * the table, the execution summary and a last line.
 */
export function createLineSink(options: SinkOptions & { tableEvery?: number; tableMs?: number }): ProgressSink {
  const every = options.tableEvery ?? TABLE_EVERY_EVENTS;
  const everyMs = options.tableMs ?? TABLE_EVERY_MS;
  let lines = 0;
  let lastTable = 0;
  /** Nothing was printed since the last table. */
  let fresh = false;
  const table = (pass: PassInfo) => {
    options.write(renderStatusBlock(buildStatusView(pass.state, pass)));
    lines = 0;
    lastTable = pass.now;
    fresh = true;
  };
  return {
    tickMs: everyMs,
    start(pass) {
      table(pass);
    },
    event(event, pass) {
      const line = formatEventLine(event, lineContext(pass));
      if (line === null) return;
      options.write(`${line}\n`);
      lines += 1;
      fresh = false;
    },
    tick(pass) {
      if (lines >= every || pass.now - lastTable >= everyMs) {
        options.write('\n');
        table(pass);
      }
    },
    finish(pass, outcome) {
      if (pass) {
        if (!fresh) {
          options.write('\n');
          table(pass);
        }
        if (outcome === 'completed' || outcome === 'failed') options.write(`\n${renderExecutionSummary(buildReportData(pass.state, pass))}`);
      }
      options.write(`${finalLine(pass, outcome, options.timeoutS)}\n`);
    },
  };
}

/** Options of {@link createSliceSink}. */
export interface SliceSinkOptions extends SinkOptions {
  /** `--expect`: tasks the session must have before it can be finished. */
  expect?: number;
  /** The command that writes the report, shown once every task ended (e.g. `"<run>" aggregate`). */
  nextCommand: string;
}

/**
 * The default off a terminal (how a model reads it, in bounded slices): one line per new event
 * (no `registered` or `waiting` lines: the summary line counts those), no status tables, and ONE
 * summary line at the end (see {@link sliceSummaryLine}). With poll-session's cursor, repeated calls
 * print only what happened since the previous one, so a long run costs a few hundred bytes a call.
 */
export function createSliceSink(options: SliceSinkOptions): ProgressSink {
  const print = (event: ProgressEvent, pass: PassInfo) => {
    if (event.type === 'registered') return;
    const line = formatEventLine(event, lineContext(pass));
    if (line !== null) options.write(`${line}\n`);
  };
  return {
    tickMs: 60_000,
    start(pass, history) {
      for (const event of history) print(event, pass);
    },
    event: print,
    tick() {},
    finish(pass, outcome, exitCode) {
      options.write(`${sliceSummaryLine(pass, outcome, exitCode, options)}\n`);
    },
  };
}

/**
 * The one line that ends a slice, e.g.
 * `[poll] 7/20 completed, 3 running, 10 waiting, 0 failed; 4m12s elapsed. Still running: run the same command again (exit 3).`
 * or, once every task ended,
 * `[poll] All 20 tasks ended: 19 completed, 1 failed; 31m02s elapsed. Next: "<run>" aggregate (exit 1).`
 * Elapsed time runs from the session's creation to now, or to the last task's end once all ended.
 */
export function sliceSummaryLine(pass: PassInfo | null, outcome: PollOutcome, exitCode: number, options: { timeoutS?: number; expect?: number; nextCommand: string }): string {
  if (!pass) return `[poll] No session appeared within ${options.timeoutS} s: run the same command again (exit ${exitCode}).`;
  const summary = summarize(pass.state, { replacing: pass.replacing });
  const { counts } = summary;
  const ended = outcome === 'completed' || outcome === 'failed';
  const endMs = ended && summary.lastEnd !== null ? Math.max(Date.parse(summary.lastEnd), Date.parse(pass.state.created_at)) : pass.now;
  const elapsed = `${formatElapsed(endMs - Date.parse(pass.state.created_at))} elapsed`;
  const others = (['skipped', 'cancelled'] as const).filter((s) => counts[s] > 0).map((s) => `, ${counts[s]} ${s}`).join('');
  if (ended) {
    const failed = counts.failed > 0 ? `, ${counts.failed} failed` : '';
    return `[poll] All ${summary.total} tasks ended: ${counts.completed} completed${failed}${others}; ${elapsed}. Next: ${options.nextCommand} (exit ${exitCode}).`;
  }
  const running = counts.running + counts.retrying + summary.replacing;
  const waiting = counts.pending + counts.waiting;
  const expecting = options.expect !== undefined && summary.total < options.expect ? ` (${summary.total} of ${options.expect} expected tasks registered)` : '';
  return (
    `[poll] ${counts.completed}/${summary.total} completed, ${running} running, ${waiting} waiting, ${counts.failed - summary.replacing} failed${others}${expecting}; ` +
    `${elapsed}. Still running: run the same command again (exit ${exitCode}).`
  );
}

/** Elapsed time as `42s`, `4m12s` or `1h05m`. */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  if (total < 60) return `${total}s`;
  if (total < 3600) return `${Math.floor(total / 60)}m${String(total % 60).padStart(2, '0')}s`;
  return `${Math.floor(total / 3600)}h${String(Math.floor((total % 3600) / 60)).padStart(2, '0')}m`;
}

/** A writable terminal stream as log-update uses it. */
export interface TerminalStream {
  write(text: string): unknown;
  columns?: number;
  rows?: number;
  isTTY?: boolean;
}

/**
 * On a terminal: the board ({@link renderBoard}) redrawn in place by log-update after every event
 * and every second; at the end it stays on screen, followed by the execution summary.
 */
export function createBoardSink(options: { stream: TerminalStream; color: boolean; timeoutS?: number; showCursor?: boolean }): ProgressSink {
  const { stream } = options;
  const log = createLogUpdate(stream as NodeJS.WriteStream, { showCursor: options.showCursor ?? false });
  let recent: string[] = [];
  const remember = (event: ProgressEvent, pass: PassInfo) => {
    const line = formatEventLine(event, lineContext(pass));
    if (line !== null) recent = [...recent, line].slice(-20);
  };
  const draw = (pass: PassInfo) => {
    const board = renderBoard(buildStatusView(pass.state, pass), {
      width: Math.max(20, (stream.columns ?? 80) - 1),
      height: stream.rows ?? 24,
      color: options.color,
      recent,
    });
    log(board);
  };
  return {
    tickMs: 1000,
    start(pass, history) {
      for (const event of history) remember(event, pass);
      draw(pass);
    },
    event(event, pass) {
      remember(event, pass);
      draw(pass);
    },
    tick: draw,
    finish(pass, outcome) {
      if (pass) draw(pass);
      log.done();
      if (pass && (outcome === 'completed' || outcome === 'failed')) stream.write(`\n${renderExecutionSummary(buildReportData(pass.state, pass))}`);
      stream.write(`${finalLine(pass, outcome, options.timeoutS)}\n`);
    },
  };
}

/**
 * `--json`: every event of the session as one JSON object per line (those already in the log
 * first), derived `batch_completed` events among them, then one `summary` object. Field names are
 * documented in references/events.md.
 */
export function createJsonSink(options: SinkOptions & { once?: boolean }): ProgressSink {
  const line = (value: unknown) => options.write(`${JSON.stringify(value)}\n`);
  return {
    tickMs: 60_000,
    start(_pass, history) {
      if (!options.once) for (const event of history) line(event);
    },
    event(event) {
      line(event);
    },
    tick() {},
    finish(pass, outcome, exitCode) {
      if (!pass) {
        line({ ts: new Date().toISOString(), session_id: null, type: 'summary', outcome, exit_code: exitCode });
        return;
      }
      const data = buildReportData(pass.state, pass);
      line({ ts: data.generated_at, type: 'summary', outcome, exit_code: exitCode, ...data });
    },
  };
}
