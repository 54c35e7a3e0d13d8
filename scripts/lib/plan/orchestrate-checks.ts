// What orchestrate (scripts/orchestrate.ts) refuses before it writes or starts anything: a missing --agent, claude
// flags on a mock rehearsal, a session id already used, a live session in the way, and worktree isolation that cannot
// work here. Each check throws a usage error (exit 2) naming the value and what to do.
import { existsSync } from 'node:fs';
import type { ParsedFlags } from '../cli/cli.ts';
import { usageError } from '../core/errors.ts';
import { newSessionId } from '../core/names.ts';
import { MANY_TASK_CLAUDE_FLAGS } from '../agents/claude-options.ts';
import type { IsolationMode } from '../isolation/isolation-options.ts';
import type { MergeCheck } from '../isolation/merge-queue.ts';
import { checkRefComponent, claimSessionId, openRepository, type Repository } from '../isolation/worktree.ts';
import { launcherCommand } from '../launcher/dist.ts';
import { deathReason } from '../scheduling/transitions.ts';
import { ACTIVE_STATUSES, type RunnerKind, type SessionState } from '../state/model.ts';
import { archivePaths, type SessionPaths } from '../state/session-paths.ts';
import type { Plan, PlanTask } from './plan.ts';

/**
 * `--agent`, which has no default: mock or claude, each explained. On a mock rehearsal, the flags that only real agents
 * take (the claude flags, `--skip_preflight`, arguments after `--`) are refused rather than ignored.
 * @throws OrchestratorError usage.
 */
export function checkAgent(agent: RunnerKind | undefined, flags: ParsedFlags, passthrough: readonly string[]): RunnerKind {
  if (agent === undefined) {
    throw usageError(
      'Missing --agent: pass --agent mock for a rehearsal (no account needed; agents are simulated and their results are not findings) ' +
        'or --agent claude for real Claude Code agents (needs a logged-in claude CLI).',
    );
  }
  if (agent !== 'mock') return agent;
  const misplaced = [
    ...[...Object.keys(MANY_TASK_CLAUDE_FLAGS).filter((name) => name !== 'retries'), 'skip_preflight']
      .filter((name) => flags[name] !== undefined)
      .map((name) => `--${name}`),
    ...(passthrough.length ? ['-- ...'] : []),
  ];
  if (misplaced.length > 0)
    throw usageError(`${misplaced.join(', ')} only apply to real agents: add --agent claude, or drop them for a mock rehearsal.`);
  return agent;
}

/**
 * The id of the session this run will register: `--session_id`, else with `--resume` the current
 * one, else (detached runs, which must know it before the child starts, and plans from standard input,
 * saved under it) a fresh one.
 * @throws OrchestratorError usage when the id is already taken (the current or an archived session)
 *   or, with `--resume`, is not the current session's.
 */
export function chooseSessionId(options: {
  flag?: string;
  resume: boolean;
  current: SessionState | null;
  detach: boolean;
  paths: SessionPaths;
}): string | undefined {
  const { flag, resume, current, paths } = options;
  if (resume) {
    if (flag !== undefined && flag !== current?.session_id) {
      throw usageError(
        `--resume continues the current session (${current?.session_id ?? 'none'}), not ${JSON.stringify(flag)}: drop --session_id.`,
      );
    }
    return current?.session_id;
  }
  if (flag !== undefined) {
    if (current?.session_id === flag || existsSync(archivePaths(paths, flag).state)) {
      throw usageError(
        `Session id ${JSON.stringify(flag)} is already used in ${paths.dir}: pick another --session_id, or leave it out for a generated one.`,
      );
    }
    return flag;
  }
  return options.detach ? newSessionId() : undefined;
}

/**
 * Refuses to start a new session over one whose agents are still at work: the new session would
 * archive it under them, and a plan runner still going would act on same-named tasks of the new one.
 * Tasks whose agent is gone (or whose lease expired) do not count: they are dead, not running.
 * @throws OrchestratorError usage naming the session, its live tasks and what to do.
 */
