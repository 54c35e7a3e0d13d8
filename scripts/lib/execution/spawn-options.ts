// The flags shared by spawn-agent and spawn-agent-mock, and their translation into a background task.
import path from 'node:path';
import { durationFlag, enumFlag, integerFlag, listFlag, numberFlag, stringFlag, type FlagSpec, type ParsedFlags } from '../cli/cli.ts';
import { usageError } from '../core/errors.ts';
import { TASK_NAME_RULE, validateSessionId, validateTaskName } from '../core/names.ts';
import { DEP_FAILURE_POLICIES, PRIORITIES, type RunnerKind } from '../state/model.ts';
import { DEFAULT_OUTPUT_DIR, resolveSessionPaths, SESSION_DIR_FLAG } from '../state/session-paths.ts';
import { DEFAULT_CHECK_TIMEOUT_S, readTaskCheck, type TaskCheck } from '../verification/task-check.ts';
import { ADOPT_TOKEN_ENV, DEFAULT_DEP_TIMEOUT_MS, type BackgroundTaskOptions } from './background-options.ts';

/**
 * The adoption token this agent was started with (see task-queue.ts), removed from the environment
 * so the agent's own children never see it; undefined for an agent started by hand.
 */
export function takeAdoptToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const token = env[ADOPT_TOKEN_ENV];
  delete env[ADOPT_TOKEN_ENV];
  return token === undefined || token === '' ? undefined : token;
}

/** Flags every spawn script accepts. */
export const SPAWN_FLAGS: Record<string, FlagSpec> = {
  task_name: { type: 'string', placeholder: 'NAME', description: `Task name, unique in the session: ${TASK_NAME_RULE}.` },
  goal: { type: 'string', placeholder: 'TEXT', description: 'What the agent must do (quote it).' },
  output_dir: { type: 'string', placeholder: 'DIR', description: `Folder for <task_name>.md results (default ${DEFAULT_OUTPUT_DIR}).` },
  session_dir: SESSION_DIR_FLAG,
  depends_on: { type: 'string', placeholder: 'A,B', description: 'Tasks that must complete first (waits as "waiting").', multiple: true },
  on_dep_failure: {
    type: 'string',
    placeholder: 'skip|run',
    description: 'If a dependency fails: skip this task (default) or run anyway.',
  },
  dep_timeout: {
    type: 'string',
    placeholder: 'S',
    description: 'Seconds to wait for a dependency that is not registered yet (default 600).',
  },
  priority: { type: 'string', placeholder: 'P0..P3', description: 'Order for free worker slots, P0 first (default P2).' },
  files: {
    type: 'string',
    placeholder: 'a.ts,b.ts',
    description: 'Files this task will change; tasks sharing one never run at once.',
    multiple: true,
  },
  max_workers: { type: 'string', placeholder: 'N', description: 'Most tasks running at once in the session (default 5; kept once set).' },
  retries: { type: 'string', placeholder: 'N', description: 'Extra attempts allowed after a failure (default 0 for mock, 3 for claude).' },
  adaptive: {
    type: 'string',
    placeholder: 'on|off',
    description:
      "Halve the session's worker limit when an agent hits a rate limit (429/529), grow it back when quiet (default on; kept once set).",
  },
  budget_usd: {
    type: 'string',
    placeholder: 'USD',
    description: 'Session budget in dollars: no task starts once spending would pass it; the rest are skipped (kept once set).',
  },
  on_budget: {
    type: 'string',
    placeholder: 'finish|stop',
    description: 'When the budget is spent: let running agents finish (default) or stop them.',
  },
  new_session: { type: 'boolean', description: 'Archive the current session (<session_id>.yaml) and start a new one.' },
  session_id: {
    type: 'string',
    placeholder: 'ID',
    description: 'Join this session, or archive the current one and start it (safe with many "&" starts).',
  },
  quiet: { type: 'boolean', description: 'Print nothing but errors.' },
  isolation: {
    type: 'string',
    placeholder: 'none|worktree',
    description:
      'worktree: the agent works in a git worktree of its own, its work is committed and merged onto <prefix>/<session>/integration ' +
      '(a conflict ends the task merge_failed); none (default): it works in this folder. See references/worktrees.md.',
  },
  wait: {
    type: 'boolean',
    description:
      'If the task is queued, stay until it ends and exit with its outcome (the process only reads the state; it holds no worker slot).',
  },
  check: {
    type: 'string',
    placeholder: 'CMD',
    description:
      "A program to run after the agent's answer, in its folder (its worktree when isolated), without a shell: a non-zero exit " +
      'gives the agent its output and another try (its Claude session resumed), within --retries, then fails the task.',
  },
  check_timeout: { type: 'string', placeholder: 'S', description: 'Time limit of one run of --check in seconds (default 600).' },
  detach: {
    type: 'boolean',
    description:
      'Register the task and return at once (exit 0): if it may start now, its agent starts as a process of its own, else the queue ' +
      'starts it later. Join such commands with && to start a whole graph in one Bash call.',
  },
};

/**
 * `--adaptive on|off`, `--budget_usd USD` and `--on_budget finish|stop`, validated (scheduling/capacity.ts, budget.ts).
 * @throws OrchestratorError usage naming the flag and value.
 */
