// poll-session's outputs: compact slices (default off a terminal), event lines with status tables (--verbose), a live board (terminal), JSON lines (--json).
import { createLogUpdate } from 'log-update';
import { renderBoard } from './board.ts';
import { formatEventLine, type LineContext } from './event-lines.ts';
import type { PassInfo, PollOutcome, ProgressSink } from './poll-loop.ts';
import { buildReportData } from '../report/report-data.ts';
import type { ProgressEvent } from './run-tracker.ts';
import { HistoryTail } from './history.ts';
import { renderSummary, summarize } from '../report/session-summary.ts';
import { renderStatusBlock } from './status-block.ts';
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

/** Failed tasks whose replacement is on its way, counted as {@link summarize} counts them. */
function replacingCount(pass: PassInfo | null): number {
  return pass ? summarize(pass.state, { replacing: pass.replacing }).replacing : 0;
}

/** The last line of `--verbose` and of the board: how the poll ended, in words (see {@link renderSummary}). */
function outcomeLine(pass: PassInfo | null, outcome: PollOutcome, timeoutS?: number): string {
  return renderSummary(pass && buildReportData(pass.state, pass), {
    variant: 'outcome',
    outcome,
    timeoutS,
    replacing: replacingCount(pass),
  });
}

/** The execution summary block shown when a followed session ended. */
function executionSummary(pass: PassInfo): string {
  return renderSummary(buildReportData(pass.state, pass), { variant: 'block' });
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
    history() {},
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
        if (outcome === 'completed' || outcome === 'failed') options.write(`\n${executionSummary(pass)}`);
      }
      options.write(`${outcomeLine(pass, outcome, options.timeoutS)}\n`);
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
  return createEventLineSink({
    write: options.write,
    historyLines: SLICE_HISTORY_LINES,
    omitted: (count) =>
      `[poll] ${count} earlier line${count === 1 ? '' : 's'} left out (the last ${SLICE_HISTORY_LINES} follow); ` +
      'every event is in events.jsonl beside the state, and poll-session --json prints them all.',
    line: (event, pass) => (event.type === 'registered' ? null : formatEventLine(event, lineContext(pass))),
    last: (pass, outcome, exitCode) => sliceSummaryLine(pass, outcome, exitCode, options),
  });
}

/**
 * History lines a slice prints at most: a first call on a long run (no cursor yet, or --from_start) shows the
 * last ones and says how many it left out, instead of megabytes a model would have to read.
 */
export const SLICE_HISTORY_LINES = 40;

/** Options of {@link createEventLineSink}. */
export interface EventLineSinkOptions {
  /** Writes text as is; each call is one whole line. */
  write: (text: string) => void;
  /** The history's lines printed at most (the last ones); unlimited when absent. */
  historyLines?: number;
  /** The line printed before a cut history, given how many lines were left out. */
  omitted?: (count: number) => string;
  /** The line of an event (without newline), or null to print nothing for it. */
  line: (event: ProgressEvent, pass: PassInfo) => string | null;
  /** The line that ends the output, or null for none. */
  last: (pass: PassInfo | null, outcome: PollOutcome, exitCode: number) => string | null;
}

/**
 * A sink that prints one line per event `line` keeps (the history first, at most `historyLines` of it, then each new
 * event as it comes), nothing on ticks, and the line `last` gives at the end: the slices and the `--attention` watch.
 */
export function createEventLineSink(options: EventLineSinkOptions): ProgressSink {
  const print = (event: ProgressEvent, pass: PassInfo) => {
    const line = options.line(event, pass);
    if (line !== null) options.write(`${line}\n`);
  };
  const tail = new HistoryTail(options.historyLines ?? Infinity);
  return {
    tickMs: 60_000,
    history(events, pass) {
      for (const event of events) {
        const line = options.line(event, pass);
        if (line !== null) tail.push(line);
      }
    },
    start() {
      const lines = tail.lines();
      if (tail.omitted > 0 && options.omitted) options.write(`${options.omitted(tail.omitted)}\n`);
      for (const line of lines) options.write(`${line}\n`);
    },
    event: print,
    tick() {},
    finish(pass, outcome, exitCode) {
      const line = options.last(pass, outcome, exitCode);
      if (line !== null) options.write(`${line}\n`);
    },
  };
}

/**
 * The one line that ends a slice (the `poll` variant of {@link renderSummary}), e.g.
 * `[poll] 7/20 completed, 3 running, 10 waiting, 0 failed; 4m12s elapsed. Still running: run the same command again (exit 3).`
 */
export function sliceSummaryLine(
  pass: PassInfo | null,
  outcome: PollOutcome,
  exitCode: number,
  options: { timeoutS?: number; expect?: number; nextCommand: string },
): string {
  return renderSummary(pass && buildReportData(pass.state, pass), {
    variant: 'poll',
    outcome,
    exitCode,
    now: pass?.now ?? Date.now(),
    expect: options.expect,
    nextCommand: options.nextCommand,
    timeoutS: options.timeoutS,
    replacing: replacingCount(pass),
  });
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
export function createBoardSink(options: {
  stream: TerminalStream;
  color: boolean;
  timeoutS?: number;
  showCursor?: boolean;
}): ProgressSink {
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
    history(events, pass) {
      for (const event of events) remember(event, pass);
    },
    start: draw,
    event(event, pass) {
      remember(event, pass);
      draw(pass);
    },
    tick: draw,
    finish(pass, outcome) {
      if (pass) draw(pass);
      log.done();
      if (pass && (outcome === 'completed' || outcome === 'failed')) stream.write(`\n${executionSummary(pass)}`);
      stream.write(`${outcomeLine(pass, outcome, options.timeoutS)}\n`);
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
    history(events) {
      if (!options.once) for (const event of events) line(event);
    },
    start() {},
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
