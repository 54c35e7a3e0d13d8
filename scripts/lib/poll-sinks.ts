// poll-session's three outputs: event lines with periodic status tables (not a terminal), a live board (terminal), JSON lines (--json).
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