export function refuseLiveSession(current: SessionState, paths: SessionPaths): void {
  const now = new Date();
  const live = Object.entries(current.tasks)
    .filter(([, task]) => ACTIVE_STATUSES.has(task.status) && deathReason(current, task, now) === null)
    .map(([name]) => name);
  if (live.length === 0) return;
  const names = `${live.slice(0, 5).join(', ')}${live.length > 5 ? `, ... (${live.length} in all)` : ''}`;
  throw usageError(
    `Session ${current.session_id} in ${paths.dir} is still running (active: ${names}). Wait for it (${launcherCommand('poll-session', '--timeout 90')}), ` +
      `stop it (${launcherCommand('cancel-session')}), or run this plan in another folder with --session_dir DIR.`,
  );
}

/** What worktree isolation needs from the command line: the flags, and what is already known of the session. */
export interface IsolationRequest {
  plan: Plan;
  /** `--isolation`; a plan's or a task's own `isolation` comes first. */
  flag: IsolationMode | undefined;
  /** `--merge_check` and `--merge_check_timeout` (s). */
  mergeCheck: string | undefined;
  mergeCheckTimeoutS: number | undefined;
  /** `--session_id` as given, and the id chosen for the run (undefined: chosen at registration). */
  sessionIdFlag: string | undefined;
  sessionId: string | undefined;
  paths: SessionPaths;
  /** Whether the agents run on remote workers (`--backend bullmq`). */
  remote: boolean;
}

/** How the run isolates its tasks: the repository (null: no task is isolated), each task's mode, and the merge gate. */
export interface IsolationChoice {
  repo: Repository | null;
  isolationOf: (task: PlanTask) => IsolationMode;
  check: MergeCheck | undefined;
}

/**
 * Checks worktree isolation before anything is written: a `--merge_check` needs isolated tasks and a command; the
 * folder must be a git repository with a commit; task names and the session id must be usable in branch names; no
 * other session (another `--session_dir`) may use this id in the repository; remote workers cannot be isolated here.
 * The gate comes from the command line only, never from a state or plan file.
 * @throws OrchestratorError usage naming what to change.
 */
export async function checkIsolation(request: IsolationRequest): Promise<IsolationChoice> {
  const { plan, mergeCheck } = request;
  const isolationOf = (task: PlanTask): IsolationMode => task.isolation ?? plan.isolation ?? request.flag ?? 'none';
  const isolated = plan.tasks.some((task) => isolationOf(task) === 'worktree');
  if (mergeCheck !== undefined && !isolated)
    throw usageError(
      '--merge_check gates merges of isolated tasks: add --isolation worktree (or isolation: worktree in the plan), or drop it.',
    );
  if (mergeCheck !== undefined && mergeCheck.trim() === '')
    throw usageError('--merge_check is empty: give the command that must pass before a merge, e.g. --merge_check "npm test".');
  // Not a repository, or no commit yet, is a usage error.
  const repo = isolated ? await openRepository(process.cwd()) : null;
  // Branch names are built from task names and the session id: refuse the few git cannot take (`a..b`, `x.lock`) now.
  if (repo) {
    for (const task of plan.tasks) if (isolationOf(task) === 'worktree') checkRefComponent(task.id, `Task ${task.id}: the task name`);
    if (request.sessionIdFlag !== undefined) checkRefComponent(request.sessionIdFlag, 'The session id');
    // Another session (another --session_dir) with this id in the repository would share its branches and worktrees.
    if (request.sessionId !== undefined) await claimSessionId(repo, request.sessionId, request.paths.statePath, true);
  }
  if (request.remote && isolated)
    throw usageError('Worktree isolation needs the agents in this repository: drop --backend bullmq, or the isolation.');
  const check = mergeCheck === undefined ? undefined : { command: mergeCheck, timeoutMs: (request.mergeCheckTimeoutS ?? 600) * 1000 };
  return { repo, isolationOf, check };
}
