/**
 * poll-session: wait for the session in bounded slices: what changed since the previous call, then one summary line (exit 3 while tasks are active).
 * Two more modes for Claude Code: --until_done (a background command: silent, then one digest of at most 2 kB) and
 * --attention (the Monitor tool: one line per event that needs the model, then one final line).
 *
 * Usage:   "$S/scripts/run" poll-session [--timeout S] [--expect N] [--verbose] [--json] [--once] [--from_start] [--until_done]
 *          [--attention [--keep_watching]] [--replace_dead] [--session_dir DIR]
 * Example: "$S/scripts/run" poll-session --timeout 90
 *          "$S/scripts/run" poll-session --until_done        (Bash with run_in_background: true)
 *          "$S/scripts/run" poll-session --attention         (the Monitor tool)
 *          (S is this skill's folder; `--help` prints the absolute path of this install's launcher.)
 * Reads:   <cwd>/.agent/sessions/latest.yaml without the lock, and events.jsonl beside it (by byte offset); writes the
 *          state (under the lock) only to mark a task whose agent process is gone, or whose heartbeat is stale, as failed,
 *          and with --replace_dead to record the replacement agents it starts. Off a terminal (without --verbose,
 *          --json or --until_done) it keeps its read position in poll-cursor.<session_id>.json beside the state;
 *          --attention keeps its own in attention-cursor.<session_id>.json and its lease in attention-watch.json (one watch per
 *          folder). --until_done writes final_output.md beside the session folder when every task has ended.
 * Exit:    0 all completed, 1 any failed/merge_failed/skipped/cancelled or contradicted, 2 usage error or no session, 3 tasks still
 *          active when the slice (--timeout; 1740 s by default for --until_done and --attention) ended, or with --once.
 */
import { runMain, type CommandSpec } from './lib/cli/cli.ts';
import { flag, parseOptionsOrShowHelp, type OptionsOf } from './lib/cli/options.ts';
import { launcherCommand } from './lib/launcher/dist.ts';
import { EXIT, usageError } from './lib/core/errors.ts';
import { followSession, type FollowOptions, type ProgressSink } from './lib/progress/poll-loop.ts';
import { runAttention, runUntilDone } from './lib/progress/wait-modes.ts';
import { loadCursor, saveCursor, type CursorKind } from './lib/progress/poll-cursor.ts';
import { createBoardSink, createJsonSink, createLineSink, createSliceSink, type TerminalStream } from './lib/progress/poll-sinks.ts';
import { DIGEST_MAX_BYTES } from './lib/progress/digest.ts';
import {
  attentionTimeoutS,
  checkModeFlags,
  DEFAULT_ATTENTION_S,
  DEFAULT_UNTIL_DONE_S,
  rearmCommand,
  untilDoneTimeoutS,
} from './lib/progress/poll-modes.ts';
import { resolveSessionPaths, SESSION_DIR_FLAG } from './lib/state/session-paths.ts';

export { DEFAULT_ATTENTION_S, DEFAULT_UNTIL_DONE_S };

/** The slice length off a terminal when --timeout is not given (s): well under the 120 s default limit of Claude Code's Bash tool. */
export const DEFAULT_SLICE_S = 90;

/**
 * How long a call waits for a session to appear before exit 2 (s), when --wait_for_session is not given and the
 * slice is longer: far more than an agent takes to register (spawn to running: 0.19 s prebuilt, 0.63 s through tsx,
 * median; bench/RESULTS.md).
 */
export const DEFAULT_SESSION_WAIT_S = 10;