export function sessionLimits(flags: ParsedFlags): { adaptive?: boolean; budgetUsd?: number; onBudget?: 'finish' | 'stop' } {
  const adaptive = enumFlag(flags, 'adaptive', ['on', 'off'] as const);
  const budgetUsd = numberFlag(flags, 'budget_usd', { min: 0, exclusiveMin: true, max: 1_000_000 });
  const onBudget = enumFlag(flags, 'on_budget', ['finish', 'stop'] as const);
  return {
    ...(adaptive === undefined ? {} : { adaptive: adaptive === 'on' }),
    ...(budgetUsd === undefined ? {} : { budgetUsd }),
    ...(onBudget === undefined ? {} : { onBudget }),
  };
}

/**
 * `--check CMD` and `--check_timeout S`, validated (verification/task-check.ts: one program and its arguments, no shell).
 * @returns the check, or undefined without `--check`.
 * @throws OrchestratorError usage naming the flag and value (also for `--check_timeout` without `--check`).
 */
export async function readCheckFlags(flags: ParsedFlags): Promise<TaskCheck | undefined> {
  const command = stringFlag(flags, 'check');
  const timeoutS = durationFlag(flags, 'check_timeout', { unit: 's', min: 0, exclusiveMin: true });
  if (command === undefined) {
    if (timeoutS !== undefined)
      throw usageError('--check_timeout was given without --check: name the check to run, e.g. --check "npm test".');
    return undefined;
  }
  return readTaskCheck(command, timeoutS ?? DEFAULT_CHECK_TIMEOUT_S, '--check');
}

/** The parsed, validated common spawn options. */
export type SpawnSettings = Omit<BackgroundTaskOptions, 'executor' | 'adoptToken'>;

/**
 * Validates the shared spawn flags and builds the background-task options.
 *
 * @param flags - parsed flags; `task_name` and `goal` may come from a task file instead (`defaults`).
 * @param runner - which runner records the task.
 * @param defaults - values from a task file, overridden by flags.
 * @throws OrchestratorError usage errors naming the flag and value.
 */
export function readSpawnSettings(
  flags: ParsedFlags,
  runner: RunnerKind,
  defaults: { taskName?: string; goal?: string; dependsOn?: string[]; priority?: string; files?: string[] } = {},
  cwd = process.cwd(),
): SpawnSettings {
  const taskName = validateTaskName(stringFlag(flags, 'task_name') ?? defaults.taskName ?? '');
  const goal = stringFlag(flags, 'goal') ?? defaults.goal;
  if (goal === undefined || goal.trim() === '') {
    throw usageError('Missing --goal: say what the agent must do, e.g. --goal "Scan src/ for TODO comments".');
  }
  const dependsOn = flags.depends_on !== undefined ? listFlag(flags, 'depends_on') : (defaults.dependsOn ?? []);
  dependsOn.forEach((dep) => validateTaskName(dep, '--depends_on'));
  if (dependsOn.includes(taskName)) throw usageError(`Task ${JSON.stringify(taskName)} cannot depend on itself (--depends_on).`);
  const priorityRaw = stringFlag(flags, 'priority') ?? defaults.priority;
  const priority = priorityRaw === undefined ? undefined : enumFlag({ priority: priorityRaw }, 'priority', PRIORITIES);
  const retries = integerFlag(flags, 'retries', { min: 0, max: 20 }) ?? (runner === 'claude' ? 3 : 0);
  const depTimeout = durationFlag(flags, 'dep_timeout', { unit: 's', min: 0 });
  const sessionId = stringFlag(flags, 'session_id');
  if (sessionId !== undefined) validateSessionId(sessionId);
  if (flags.new_session && sessionId !== undefined) throw usageError('Give either --new_session or --session_id, not both.');
  if (flags.detach && flags.wait)
    throw usageError('Give either --detach (return at once) or --wait (stay until a queued task ends), not both.');
  const outputDir = path.resolve(cwd, stringFlag(flags, 'output_dir') ?? DEFAULT_OUTPUT_DIR);
  const quiet = Boolean(flags.quiet);
  return {
    paths: resolveSessionPaths({ cwd, sessionDir: stringFlag(flags, 'session_dir') }),
    session: {
      newSession: Boolean(flags.new_session),
      sessionId,
      maxWorkers: integerFlag(flags, 'max_workers', { min: 1, max: 256 }),
      ...sessionLimits(flags),
    },
    task: {
      name: taskName,
      goal,
      dependsOn,
      priority,
      files: flags.files !== undefined ? listFlag(flags, 'files') : (defaults.files ?? []),
      onDepFailure: enumFlag(flags, 'on_dep_failure', DEP_FAILURE_POLICIES),
      runner,
      maxAttempts: retries + 1,
      launch: null,
    },
    outputDir,
    agentCwd: cwd,
    depTimeoutMs: depTimeout === undefined ? DEFAULT_DEP_TIMEOUT_MS : depTimeout * 1000,
    log: quiet ? () => {} : undefined,
    wait: Boolean(flags.wait),
    detach: Boolean(flags.detach),
  };
}
