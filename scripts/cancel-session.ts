#!/usr/bin/env -S npx tsx
/**
 * cancel-session: stop the session's agents (or one task's) and mark them cancelled.
 *
 * Usage:   npx tsx scripts/cancel-session.ts [--task NAME] [--grace_ms N] [--session_dir DIR]
 * Example: npx tsx scripts/cancel-session.ts --task T-03
 * Reads/writes: <cwd>/.agent/sessions/latest.yaml (under its lock) and events.jsonl.
 * Signals: SIGTERM to each agent's process group (or process), SIGKILL after the grace period.
 * Exit:    0 done (also when nothing was active), 2 usage error, no session or unknown task.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { parseOrShowHelp, integerFlag, runMain, stringFlag, type CommandSpec } from './lib/cli.ts';
import { EXIT, OrchestratorError } from './lib/errors.ts';
import { validateTaskName } from './lib/names.ts';
import { isProcessAlive, signalProcessTree } from './lib/process-util.ts';
import { ACTIVE_STATUSES } from './lib/schema.ts';
import { resolveSessionPaths, SESSION_DIR_FLAG } from './lib/session-paths.ts';
import { requireState, updateState } from './lib/state-store.ts';
import { setStatus } from './lib/transitions.ts';

export const spec: CommandSpec = {
  name: 'cancel-session',
  summary:
    'Marks every active task of the session (or just --task NAME) "cancelled" and stops its agent: SIGTERM to the ' +
    'agent\'s process group, then SIGKILL after the grace period. An orchestrate process running other tasks is not ' +
    'killed for one task: it sees the cancel in the state and stops that task itself. Dependants are then skipped.',
  usage: '[--task NAME] [--grace_ms N] [--session_dir DIR]',
  flags: {
    task: { type: 'string', placeholder: 'NAME', description: 'Cancel only this task (default: every active task).' },
    grace_ms: { type: 'string', placeholder: 'N', description: 'Wait this long after SIGTERM before SIGKILL (default 5000).' },
    session_dir: SESSION_DIR_FLAG,
  },
  examples: ['npx tsx scripts/cancel-session.ts', 'npx tsx scripts/cancel-session.ts --task T-03 --grace_ms 2000'],
  notes: ['Exit codes: 0 done (also when nothing was active), 2 usage error, no session or unknown task.'],
};

/** Cancels; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const parsed = parseOrShowHelp(argv, spec);
  if (!parsed) return EXIT.ok;
  const only = stringFlag(parsed.flags, 'task');
  if (only !== undefined) validateTaskName(only, '--task');
  const graceMs = integerFlag(parsed.flags, 'grace_ms', { min: 0, max: 600_000 }) ?? 5000;
  const paths = resolveSessionPaths({ sessionDir: stringFlag(parsed.flags, 'session_dir') });
  const before = await requireState(paths);
  if (only !== undefined && !before.tasks[only]) {
    throw new OrchestratorError('usage', `No task ${JSON.stringify(only)} in session ${before.session_id}. Tasks: ${Object.keys(before.tasks).join(', ') || 'none'}.`);
  }

  const { cancelled, toSignal } = await updateState(paths, (tx) => {
    const state = tx.state!;
    const names = Object.entries(state.tasks)
      .filter(([name, task]) => ACTIVE_STATUSES.has(task.status) && (only === undefined || name === only))
      .map(([name]) => name);
    const pids = new Set(names.map((name) => state.tasks[name]!.pid).filter((pid): pid is number => pid !== null && pid !== process.pid));
    for (const name of names) setStatus(tx, state, name, 'cancelled', { reason: 'cancelled by cancel-session' });
    // Signal a process only if it owns no task that stays active (an orchestrator running other tasks stops the task itself).
    const stillActive = new Set(Object.values(state.tasks).filter((task) => ACTIVE_STATUSES.has(task.status)).map((task) => task.pid));
    return { cancelled: names, toSignal: [...pids].filter((pid) => !stillActive.has(pid)) };
  });
  if (cancelled.length === 0) {
    process.stdout.write(`Nothing to cancel in session ${before.session_id}${only ? ` (task ${only} is ${before.tasks[only]!.status})` : ''}.\n`);
    return EXIT.ok;
  }
  process.stdout.write(`Cancelled ${cancelled.length} task(s): ${cancelled.join(', ')}.\n`);

  const alive = toSignal.filter((pid) => isProcessAlive(pid));
  for (const pid of alive) signalProcessTree(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive.some((pid) => isProcessAlive(pid)) && Date.now() < deadline) await delay(50);
  const stubborn = alive.filter((pid) => isProcessAlive(pid));
  for (const pid of stubborn) signalProcessTree(pid, 'SIGKILL');
  process.stdout.write(
    `Stopped ${alive.length} agent process(es)${stubborn.length ? `, ${stubborn.length} with SIGKILL after ${graceMs} ms` : ''}.\n`,
  );
  return EXIT.ok;
}

if (process.argv[1]?.endsWith('cancel-session.ts')) runMain(main);