/** The command line: flags, `--help` text and examples. */
export const spec = {
  name: 'poll-session',
  summary:
    "Waits for the current session's tasks in bounded slices. Off a terminal (as a model reads it) each call waits at most " +
    `--timeout seconds (default ${DEFAULT_SLICE_S}), prints one line per event since the previous call (started, completed, failed with the ` +
    'reason, retrying, replaced, batch completed) and ends with ONE summary line; it exits 3 while tasks are still active: run the ' +
    'same command again. On a terminal it shows a live board until every task ended. --verbose prints the full status tables ' +
    'and every event instead. A task still "running" whose agent process is gone is marked failed. Use it instead of guessing how long agents take. ' +
    `For Claude Code: --until_done (run it as a background Bash command) prints nothing while it waits, then ONE digest of at most ${DIGEST_MAX_BYTES} bytes ` +
    `when every task ended (exit 3 at its limit, default ${DEFAULT_UNTIL_DONE_S} s: start it again); --attention (for the Monitor tool) prints one ` +
    '"[attention]" line per event that needs you (a failure, a merge failure, a predicted conflict, a stall, the budget, a rate-limit pause over a minute) ' +
    `and one final line (exit 3 after ${DEFAULT_ATTENTION_S} s: re-arm the watch with the command it prints).`,
  usage:
    '[--timeout S] [--expect N] [--verbose] [--json] [--once] [--from_start] [--until_done | --attention [--keep_watching]] [--replace_dead] [--interval_ms N] [--session_dir DIR]',
  flags: {
    timeout: flag.duration({
      placeholder: 'S',
      description: `Return after S seconds with exit 3 if tasks are still active. Default ${DEFAULT_SLICE_S} off a terminal (at most 3/4 of $BASH_DEFAULT_TIMEOUT_MS when set), none on one, ${DEFAULT_UNTIL_DONE_S} with --until_done or --attention; 0 = no limit.`,
      unit: 's',
      min: 0,
    }),
    interval_ms: flag.integer({
      placeholder: 'N',
      description: 'Longest wait between two reads of the state (default 500); changes wake it sooner.',
      min: 10,
      max: 60_000,
      default: 500,
    }),
    // No default: a slice judges "finished" differently when --expect was given.
    expect: flag.integer({
      placeholder: 'N',
      description: 'Wait until at least N tasks are registered before judging the session finished.',
      min: 1,
    }),
    // No default here: it depends on --once.
    wait_for_session: flag.duration({
      placeholder: 'S',
      description:
        "Seconds to wait for a session to appear, then exit 2 (default 10, or the slice's --timeout when shorter; 0 with --once).",
      unit: 's',
      min: 0,
    }),
    verbose: flag.boolean({
      description:
        'Off a terminal: the status table, every event line and the table again every 10 events or 30 s, the execution summary at the end; no cursor.',
    }),
    from_start: flag.boolean({ description: 'Print the whole session again, not only what changed since the previous call.' }),
    json: flag.boolean({
      description: 'Print JSON lines: every event, then a summary object (fields in references/events.md); no cursor.',
    }),
    once: flag.boolean({ description: 'Look once and exit: 0/1 if every task ended, 3 if some are still active.' }),
    until_done: flag.boolean({
      description: `Print nothing while waiting, then one digest (at most ${DIGEST_MAX_BYTES} bytes: outcome, failures, conflicts, budget, next command) when every task ended, after writing the report (.agent/final_output.md, as aggregate does); exit 3 at --timeout (default ${DEFAULT_UNTIL_DONE_S}). For a background Bash command.`,
    }),
    attention: flag.boolean({
      description: `Print only "[attention]" lines for events that need you, then one final line; exit 3 at --timeout (default ${DEFAULT_ATTENTION_S}): re-arm. For the Monitor tool; own cursor. One watch per session folder: another live one makes it say so and exit 0.`,
    }),
    keep_watching: flag.boolean({
      description:
        "With --attention: the plugin's monitor. Never exits by itself; follows each run of the project in turn, quietly while there is none, and prints no final line (the background --until_done reports ends).",
    }),
    replace_dead: flag.boolean({
      description: 'Restart the agent of a task whose process died (same agent id), within its attempts budget.',
    }),
    plain: flag.boolean({ description: 'On a terminal: print as --verbose does instead of the live board.' }),
    session_dir: SESSION_DIR_FLAG,
  },
  examples: [
    launcherCommand('poll-session', `--timeout ${DEFAULT_SLICE_S}`),
    launcherCommand('poll-session', '--timeout 90 --expect 5 --replace_dead'),
    launcherCommand('poll-session', '--once'),
    launcherCommand('poll-session', '--until_done'),
    launcherCommand('poll-session', '--attention'),
    launcherCommand('poll-session', '--verbose --timeout 60'),
    launcherCommand('poll-session', '--json --timeout 60 > events.jsonl'),
  ],
  notes: [
    'A slice off a terminal prints only what changed since the previous call for this session (a cursor in',
    '<session_dir>/poll-cursor.<session_id>.json); --from_start prints everything again. A first call on a long run prints',
    'the last 40 lines and one saying how many it left out (--json prints them all). It ends with one line, e.g.',
    `"[poll] 7/20 completed, 3 running, 10 waiting, 0 failed; 4m12s elapsed. Still running: run the same command again (exit 3)." or`,
    `"[poll] All 20 tasks ended: 19 completed, 1 failed; 31m02s elapsed. Next: ${launcherCommand('aggregate')} (exit 1)."`,
    `--until_done (Bash, run_in_background: true; its default limit is 1,800,000 ms, hence ${DEFAULT_UNTIL_DONE_S} s) prints, at the end only:`,
    '"[until_done] All 40 tasks ended: 38 completed, 1 failed, 1 skipped; 4m12s elapsed; exit 1.", the failures with short reasons',
    '(skips caused by a failed dependency only counted), merge conflicts with paths and kept branches, the budget, a rehearsal',
    'note for mock agents, predicted conflicts, and "Next: <aggregate command>" or "Still running: run the same command again (exit 3)."',
    `--attention (Monitor tool; a watch lasts at most 30 min, hence ${DEFAULT_ATTENTION_S} s) prints e.g. "[attention] T-03 failed (Agent-03): <reason>.`,
    'Its 2 dependants are skipped (T-05, T-06); the other tasks go on." and ends with "[attention] All 40 tasks ended: 39 completed,',
    '1 failed (exit 1). Next: <aggregate command>" or "[attention] Watch ended after 1740 s ... Re-arm it: <command>" (exit 3).',
    'A re-armed watch does not repeat lines (its cursor: <session_dir>/attention-cursor.<session_id>.json); --from_start repeats them.',
    'One --attention watch reports a session folder at a time (<session_dir>/attention-watch.json: pid, start time, host); another',
    'one started meanwhile prints "[attention] Another watch (pid N) already reports ..." and exits 0. --attention --keep_watching is',
    "the plugin's monitor: no limit, quiet while there is no session, each later run in turn, no final line.",
    '--until_done writes the report (final_output.md beside the session folder, .agent/final_output.md by default) before its digest.',
    'Files: reads .agent/sessions/latest.yaml and events.jsonl; writes latest.yaml (under its lock) only to mark dead agents failed or record replacements.',
    'Exit codes: 0 all completed, 1 any failed, merge_failed, skipped or cancelled, or completed contradicted (its receipts disprove its answer), 2 usage error or no session, 3 still active',
    '(the slice, or the limit of --until_done/--attention, is over; or --once).',
  ],
} satisfies CommandSpec;

