/**
 * poll-session: wait for the session in bounded slices: what changed since the previous call, then one summary line (exit 3 while tasks are active).
 *
 * Usage:   "$S/scripts/run" poll-session [--timeout S] [--expect N] [--verbose] [--json] [--once] [--from_start] [--replace_dead] [--session_dir DIR]
 * Example: "$S/scripts/run" poll-session --timeout 90
 *          (S is this skill's folder; `--help` prints the absolute path of this install's launcher.)
 * Reads:   <cwd>/.agent/sessions/latest.yaml without the lock, and events.jsonl beside it (by byte offset); writes the
 *          state (under the lock) only to mark a task whose agent process is gone, or whose heartbeat is stale, as failed,
 *          and with --replace_dead to record the replacement agents it starts. Off a terminal (without --verbose or
 *          --json) it keeps its read position in poll-cursor.<session_id>.json beside the state.
 * Exit:    0 all completed, 1 any failed/skipped/cancelled, 2 usage error or no session, 3 tasks still active when the
 *          slice (--timeout) ended, or with --once.
 */
import { runMain, type CommandSpec } from './lib/cli/cli.ts';
import { flag, parseOptionsOrShowHelp } from './lib/cli/options.ts';
import { launcherCommand } from './lib/launcher/dist.ts';
import { EXIT, usageError } from './lib/cli/errors.ts';
import { followSession, type ProgressSink } from './lib/progress/poll-loop.ts';
import { loadCursor, saveCursor } from './lib/progress/poll-cursor.ts';
import { createBoardSink, createJsonSink, createLineSink, createSliceSink, type TerminalStream } from './lib/progress/poll-sinks.ts';
import { resolveSessionPaths, SESSION_DIR_FLAG } from './lib/state/session-paths.ts';

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
    'and every event instead. A task still "running" whose agent process is gone is marked failed. Use it instead of guessing how long agents take.',
  usage: '[--timeout S] [--expect N] [--verbose] [--json] [--once] [--from_start] [--replace_dead] [--interval_ms N] [--session_dir DIR]',
  flags: {
    timeout: flag.duration({
      placeholder: 'S',
      description: `Return after S seconds with exit 3 if tasks are still active. Default ${DEFAULT_SLICE_S} off a terminal (at most 3/4 of $BASH_DEFAULT_TIMEOUT_MS when set), none on one; 0 = no limit.`,
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
    launcherCommand('poll-session', '--verbose --timeout 60'),
    launcherCommand('poll-session', '--json --timeout 60 > events.jsonl'),
  ],
  notes: [
    'A slice off a terminal prints only what changed since the previous call for this session (a cursor in',
    '<session_dir>/poll-cursor.<session_id>.json); --from_start prints everything again. It ends with one line, e.g.',
    `"[poll] 7/20 completed, 3 running, 10 waiting, 0 failed; 4m12s elapsed. Still running: run the same command again (exit 3)." or`,
    `"[poll] All 20 tasks ended: 19 completed, 1 failed; 31m02s elapsed. Next: ${launcherCommand('aggregate')} (exit 1)."`,
    'Files: reads .agent/sessions/latest.yaml and events.jsonl; writes latest.yaml (under its lock) only to mark dead agents failed or record replacements.',
    'Exit codes: 0 all completed, 1 any failed, skipped or cancelled, 2 usage error or no session, 3 still active (slice over, or --once).',
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
  const expect = options.expect ?? 1;
  const verbose = options.verbose || options.plain;
  if (json && verbose) throw usageError('Give either --json or --verbose/--plain, not both: --json prints every event as data already.');
  if (json && options.from_start) throw usageError('--from_start only applies to the default output: --json always prints every event.');
  const paths = resolveSessionPaths({ sessionDir });
  const tty = Boolean(io.stdout.isTTY);
  const timeoutS = sliceTimeoutS(options.timeout, tty, io.env);
  // A slice that never sees a session says so (exit 2: wrong folder, or no agent registered) instead of
  // "run the same command again" forever: by default the session wait never outlasts the slice.
  const waitForSessionS = options.wait_for_session ?? (once ? 0 : Math.min(DEFAULT_SESSION_WAIT_S, timeoutS ?? DEFAULT_SESSION_WAIT_S));

  let sink: ProgressSink;
  let sliced = false;
  if (json) sink = createJsonSink({ write, timeoutS, once });
  else if (tty && !verbose) sink = createBoardSink({ stream: io.stdout, color: wantsColor(io), timeoutS });
  else if (verbose) sink = createLineSink({ write, timeoutS });
  else {
    sliced = true;
    const nextCommand = launcherCommand('aggregate', sessionDir === undefined ? '' : `--session_dir ${JSON.stringify(paths.dir)}`);
    sink = createSliceSink({ write, timeoutS, expect: options.expect, nextCommand });
  }
  const cursor = sliced
    ? {
        load: (id: string) => (options.from_start ? Promise.resolve(null) : loadCursor(paths, id)),
        save: (id: string, position: { ino: number; offset: number }) => saveCursor(paths, id, position),
      }
    : undefined;
  return followSession({
    paths,
    sink,
    timeoutS,
    intervalMs,
    expect,
    waitForSessionS,
    replaceDead: options.replace_dead,
    once,
    clock: io.clock,
    cursor,
  });
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
