#!/usr/bin/env -S npx tsx
/**
 * poll-session: follow the session until every task has ended, printing each status change.
 *
 * Usage:   npx tsx scripts/poll-session.ts [--timeout S] [--interval_ms N] [--expect N] [--session_dir DIR]
 * Example: npx tsx scripts/poll-session.ts --timeout 900 --expect 5
 * Reads:   <cwd>/.agent/sessions/latest.yaml without the lock; writes it (under the lock) only to mark
 *          a task whose agent process is gone, or whose heartbeat is stale, as failed.
 * Exit:    0 all completed, 1 any failed/skipped/cancelled, 2 usage error or no session, 3 timeout.
 */
import { integerFlag, numberFlag, parseCommandLine, renderHelp, runMain, stringFlag, type CommandSpec } from './lib/cli.ts';
import { EXIT, OrchestratorError } from './lib/errors.ts';
import { formatDuration, renderTextTable, STATUS_ICONS } from './lib/format.ts';
import type { SessionState, TaskStatus } from './lib/schema.ts';
import { exitCodeFor, summarize } from './lib/session-summary.ts';
import { resolveSessionPaths } from './lib/session-paths.ts';
import { readState, updateState } from './lib/state-store.ts';
import { watchState } from './lib/state-watcher.ts';
import { deathReason, reapDeadTasks } from './lib/transitions.ts';

export const spec: CommandSpec = {
  name: 'poll-session',
  summary:
    'Waits until every task of the current session has ended, printing a line per status change and a status table. ' +
    'A task still "running" whose agent process is gone is marked failed. Use it instead of guessing how long agents take.',
  usage: '[--timeout S] [--interval_ms N] [--expect N] [--session_dir DIR]',
  flags: {
    timeout: { type: 'string', placeholder: 'S', description: 'Give up after S seconds (exit 3). Default: wait forever.' },
    interval_ms: { type: 'string', placeholder: 'N', description: 'Longest wait between two reads of the state (default 500); changes wake it sooner.' },
    expect: { type: 'string', placeholder: 'N', description: 'Wait until at least N tasks are registered before judging the session finished.' },
    wait_for_session: { type: 'string', placeholder: 'S', description: 'Seconds to wait for a session to appear (default 10), then exit 2.' },
    session_dir: { type: 'string', placeholder: 'DIR', description: 'Session folder (default .agent/sessions).' },
  },
  examples: ['npx tsx scripts/poll-session.ts --timeout 900', 'npx tsx scripts/poll-session.ts --expect 5 --interval_ms 250'],
  notes: ['Exit codes: 0 all completed, 1 any failed, skipped or cancelled, 2 usage error or no session, 3 timeout.'],
};

type Snapshot = Map<string, TaskStatus>;

function describe(state: SessionState, name: string): string {
  const task = state.tasks[name]!;
  const parts = [task.agent];
  if (task.status === 'completed' || task.status === 'failed') parts.push(formatDuration(task.duration_ms));
  if (task.status === 'waiting' && task.waiting_on.length > 0) parts.push(`waiting on ${task.waiting_on.join(', ')}`);
  if (task.status === 'retrying' || task.status === 'running') parts.push(`attempt ${task.attempts}`);
  if (task.error && task.status !== 'completed') parts.push(task.error);
  return `${STATUS_ICONS[task.status]} ${name} ${task.status} (${parts.join(', ')})`;
}

/** Renders the status table of a session. */
export function statusTable(state: SessionState, now = Date.now()): string {
  const rows = Object.entries(state.tasks).map(([name, task]) => {
    const elapsed = task.duration_ms ?? (task.started_at ? now - Date.parse(task.started_at) : null);
    return [
      `${STATUS_ICONS[task.status]} ${task.status}`,
      task.agent,
      name,
      formatDuration(elapsed),
      String(task.attempts),
      task.depends_on.join(',') || '-',
    ];
  });
  const summary = summarize(state);
  const counts = Object.entries(summary.counts).filter(([, n]) => n > 0).map(([status, n]) => `${n} ${status}`).join(', ');
  return `${renderTextTable(['status', 'agent', 'task', 'elapsed', 'tries', 'depends on'], rows)}\nSession ${state.session_id}: ${summary.total} tasks: ${counts || 'none'}\n`;
}

/** Polls until the session ends; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const parsed = parseCommandLine(argv, spec);
  if (parsed.help) {
    process.stdout.write(renderHelp(spec));
    return EXIT.ok;
  }
  const timeoutS = numberFlag(parsed.flags, 'timeout', { min: 0, exclusiveMin: true });
  const intervalMs = integerFlag(parsed.flags, 'interval_ms', { min: 10, max: 60_000 }) ?? 500;
  const expect = integerFlag(parsed.flags, 'expect', { min: 1 }) ?? 1;
  const waitForSessionS = numberFlag(parsed.flags, 'wait_for_session', { min: 0 }) ?? 10;
  const paths = resolveSessionPaths({ sessionDir: stringFlag(parsed.flags, 'session_dir') });
  const out = (line: string) => process.stdout.write(line);

  const started = Date.now();
  const deadline = timeoutS === undefined ? Infinity : started + timeoutS * 1000;
  const watcher = watchState(paths);
  let previous: Snapshot = new Map();
  let changesSinceTable = 0;
  let lastTable = Date.now();
  let sessionId: string | null = null;
  try {
    for (;;) {
      let state = await readState(paths);
      if (!state) {
        if (Date.now() - started > waitForSessionS * 1000) {
          throw new OrchestratorError(
            'no_session',
            `No session found at ${paths.statePath} after ${waitForSessionS} s. Start agents first, run this from the project directory they ran in, or pass the same --session_dir.`,
          );
        }
      } else {
        if (sessionId !== null && state.session_id !== sessionId) {
          out(`Session ${sessionId} was archived; now following session ${state.session_id}.\n`);
          previous = new Map();
        }
        sessionId = state.session_id;
        const now = new Date();
        if (Object.values(state.tasks).some((task) => deathReason(state!, task, now) !== null)) {
          await updateState(paths, (tx) => tx.state && reapDeadTasks(tx, tx.state));
          state = (await readState(paths))!;
        }
        if (previous.size === 0) out(statusTable(state));
        for (const [name, task] of Object.entries(state.tasks)) {
          if (previous.get(name) !== task.status) {
            if (previous.size > 0 || task.status !== 'pending') {
              out(`${new Date().toISOString().slice(11, 19)} ${describe(state, name)}\n`);
              changesSinceTable += 1;
            }
          }
        }
        previous = new Map(Object.entries(state.tasks).map(([name, task]) => [name, task.status]));
        const summary = summarize(state);
        if (summary.finished && summary.total >= expect) {
          out(`\n${statusTable(state)}`);
          out(`All ${summary.total} tasks ended: ${summary.counts.completed} completed. Makespan ${formatDuration(summary.makespanMs)}.\n`);
          return exitCodeFor(summary);
        }
        if (changesSinceTable >= 10 || Date.now() - lastTable >= 30_000) {
          out(`\n${statusTable(state)}\n`);
          changesSinceTable = 0;
          lastTable = Date.now();
        }
      }
      if (Date.now() >= deadline) {
        out(`Timed out after ${timeoutS} s with tasks still active.\n`);
        if (state) out(statusTable(state));
        return EXIT.timeout;
      }
      await watcher.next(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
    }
  } finally {
    watcher.close();
  }
}

if (process.argv[1]?.endsWith('poll-session.ts')) runMain(main);