/** Where poll-session writes, and how it decides on the board (injectable for tests). */
export interface PollIo {
  stdout: TerminalStream;
  env: Record<string, string | undefined>;
  /** The clock, ms since the epoch. */
  clock?: () => number;
}

/** Follows the session; returns the exit code. */
export async function main(
  argv: string[] = process.argv.slice(2),
  io: PollIo = { stdout: process.stdout, env: process.env },
): Promise<number> {
  const write = (text: string) => void io.stdout.write(text);
  const parsed = parseOptionsOrShowHelp(argv, spec, write);
  if (!parsed) return EXIT.ok;
  const { options } = parsed;
  const { once, json, session_dir: sessionDir, interval_ms: intervalMs } = options;
  const verbose = options.verbose || options.plain;
  checkModeFlags(options);
  if (json && verbose) throw usageError('Give either --json or --verbose/--plain, not both: --json prints every event as data already.');
  if (json && options.from_start) throw usageError('--from_start only applies to the default output: --json always prints every event.');
  const paths = resolveSessionPaths({ sessionDir });
  const tty = Boolean(io.stdout.isTTY);
  const timeoutS = options.until_done
    ? untilDoneTimeoutS(options.timeout)
    : options.attention
      ? attentionTimeoutS(options.timeout)
      : sliceTimeoutS(options.timeout, tty, io.env);
  // A slice that never sees a session says so (exit 2: wrong folder, or no agent registered) instead of
  // "run the same command again" forever: by default the session wait never outlasts the slice.
  const waitForSessionS = options.wait_for_session ?? (once ? 0 : Math.min(DEFAULT_SESSION_WAIT_S, timeoutS ?? DEFAULT_SESSION_WAIT_S));
  const cursorFor = (kind: CursorKind | undefined) =>
    kind && {
      load: (id: string) => (options.from_start ? Promise.resolve(null) : loadCursor(paths, id, kind)),
      save: (id: string, position: { ino: number; offset: number }) => saveCursor(paths, id, position, kind),
      // A Monitor watch may be stopped at any moment: its cursor follows every line it printed.
      eager: kind === 'attention',
    };
  const follow = (sink: ProgressSink, kind?: CursorKind, over: Partial<FollowOptions> = {}) =>
    followSession({
      paths,
      sink,
      timeoutS,
      intervalMs,
      expect: options.expect ?? 1,
      waitForSessionS,
      replaceDead: options.replace_dead,
      once,
      clock: io.clock,
      cursor: cursorFor(kind),
      ...over,
    });
  const aggregateCommand = launcherCommand('aggregate', sessionDir === undefined ? '' : `--session_dir ${JSON.stringify(paths.dir)}`);
  const mode = { paths, write, timeoutS, expect: options.expect, aggregateCommand };
  if (options.until_done) return runUntilDone({ ...mode, follow: (sink, over) => follow(sink, undefined, over) });
  if (options.attention) {
    const rearm = rearmCommand(argv);
    return runAttention({
      ...mode,
      rearmCommand: rearm,
      keep: options.keep_watching,
      follow: (sink, over) => follow(sink, 'attention', over),
    });
  }
  const { sink, cursorKind } = pickOutput({ options, io, nextCommand: aggregateCommand, timeoutS });
  return follow(sink, cursorKind);
}

