/**
 * cancel-session: stop the session's agents (or one task's) and mark them cancelled.
 *
 * Usage:   "$S/scripts/run" cancel-session [--task NAME] [--grace_ms N] [--session_dir DIR]
 * Example: "$S/scripts/run" cancel-session --task T-03      (S is this skill's folder)
 * Reads/writes: <cwd>/.agent/sessions/latest.yaml (under its lock) and events.jsonl.
 * Signals: only a process verified to be the recorded agent (pid plus start time, this host; never pid <= 1):
 *          SIGTERM to it, its descendants and its own process group (only when it leads one), SIGKILL after the grace period.
 *          Agents it launched for other tasks (detached: sessions of their own) are theirs, and left alone.
 * Exit:    0 done (also when nothing was active), 2 usage error, no session or unknown task.
 */
import { launcherCommand } from './lib/launcher/dist.ts';
import { runMain, type CommandSpec } from './lib/cli/cli.ts';
import { flag, parseOptionsOrShowHelp } from './lib/cli/options.ts';
import { EXIT, OrchestratorError } from './lib/core/errors.ts';
import { validateTaskName } from './lib/core/names.ts';
import type { RecordedIdentity } from './lib/process/signals.ts';
import { snapshotTree, terminateProcessTree } from './lib/process/tree.ts';
import { ACTIVE_STATUSES, type TaskRecord } from './lib/state/model.ts';
import { taskOf } from './lib/scheduling/scheduling.ts';
import { resolveSessionPaths, SESSION_DIR_FLAG } from './lib/state/session-paths.ts';
import { requireState, updateState } from './lib/state/state-store.ts';
import { setStatus } from './lib/scheduling/transitions.ts';

export const spec = {
  name: 'cancel-session',
  summary:
    'Marks every active task of the session (or just --task NAME) "cancelled" and stops its agent: SIGTERM to the ' +
    'agent, its child processes and its own process group, then SIGKILL after the grace period. A process is signalled ' +
    'only if it is verifiably the agent that registered the task (pid plus start time, this host), so a process that ' +
    "reused a dead agent's pid is never touched. An orchestrate process running other tasks is not " +
    'killed for one task: it sees the cancel in the state and stops that task itself. Dependants are then skipped.',
  usage: '[--task NAME] [--grace_ms N] [--session_dir DIR]',
  flags: {
    task: flag.string({ placeholder: 'NAME', description: 'Cancel only this task (default: every active task).' }),
    grace_ms: flag.integer({
      placeholder: 'N',
      description: 'Wait this long after SIGTERM before SIGKILL (default 5000).',
      min: 0,
      max: 600_000,
      default: 5000,
    }),
    session_dir: SESSION_DIR_FLAG,
  },
  examples: [launcherCommand('cancel-session'), launcherCommand('cancel-session', '--task T-03 --grace_ms 2000')],
  notes: ['Exit codes: 0 done (also when nothing was active), 2 usage error, no session or unknown task.'],
} satisfies CommandSpec;

