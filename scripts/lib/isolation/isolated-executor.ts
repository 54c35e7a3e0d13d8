// Runs an agent in a git worktree of its own and merges its work onto the session's integration branch: withWorktreeIsolation.
// Its parts: prepare-worktree.ts (before the agent), conflict-predictor.ts (while it runs), land-work.ts (after it).
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../core/errors.ts';
import type { AgentExecutor } from '../agents/agent-types.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { startConflictPredictor } from './conflict-predictor.ts';
import { CONFLICT_CHECK_MS, INPUTS_DIR, type IsolationMode, type IsolationOptions } from './isolation-options.ts';
import { landWork } from './land-work.ts';
import { prepareWorktree } from './prepare-worktree.ts';
import { mergeRecord, retryContext, taskPlaces, writeMeta, type TaskMeta } from './task-meta.ts';
import { checkRefComponent, claimSessionId, openRepository, sessionBranches, type Repository } from './worktree.ts';

export { CONFLICT_CHECK_MS, INPUTS_DIR, ISOLATION_MODES, type IsolationMode, type IsolationOptions } from './isolation-options.ts';

/**
 * Wraps an executor so that each task runs in a git worktree of its own and its work lands on the
 * session's integration branch, in the order tasks finish (a dependant starts only after its
 * dependencies completed, and an isolated task completes only once merged, so the order is
 * topological and every worktree starts from a tip that holds its dependencies' work).
 *
 * 1. Under the worktrees lock: create `<prefix>/<session>/integration` from the user's HEAD unless it
 *    exists, then `git worktree add --no-track -b <prefix>/<session>/tasks/<task> <dir> <tip>`.
 * 2. Run the agent with `ctx.cwd` = the worktree.
 * 3. Commit what it left (hooks off, no signing), record the diff stat, flag a task expected to
 *    change files that changed none.
 * 4. Merge (merge-queue.ts): merged -> `completed`; a conflict or a failed gate -> `merge_failed`
 *    with the paths or the gate's output tail; the branch and its commits are kept.
 * 5. A merged task's worktree is removed (`git worktree remove`, `prune`); a kept one is listed in
 *    the task's `merge.worktree`.
 *
 * Resuming after SIGKILL: an agent that ended has its outcome saved beside the worktree, so a
 * re-run merges it (a branch already in the integration branch is not merged twice) instead of
 * running the agent again. A branch with unmerged work from an attempt that did not end (or did not
 * merge) is kept as `<branch>-attempt-<n>` and the task starts afresh from the current tip, told
 * what conflicted last time.
 *
 * @returns an executor for the task lifecycle (background agents and the plan runner alike). It
 *   never throws for a git failure: the task fails with git's message.
 */
export function withWorktreeIsolation(executor: AgentExecutor, options: IsolationOptions): AgentExecutor {
  const log = options.log ?? (() => {});
  let opened: Promise<Repository> | null = null;
  return async (ctx) => {
    let repo: Repository;
    try {
      repo = typeof options.repo === 'function' ? await (opened ??= options.repo()) : options.repo;
    } catch (error) {
      return { status: 'failed', error: `--isolation worktree: ${errorMessage(error)}`, body: '' };
    }
    const branches = sessionBranches(ctx.session_id, options.prefix);
    const places = taskPlaces(repo, ctx.session_id, ctx.taskName);
    const branch = branches.task(ctx.taskName);
    let meta: TaskMeta;
    try {
      meta = await prepareWorktree(repo, options, ctx, branches.integration, branch, places);
    } catch (error) {
      return { status: 'failed', error: `could not prepare the task's worktree: ${errorMessage(error)}`, body: '' };
    }
    let outcome = meta.outcome;
    if (outcome === null) {
      const context = meta.mergeFailure ? retryContext(meta.mergeFailure) : '';
      const dependencyResults = await copyDependencyResults(meta.worktree, ctx.dependencyResults);
      const everyMs = options.conflictCheckMs ?? (Number(process.env.DTO_CONFLICT_CHECK_MS) || CONFLICT_CHECK_MS);
      const predictor = startConflictPredictor(repo, meta.worktree, branches.integration, ctx, everyMs);
      try {
        outcome = await executor({ ...ctx, cwd: meta.worktree, goal: ctx.goal + context, dependencyResults });
      } finally {
        await predictor.stop();
        await rm(path.join(meta.worktree, INPUTS_DIR), { recursive: true, force: true });
      }
      meta = { ...meta, outcome: { ...outcome, record: undefined }, mergeFailure: null };
      // Saved before anything else happens to the work, so a run killed from here on never runs the agent again.
      if (outcome.status === 'completed') await writeMeta(places.meta, meta);
    } else {
      log(`${ctx.taskName}: its agent already ended in an earlier run; merging its work`);
    }
    try {
      return await landWork(repo, options, ctx, meta, outcome, branches.integration, places);
    } catch (error) {
      return {
        ...outcome,
        status: 'failed',
        error: `could not merge the task's work: ${errorMessage(error)}`,
        record: { ...outcome.record, merge: mergeRecord(meta, 'not_merged', { worktree: meta.worktree }) },
      };
    }
  };
}

/** Copies each dependency's result file into the worktree's {@link INPUTS_DIR}; returns the copies' paths by task name. */
async function copyDependencyResults(worktree: string, results: Record<string, string>): Promise<Record<string, string>> {
  const copies: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [dep, file] of Object.entries(results)) {
    const copy = path.join(worktree, INPUTS_DIR, `${dep}.md`);
    try {
      await mkdir(path.dirname(copy), { recursive: true });
      await copyFile(file, copy);
      copies[dep] = copy;
    } catch {
      copies[dep] = file; // Unreadable: the agent gets the original path, as without isolation.
    }
  }
  return copies;
}

/**
 * A spawn script's `--isolation`: its executor as it is (`none`), or wrapped to work in a worktree
 * of the repository at `repoDir` (`worktree`; the repository is opened when the task first runs).
 */
export function isolatedFromFlag(mode: IsolationMode, executor: AgentExecutor, repoDir: string, paths: SessionPaths): AgentExecutor {
  return mode === 'worktree' ? withWorktreeIsolation(executor, { repo: () => openRepository(repoDir), paths }) : executor;
}

/**
 * What a spawn script with `--isolation worktree` refuses before it registers its task (usage
 * errors, exit 2): `repoDir` not in a git repository or one without a commit, a task name or
 * session id git cannot use in a branch name, and a session id another session (another
 * `--session_dir`) already uses in that repository.
 * @throws OrchestratorError naming the value and what to do.
 */
export async function checkIsolatedStart(
  repoDir: string,
  taskName: string,
  sessionId: string | undefined,
  paths?: SessionPaths,
): Promise<void> {
  const repo = await openRepository(repoDir);
  checkRefComponent(taskName, 'The task name');
  if (sessionId !== undefined) checkRefComponent(sessionId, 'The session id');
  if (sessionId !== undefined && paths) await claimSessionId(repo, sessionId, paths.statePath, true);
}
