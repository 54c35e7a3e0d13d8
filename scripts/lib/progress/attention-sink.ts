// poll-session --attention: one line per event that needs the model (for Claude Code's Monitor tool, where every line is a turn), nothing else.
import { endedCounts, formatElapsed, summarize, verdictNote } from '../report/session-summary.ts';
import { oneLineBytes } from '../core/format.ts';
import type { SessionEvent } from '../state/events.ts';
import { getTask, type SessionState } from '../state/model.ts';
import type { PassInfo, ProgressSink } from './poll-loop.ts';
import { createEventLineSink } from './poll-sinks.ts';
import type { ProgressEvent } from './run-tracker.ts';

/** What starts every line, so a model tells them from anything else. */
export const ATTENTION_PREFIX = '[attention] ';

/**
 * Longest event line (bytes of UTF-8, prefix included; the final and re-arm lines, which carry
 * commands, are not cut). Each line wakes a model: short enough to read at a glance.
 */
export const ATTENTION_LINE_BYTES = 400;

/**
 * Lines of history (events before the watch, not shown by an earlier one) printed at most: each wakes the model, so a
 * first watch on a long run says how many earlier ones it left out (aggregate lists every failure) instead.
 */
export const ATTENTION_HISTORY_LINES = 10;

/** Longest reason quoted on a line (bytes of UTF-8). */
const REASON_BYTES = 200;

/**
 * A rate-limit pause shorter than this is not worth a turn (ms): new starts resume by themselves
 * before a model could act. Longer pauses (a usage limit's reset time) are.
 */
export const ATTENTION_PAUSE_MS = 60_000;

/**
 * What the `why` of a `capacity` event says when that event set the pause (scheduling/capacity.ts
 * `noteRateLimit`: "new starts paused until <time> (reset time reported)"); later capacity events
 * (a limit grown back) carry the same `pause_until` without it and are not a new pause.
 */
const PAUSE_SET = 'paused until';

/**
 * The start of the error of a `retrying` event when a claude agent stalled (agents/claude-result.ts,
 * code `stalled`: "stalled: no output for N s, the claude process tree was terminated ...").
 */
export const STALL_PREFIX = 'stalled:';

/** Options of {@link createAttentionSink}. */
export interface AttentionOptions {
  /** Writes text as is (no newline added); each call is one whole line. */
  write: (text: string) => void;
  /** The watch's limit (s), undefined for none. */
  timeoutS?: number;
  /** The command that writes the report, named on the final line. */
  nextCommand: string;
  /** The exact command that re-arms the watch, named when the limit ends it. */
  rearmCommand: string;
  /**
   * Print the final line when every task has ended (default true). The plugin's keep-watching monitor passes false:
   * the background `--until_done` wait reports the end, and a second line would wake the model twice.
   */
  endLine?: boolean;
}

/**
 * `--attention`: one line per event that needs the model ({@link attentionLine}), those already in
 * the log first (what the cursor has not seen, at most {@link ATTENTION_HISTORY_LINES}), then each as soon as it is read; then one final
 * line: every task ended with the counts and the next command, or the limit reached with the command
 * that re-arms the watch (exit 3).
 */
export function createAttentionSink(options: AttentionOptions): ProgressSink {
  const pauses = new Set<string>();
  return createEventLineSink({
    write: options.write,
    historyLines: ATTENTION_HISTORY_LINES,
    omitted: (count) =>
      `${ATTENTION_PREFIX}${count} earlier line${count === 1 ? '' : 's'} left out (the last ${ATTENTION_HISTORY_LINES} follow): ` +
      `${options.nextCommand} lists every failure.`,
    line: (event, pass) => {
      const line = attentionLine(event, pass.state, pass.replacing);
      if (line === null || event.type !== 'capacity') return line;
      // Every capacity event carries the pause in force: say each pause once.
      if (pauses.has(String(event.pause_until))) return null;
      pauses.add(String(event.pause_until));
      return line;
    },
    last: (pass, outcome, exitCode) => {
      const ended = outcome === 'completed' || outcome === 'failed';
      return ended && options.endLine === false ? null : attentionEndLine(pass, ended, exitCode, options);
    },
  });
}