/**
 * The output for the flags: --json, the board (a terminal), --verbose's lines, or the slices (the default off a
 * terminal); with the cursor it keeps, if any. (--until_done and --attention run in progress/wait-modes.ts.)
 */
function pickOutput(context: { options: OptionsOf<typeof spec>; io: PollIo; nextCommand: string; timeoutS: number | undefined }): {
  sink: ProgressSink;
  cursorKind?: CursorKind;
} {
  const { options, io, nextCommand, timeoutS } = context;
  const write = (text: string) => void io.stdout.write(text);
  if (options.json) return { sink: createJsonSink({ write, timeoutS, once: options.once }) };
  const verbose = options.verbose || options.plain;
  if (io.stdout.isTTY && !verbose) return { sink: createBoardSink({ stream: io.stdout, color: wantsColor(io), timeoutS }) };
  if (verbose) return { sink: createLineSink({ write, timeoutS }) };
  return { sink: createSliceSink({ write, timeoutS, expect: options.expect, nextCommand }), cursorKind: 'poll' };
}

/**
 * The slice length in seconds, or undefined for no limit: `--timeout S` as given (0 = no limit);
 * without it {@link DEFAULT_SLICE_S} off a terminal (a model's tool call) and no limit on one (a person watching).
 * Off a terminal, when `BASH_DEFAULT_TIMEOUT_MS` is set (Claude Code's Bash tool limit, see the CLI contract;
 * the tool's shell inherits it), a slice is at most three quarters of it, so a wait never outlives the tool call.
 */
export function sliceTimeoutS(flag: number | undefined, tty: boolean, env: Record<string, string | undefined> = {}): number | undefined {
  const slice = flag === undefined ? (tty ? undefined : DEFAULT_SLICE_S) : flag === 0 ? undefined : flag;
  const bashMs = Number(env.BASH_DEFAULT_TIMEOUT_MS);
  if (tty || slice === undefined || !Number.isFinite(bashMs) || bashMs <= 0) return slice;
  return Math.min(slice, Math.max(1, Math.floor((bashMs * 0.75) / 1000)));
}

/** Colours on a terminal unless NO_COLOR is set; FORCE_COLOR=0 turns them off, any other FORCE_COLOR on. */
function wantsColor(io: PollIo): boolean {
  if (io.env.FORCE_COLOR !== undefined) return io.env.FORCE_COLOR !== '0';
  if (io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '') return false;
  return Boolean(io.stdout.isTTY);
}

if (process.argv[1]?.endsWith('poll-session.ts')) runMain(main);
