#!/usr/bin/env -S npx tsx
/**
 * poll-session: follow the session until every task has ended: a live board on a terminal, one line per event otherwise, JSON lines with --json.
 *
 * Usage:   npx tsx scripts/poll-session.ts [--timeout S] [--expect N] [--json] [--once] [--replace_dead] [--session_dir DIR]
 * Example: npx tsx scripts/poll-session.ts --timeout 900 --expect 5
 * Reads:   <cwd>/.agent/sessions/latest.yaml without the lock, and events.jsonl beside it (by byte offset); writes the
 *          state (under the lock) only to mark a task whose agent process is gone, or whose heartbeat is stale, as failed,
 *          and with --replace_dead to record the replacement agents it starts.
 * Exit:    0 all completed, 1 any failed/skipped/cancelled, 2 usage error or no session, 3 timeout (--once: still active).
 */
import { integerFlag, numberFlag, parseOrShowHelp, runMain, stringFlag, type CommandSpec } from './lib/cli.ts';
import { EXIT, usageError } from './lib/errors.ts';
import { followSession, type ProgressSink } from './lib/poll-loop.ts';
import { createBoardSink, createJsonSink, createLineSink, type TerminalStream } from './lib/poll-sinks.ts';
import { resolveSessionPaths, SESSION_DIR_FLAG } from './lib/session-paths.ts';

/** The command line: flags, `--help` text and examples. */
export const spec: CommandSpec = {
  name: 'poll-session',
  summary:
    'Follows the current session until every task has ended. On a terminal it shows a live board (a row per task, counts, workers, ' +
    'elapsed time and time left); otherwise it prints the status table, then one line per event (started, completed, failed with the ' +
    'reason, retrying, replaced, batch completed) and the table again every 10 events or 30 s. A task still "running" whose agent process ' +
    'is gone is marked failed. Use it instead of guessing how long agents take.',
  usage: '[--timeout S] [--interval_ms N] [--expect N] [--json] [--once] [--replace_dead] [--plain] [--session_dir DIR]',
  flags: {
    timeout: { type: 'string', placeholder: 'S', description: 'Give up after S seconds (exit 3). Default: wait forever.' },
    interval_ms: { type: 'string', placeholder: 'N', description: 'Longest wait between two reads of the state (default 500); changes wake it sooner.' },
    expect: { type: 'string', placeholder: 'N', description: 'Wait until at least N tasks are registered before judging the session finished.' },
    wait_for_session: { type: 'string', placeholder: 'S', description: 'Seconds to wait for a session to appear (default 10; 0 with --once), then exit 2.' },
    json: { type: 'boolean', description: 'Print JSON lines: every event, then a summary object (fields in references/events.md).' },
    once: { type: 'boolean', description: 'Print the current state once and exit: 0/1 if every task ended, 3 if some are still active.' },
    replace_dead: { type: 'boolean', description: 'Restart the agent of a task whose process died (same agent id), within its attempts budget.' },
    plain: { type: 'boolean', description: 'Print event lines and status tables even on a terminal (no live board).' },
    session_dir: SESSION_DIR_FLAG,
  },
  examples: [
    'npx tsx scripts/poll-session.ts --timeout 900',
    'npx tsx scripts/poll-session.ts --expect 5 --replace_dead',
    'npx tsx scripts/poll-session.ts --once',
    'npx tsx scripts/poll-session.ts --json | jq -c \'select(.type == "failed")\'',
  ],
  notes: [
    'Files: reads .agent/sessions/latest.yaml and events.jsonl; writes latest.yaml (under its lock) only to mark dead agents failed or record replacements.',
    'Exit codes: 0 all completed, 1 any failed, skipped or cancelled, 2 usage error or no session, 3 timeout (or, with --once, tasks still active).',
  ],
};

/** Where poll-session writes, and how it decides on the board (injectable for tests). */
export interface PollIo {
  stdout: TerminalStream;
  env: Record<string, string | undefined>;
  /** The clock, ms since the epoch. */
  clock?: () => number;
}

/** Follows the session; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2), io: PollIo = { stdout: process.stdout, env: process.env }): Promise<number> {
  const write = (text: string) => void io.stdout.write(text);
  const parsed = parseOrShowHelp(argv, spec, write);
  if (!parsed) return EXIT.ok;
  const timeoutS = numberFlag(parsed.flags, 'timeout', { min: 0, exclusiveMin: true });
  const intervalMs = integerFlag(parsed.flags, 'interval_ms', { min: 10, max: 60_000 }) ?? 500;
  const expect = integerFlag(parsed.flags, 'expect', { min: 1 }) ?? 1;
  const once = Boolean(parsed.flags.once);
  const waitForSessionS = numberFlag(parsed.flags, 'wait_for_session', { min: 0 }) ?? (once ? 0 : 10);
  const json = Boolean(parsed.flags.json);
  if (json && parsed.flags.plain) throw usageError('Give either --json or --plain, not both: --json already prints no board.');
  const paths = resolveSessionPaths({ sessionDir: stringFlag(parsed.flags, 'session_dir') });

  let sink: ProgressSink;
  if (json) sink = createJsonSink({ write, timeoutS, once });
  else if (io.stdout.isTTY && !parsed.flags.plain) sink = createBoardSink({ stream: io.stdout, color: wantsColor(io), timeoutS });
  else sink = createLineSink({ write, timeoutS });
  return followSession({ paths, sink, timeoutS, intervalMs, expect, waitForSessionS, replaceDead: Boolean(parsed.flags.replace_dead), once, clock: io.clock });
}

/** Colours on a terminal unless NO_COLOR is set; FORCE_COLOR=0 turns them off, any other FORCE_COLOR on. */
function wantsColor(io: PollIo): boolean {
  if (io.env.FORCE_COLOR !== undefined) return io.env.FORCE_COLOR !== '0';
  if (io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '') return false;
  return Boolean(io.stdout.isTTY);
}

if (process.argv[1]?.endsWith('poll-session.ts')) runMain(main);