/**
 * The line of an event that needs the model, or null for every other event (started, registered,
 * waiting, completed, skipped, cancelled, batches, a short pause, a retry that is not a stall, a
 * cleared prediction). Lines needing the model:
 * - `failed`: `[attention] T-03 failed (Agent-03, attempt 2): REASON. Its 3 dependants are skipped: T-05, T-06, T-07; the other tasks go on.`
 * - `merge_failed`: `[attention] T-07 merge failed (Agent-07): REASON. Its branch B is kept: aggregate shows how to land or redo it. ...`
 * - `conflict_predicted` with paths: `[attention] T-09 (Agent-09) would conflict with the integration branch in a.ts: ...`
 * - a stall (`retrying`, error starting with {@link STALL_PREFIX}): `[attention] T-04 (Agent-04) stalled on attempt 1: REASON. ...`
 * - `budget`: `[attention] Budget reached: REASON. ...`
 * - `capacity` that set a pause (`why` says so) whose `pause_until` is more than {@link ATTENTION_PAUSE_MS} after `ts`:
 *   `[attention] Rate limited: new starts paused until 10:45:00 UTC (12m00s) ...` (said once per pause by a sink)
 * @returns one line without newline, at most {@link ATTENTION_LINE_BYTES} bytes.
 */
export function attentionLine(event: ProgressEvent, state: SessionState, replacing: ReadonlySet<string> = new Set()): string | null {
  if (event.type === 'batch_completed') return null;
  const text = describe(event, state, replacing);
  return text === null ? null : oneLineBytes(`${ATTENTION_PREFIX}${text}`, ATTENTION_LINE_BYTES);
}

function describe(e: SessionEvent, state: SessionState, replacing: ReadonlySet<string>): string | null {
  const task = e.task ?? '?';
  const agent = e.agent ?? 'agent';
  const reason = oneLineBytes(e.error ?? 'no reason recorded', REASON_BYTES);
  switch (e.type) {
    case 'completed': {
      if (e.verdict !== 'unverified' && e.verdict !== 'contradicted') return null;
      const evidence = Array.isArray(e.evidence) ? oneLineBytes((e.evidence as unknown[]).map(String).join('; '), REASON_BYTES) : '';
      const what =
        e.verdict === 'contradicted'
          ? 'its receipts disprove its answer: count it as failed, and retry or fix it'
          : 'it claims success without evidence: do not present it as done; check its work or run it again';
      return `${task} completed ${e.verdict} (${agent}): ${evidence}. ${what[0]!.toUpperCase()}${what.slice(1)}.`;
    }
    case 'failed': {
      const attempt = typeof e.attempt === 'number' && e.attempt > 1 ? `, attempt ${e.attempt}` : '';
      const next = replacing.has(task) ? ' --replace_dead is restarting it.' : ` ${dependantsText(state, task)}`;
      return `${task} failed (${agent}${attempt}): ${reason}.${next}`;
    }
    case 'merge_failed': {
      const branch = getTask(state.tasks, task)?.merge?.branch;
      const kept = branch ? ` Its branch ${branch} is kept: aggregate shows how to land or redo it.` : '';
      return `${task} merge failed (${agent}): ${reason}.${kept} ${dependantsText(state, task)}`;
    }
    case 'conflict_predicted': {
      const paths = Array.isArray(e.paths) ? (e.paths as unknown[]).map(String) : [];
      if (paths.length === 0) return null;
      return (
        `${task} (${agent}) would conflict with the integration branch in ${oneLineBytes(paths.join(', '), 120)}: ` +
        'it keeps running; its merge may fail (its branch is then kept). Cancel it only if its work is no longer wanted.'
      );
    }
    case 'retrying': {
      const error = e.error ?? '';
      if (!error.startsWith(STALL_PREFIX)) return null;
      const what = oneLineBytes(error.slice(STALL_PREFIX.length), REASON_BYTES);
      return `${task} (${agent}) stalled on attempt ${String(e.attempt ?? '?')}: ${what}. The agent retries by itself; act only if it stalls again.`;
    }
    case 'budget': {
      const stop = e.on_budget === 'stop';
      const finish = stop ? 'running ones are cancelled (--on_budget stop)' : 'running ones finish (--on_budget finish)';
      return `Budget reached: ${reason}. The remaining tasks are skipped; ${finish}.`;
    }
    case 'capacity': {
      const until = typeof e.pause_until === 'string' ? Date.parse(e.pause_until) : NaN;
      const pauseMs = until - Date.parse(e.ts);
      if (!(pauseMs > ATTENTION_PAUSE_MS) || (typeof e.why === 'string' && !e.why.includes(PAUSE_SET))) return null;
      const why = typeof e.why === 'string' ? ` (${oneLineBytes(e.why, 150)})` : '';
      return (
        `Rate limited: new starts paused until ${new Date(until).toISOString().slice(11, 19)} UTC (${formatElapsed(pauseMs)}); ` +
        `worker limit ${String(e.new_limit)} of ${String(e.max_workers)}${why}. Nothing to do: starts resume by themselves.`
      );
    }
    default:
      return null;
  }
}