/** Cancels; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const parsed = parseOptionsOrShowHelp(argv, spec);
  if (!parsed) return EXIT.ok;
  const { task: only, grace_ms: graceMs, session_dir: sessionDir } = parsed.options;
  if (only !== undefined) validateTaskName(only, '--task');
  const paths = resolveSessionPaths({ sessionDir });
  const before = await requireState(paths);
  if (only !== undefined && !taskOf(before, only)) {
    throw new OrchestratorError(
      'usage',
      `No task ${JSON.stringify(only)} in session ${before.session_id}. Tasks: ${Object.keys(before.tasks).join(', ') || 'none'}.`,
    );
  }

  // List each agent's process tree before the cancel is written: an agent that sees its task
  // cancelled may exit at once, and its children would then be re-parented out of reach.
  const snapshots = new Map<string, Map<number, string>>();
  const targeted = Object.entries(before.tasks)
    .filter(([name, task]) => ACTIVE_STATUSES.has(task.status) && (only === undefined || name === only))
    .map(([name, task]) => ({ name, task }));
  for (const owner of [...ownersToStop(targeted), ...childrenToStop(targeted)])
    snapshots.set(owner.key, snapshotTree(owner.identity, owner));
  const { cancelled, owners } = await updateState(paths, (tx) => {
    const state = tx.state!;
    const names = Object.entries(state.tasks)
      .filter(([name, task]) => ACTIVE_STATUSES.has(task.status) && (only === undefined || name === only))
      .map(([name]) => name);
    const tasks = names.map((name) => ({ name, task: taskOf(state, name)! }));
    const owners = ownersToStop(tasks);
    const children = childrenToStop(tasks);
    for (const name of names) setStatus(tx, state, name, 'cancelled', { reason: 'cancelled by cancel-session' });
    // Signal a process only if it owns no task that stays active (an orchestrator running other tasks stops the task itself).
    const stillActive = Object.values(state.tasks)
      .filter((task) => ACTIVE_STATUSES.has(task.status))
      .map(ownerKey);
    // The process an agent runs as (a claude CLI) belongs to its task alone: always stopped.
    return { cancelled: names, owners: [...owners.filter((owner) => !stillActive.includes(owner.key)), ...children] };
  });
  if (cancelled.length === 0) {
    const status = only !== undefined ? taskOf(before, only)?.status : undefined;
    process.stdout.write(`Nothing to cancel in session ${before.session_id}${only ? ` (task ${only} is ${status})` : ''}.\n`);
    return EXIT.ok;
  }
  process.stdout.write(`Cancelled ${cancelled.length} task(s): ${cancelled.join(', ')}.\n`);

  // One way to stop a process tree, each signal identity-checked (see process/tree.ts).
  const outcomes = await Promise.all(
    owners.map(async (owner) => ({
      owner,
      result: await terminateProcessTree(owner.identity, {
        graceMs,
        members: snapshots.get(owner.key),
        spareSessions: owner.spareSessions,
      }),
    })),
  );
  const stopped = outcomes.filter(({ result }) => result.refused === null && !result.gone);
  const forced = stopped.filter(({ result }) => result.killed > 0);
  process.stdout.write(
    `Stopped ${stopped.length} agent process(es)${forced.length ? `, ${forced.length} with SIGKILL after ${graceMs} ms` : ''}.\n`,
  );
  for (const { owner, result } of outcomes) {
    if (result.refused !== null) process.stdout.write(`Not signalled (task ${owner.tasks.join(', ')}): ${result.refused}.\n`);
    else if (result.gone && result.terminated === 0) {
      process.stdout.write(
        `Not signalled (task ${owner.tasks.join(', ')}): its agent (pid ${owner.identity.pid}) had already exited (the pid is gone or now belongs to another process).\n`,
      );
    }
  }
  return EXIT.ok;
}

/** An agent process to stop: its recorded identity and the tasks it owned. */
interface Owner {
  key: string;
  identity: RecordedIdentity;
  tasks: string[];
  /**
   * Leave out the processes below it that lead sessions of their own: for a task's owner (a spawn-agent
   * or orchestrate process) those are agents it launched for other tasks, and the claude CLI it runs
   * as, which is stopped as a root of its own. False for that CLI: its whole tree is the task's.
   */
  spareSessions: boolean;
}

/** Identity key of a task's owner: pid plus start time plus host. */
function ownerKey(task: TaskRecord): string {
  return `${task.pid}|${task.pid_start ?? ''}|${task.host ?? ''}`;
}

/** The processes the given tasks' agents run as (`agent_child`, e.g. a claude CLI), when recorded. */
function childrenToStop(tasks: Array<{ name: string; task: TaskRecord }>): Owner[] {
  return tasks.flatMap(({ name, task }) =>
    task.agent_child && task.agent_child.pid !== process.pid
      ? [
          {
            key: `child|${task.agent_child.pid}|${task.agent_child.start ?? ''}|${task.agent_child.host ?? ''}`,
            identity: task.agent_child,
            tasks: [name],
            spareSessions: false,
          },
        ]
      : [],
  );
}

/** The distinct owner processes of the given tasks, this process excluded. */
function ownersToStop(tasks: Array<{ name: string; task: TaskRecord }>): Owner[] {
  const owners = new Map<string, Owner>();
  for (const { name, task } of tasks) {
    if (task.pid === null || task.pid === process.pid) continue;
    const key = ownerKey(task);
    const owner = owners.get(key) ?? {
      key,
      identity: { pid: task.pid, start: task.pid_start, host: task.host },
      tasks: [],
      spareSessions: true,
    };
    owner.tasks.push(name);
    owners.set(key, owner);
  }
  return [...owners.values()];
}

if (process.argv[1]?.endsWith('cancel-session.ts')) runMain(main);