/**
 * What becomes of the tasks that depend on a failed one: those that skip on a dependency's failure
 * (`on_dep_failure: skip`), directly or through another such task, and did not complete.
 */
function dependantsText(state: SessionState, failed: string): string {
  const skipped = new Set<string>();
  for (let frontier = [failed]; frontier.length > 0;) {
    const next: string[] = [];
    for (const [name, task] of Object.entries(state.tasks)) {
      if (skipped.has(name) || name === failed || task.on_dep_failure !== 'skip' || task.status === 'completed') continue;
      if (task.depends_on.some((dep) => frontier.includes(dep))) {
        skipped.add(name);
        next.push(name);
      }
    }
    frontier = next;
  }
  if (skipped.size === 0) return 'No task depends on it; the other tasks go on.';
  const names = oneLineBytes([...skipped].join(', '), 100);
  return `Its ${skipped.size === 1 ? 'dependant is' : `${skipped.size} dependants are`} skipped (${names}); the other tasks go on.`;
}

/**
 * The line that ends a watch:
 * `[attention] All 40 tasks ended: 39 completed, 1 failed (exit 1). Next: "<run>" aggregate`, or at
 * the limit `[attention] Watch ended after 1740 s with 12 of 40 tasks still active (exit 3). Re-arm it: <command>`.
 */
export function attentionEndLine(
  pass: PassInfo | null,
  ended: boolean,
  exitCode: number,
  options: Pick<AttentionOptions, 'timeoutS' | 'nextCommand' | 'rearmCommand'>,
): string {
  const limit = options.timeoutS === undefined ? 'Watch ended' : `Watch ended after ${options.timeoutS} s`;
  if (pass === null)
    return `${ATTENTION_PREFIX}${limit} before any session appeared (exit ${exitCode}). Re-arm it: ${options.rearmCommand}`;
  const { counts, total, active, verdicts } = summarize(pass.state, { replacing: pass.replacing });
  if (ended) {
    return (
      `${ATTENTION_PREFIX}All ${total} tasks ended: ${counts.completed} completed${verdictNote(verdicts)}` +
      `${endedCounts(counts, ['failed', 'merge_failed', 'skipped', 'cancelled'])} (exit ${exitCode}). Next: ${options.nextCommand}`
    );
  }
  return `${ATTENTION_PREFIX}${limit} with ${active} of ${total} tasks still active (exit ${exitCode}). Re-arm it: ${options.rearmCommand}`;
}
