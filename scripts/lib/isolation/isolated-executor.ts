// Runs an agent in a git worktree of its own and merges its work onto the session's integration branch: withWorktreeIsolation.
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../core/errors.ts';
import type { AgentContext, AgentExecutor, AgentOutcome } from '../agents/agent-types.ts';
import type { TaskMerge } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { readState, updateState } from '../state/state-store.ts';
import { git, isAncestor, resolveCommit } from './git.ts';
import { restoreDeletedBranch } from './landing.ts';
import { mergeOntoIntegration, predictMerge, type MergeCheck } from './merge-queue.ts';
import {
  addWorktree,
  checkRefComponent,
  claimSessionId,
  copyIncludedFiles,
  diffStat,
  ensureIntegrationBranch,
  isWorktree,
  openRepository,
  removeWorktree,
  sessionBranches,
  withGitLock,
  type Repository,
} from './worktree.ts';
import {
  clearInterruptedGit,
  collectAgentWork,
  HeadMovedError,
  pinWorktree,
  snapshotWorktree,
  SubmoduleEditsError,
} from './worktree-git.ts';

/** How tasks of a session share the code: in the user's tree (`none`) or each in a git worktree of its own. */
export const ISOLATION_MODES = ['none', 'worktree'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

/** Options of {@link withWorktreeIsolation}. */
export interface IsolationOptions {
  /** The repository, or how to open it (at the first task; a failure fails that task with the reason). */
  repo: Repository | (() => Promise<Repository>);
  /** The session folder, to record the integration branch in the state (`integration`). Optional. */
  paths?: SessionPaths;
  /** First component of branch names; default `dto`. */
  prefix?: string;
  /** The user's gate (`--merge_check`), run before each merge; never read from a state or plan file. */
  check?: MergeCheck;
  /** Whether the task must change files (`--files` given, or `expect_changes`); default: it declared files. */
  expectChanges?: (ctx: AgentContext) => boolean;
  /** A line of progress. */
  log?: (line: string) => void;
  /**
   * How often a running agent's work so far is checked against the integration tip for conflicts
   * (ms; 0 = never). Default {@link CONFLICT_CHECK_MS}, or `DTO_CONFLICT_CHECK_MS` from the environment.
   */
  conflictCheckMs?: number;
}

/**
 * Default interval of the conflict prediction while an isolated agent runs (ms): a snapshot commit
 * plus `git merge-tree` costs tens of ms, so every 15 s is cheap next to an agent's minutes, and soon
 * enough for a person watching the board to see two agents heading for the same lines.
 */
export const CONFLICT_CHECK_MS = 15_000;

/** What the wrapper keeps about a task between runs, beside its worktree (`meta/<task>.json`). */
interface TaskMeta {
  branch: string;
  worktree: string;
  /** The integration tip the task's branch started from. */
  base: string;
  /** The agent's outcome once it ended: a resumed run merges it instead of running the agent again. */
  outcome: AgentOutcome | null;
  /** Why the last attempt did not merge: given to the next attempt as context. */
  mergeFailure: { conflicts: string[]; gate_output: string | null; branch: string } | null;
}

/** Where a task's worktree and its meta file live: `<worktrees>/<session>/trees/<task>` and `.../meta/<task>.json`. */
export function taskPlaces(repo: Repository, sessionId: string, task: string): { worktree: string; meta: string } {
  const session = path.join(repo.worktreesDir, sessionId);
  return { worktree: path.join(session, 'trees', task), meta: path.join(session, 'meta', `${task}.json`) };
}

async function readMeta(file: string): Promise<TaskMeta | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as TaskMeta;
  } catch {
    return null;
  }
}

async function writeMeta(file: string, meta: TaskMeta): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temp, JSON.stringify(meta));
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

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

/**
 * Folder inside a worktree holding copies of the dependencies' result files while the agent runs,
 * so an agent confined to its working directory (claude's permissions) can read them; removed
 * before anything is committed.
 */
export const INPUTS_DIR = '.dto-inputs';

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

function retryContext(failure: NonNullable<TaskMeta['mergeFailure']>): string {
  const what =
    failure.conflicts.length > 0
      ? `conflicted with work merged meanwhile, in: ${failure.conflicts.join(', ')}`
      : `failed the merge check:\n${failure.gate_output ?? ''}`;
  return (
    `\n\nNote: an earlier attempt of this task ${what}. Its work is kept on branch ${failure.branch}. ` +
    'You now start from the current integration branch, which holds that other work: redo the task on top of it.'
  );
}

function mergeRecord(meta: TaskMeta, status: TaskMerge['status'], fields: Partial<TaskMerge> = {}): TaskMerge {
  return {
    branch: meta.branch,
    worktree: null,
    status,
    diff_stat: null,
    conflicts: [],
    commit: null,
    gate_output: null,
    expected_changes_missing: false,
    ...fields,
  };
}

/**
 * Creates (or, on a resumed run, finds) the task's worktree on its branch, from the integration tip.
 * Serialised under the worktrees lock.
 */
async function prepareWorktree(
  repo: Repository,
  options: IsolationOptions,
  ctx: AgentContext,
  integration: string,
  branch: string,
  places: { worktree: string; meta: string },
): Promise<TaskMeta> {
  return withGitLock(repo, async () => {
    if (options.paths) await claimSessionId(repo, ctx.session_id, options.paths.statePath);
    await restoreIntegration(repo, options, ctx.session_id, integration);
    const made = await ensureIntegrationBranch(repo, integration);
    if (made.created && options.paths) await recordIntegration(options.paths, ctx.session_id, integration, made.tip, made.tip);
    const tip = made.tip;
    const previous = await readMeta(places.meta);
    const branchTip = await resolveCommit(repo.root, `refs/heads/${branch}`);
    if (branchTip && previous?.outcome?.status === 'completed' && previous.branch === branch) {
      // The agent ended in an earlier run: its work (committed or not) is merged, not redone.
      return previous;
    }
    if (branchTip) {
      // An attempt that did not end, failed, or did not merge: keep its work on a branch of its own.
      if (await isWorktree(repo, places.worktree)) {
        await clearInterruptedGit(repo, places.worktree);
        await rm(path.join(places.worktree, INPUTS_DIR), { recursive: true, force: true });
        const message = `${ctx.taskName}: work left by an interrupted attempt`;
        await collectAgentWork(repo, places.worktree, branch, message).catch(() => undefined);
        await pinWorktree(repo, places.worktree);
        await removeWorktree(repo, places.worktree, { force: true });
      }
      const base = previous?.base ?? tip;
      const ownWork = (await git(repo.root, ['rev-list', '--count', `${base}..${branchTip}`])).stdout.trim() !== '0';
      if (ownWork && !(await isAncestor(repo.root, branchTip, tip))) {
        const kept = await freeBranchName(repo, `${branch}-attempt`);
        await git(repo.root, ['branch', '-m', branch, kept]);
        if (previous?.mergeFailure) previous.mergeFailure.branch = kept;
      } else {
        await git(repo.root, ['update-ref', '-d', `refs/heads/${branch}`, branchTip]);
      }
    } else if (await isWorktree(repo, places.worktree)) {
      await clearInterruptedGit(repo, places.worktree);
      await pinWorktree(repo, places.worktree);
      await removeWorktree(repo, places.worktree, { force: true });
    }
    await rm(places.worktree, { recursive: true, force: true });
    await addWorktree(repo, places.worktree, branch, tip);
    await copyIncludedFiles(repo, places.worktree);
    const meta: TaskMeta = { branch, worktree: places.worktree, base: tip, outcome: null, mergeFailure: previous?.mergeFailure ?? null };
    await writeMeta(places.meta, meta);
    return meta;
  });
}

async function freeBranchName(repo: Repository, stem: string): Promise<string> {
  for (let n = 1; ; n++) {
    if ((await resolveCommit(repo.root, `refs/heads/${stem}-${n}`)) === null) return `${stem}-${n}`;
  }
}

/** Commits the agent's work, merges it, removes the worktree of merged work; returns the task's outcome. */
async function landWork(
  repo: Repository,
  options: IsolationOptions,
  ctx: AgentContext,
  meta: TaskMeta,
  outcome: AgentOutcome,
  integration: string,
  places: { worktree: string; meta: string },
): Promise<AgentOutcome> {
  // Under the worktrees lock, as every other look at the list: other tasks may be adding theirs right now.
  const present = await withGitLock(repo, () => isWorktree(repo, meta.worktree));
  const message = `${ctx.taskName} (${ctx.agent}, session ${ctx.session_id})`;
  let tip: string;
  try {
    const work = present ? await collectAgentWork(repo, meta.worktree, meta.branch, message) : null;
    if (work?.movedFrom) log(options, `${ctx.taskName}: its agent had moved HEAD to ${work.movedFrom}; its work there is the task's`);
    tip = work?.tip ?? (await resolveCommit(repo.root, `refs/heads/${meta.branch}`))!;
  } catch (error) {
    if (!(error instanceof HeadMovedError) && !(error instanceof SubmoduleEditsError)) throw error;
    const merge = mergeRecord(meta, 'not_merged', { worktree: meta.worktree });
    return { ...outcome, status: 'failed', error: error.message, record: { ...outcome.record, merge } };
  }
  const stat = await diffStat(repo.root, meta.base, tip);
  const diff_stat = { files: stat.files, insertions: stat.insertions, deletions: stat.deletions };
  const expected = options.expectChanges ? options.expectChanges(ctx) : ctx.files.length > 0;
  const missing = expected && stat.files === 0;
  if (outcome.status !== 'completed') {
    return { ...outcome, record: { ...outcome.record, merge: mergeRecord(meta, 'not_merged', { worktree: meta.worktree, diff_stat }) } };
  }
  if (stat.files > 0) await restoreIntegration(repo, options, ctx.session_id, integration);
  const result =
    stat.files === 0
      ? null
      : await mergeOntoIntegration(repo, {
          integration,
          branch: meta.branch,
          message: `Merge ${ctx.taskName} (${ctx.agent}, session ${ctx.session_id})`,
          check: options.check,
          onMerged: (commit) =>
            options.paths ? recordIntegration(options.paths, ctx.session_id, integration, null, commit) : Promise.resolve(),
          signal: ctx.signal,
        });
  if (result?.status === 'cancelled') {
    // Cancelled during its merge (waiting for the lock, or in the gate): nothing landed, the work stays on its branch.
    const merge = mergeRecord(meta, 'not_merged', { worktree: present ? meta.worktree : null, diff_stat });
    return {
      ...outcome,
      status: 'failed',
      error: `cancelled during its merge: nothing merged, work kept on branch ${meta.branch}`,
      record: { ...outcome.record, merge },
    };
  }
  if (result === null || result.status === 'merged') {
    if (present) await withGitLock(repo, () => removeWorktree(repo, meta.worktree));
    const merge = mergeRecord(meta, result ? 'merged' : 'empty', {
      diff_stat,
      commit: result?.commit ?? null,
      expected_changes_missing: missing,
    });
    if (missing) log(options, `${ctx.taskName}: expected to change files (${ctx.files.join(', ') || 'expect_changes'}) but changed none`);
    return {
      ...outcome,
      frontmatter: { ...outcome.frontmatter, merge: merge.status, merge_commit: merge.commit },
      record: { ...outcome.record, merge },
    };
  }
  const conflicts = result.status === 'conflict' ? result.conflicts : [];
  const gateOutput = result.status === 'gate_failed' ? result.output : null;
  await writeMeta(places.meta, { ...meta, outcome: null, mergeFailure: { conflicts, gate_output: gateOutput, branch: meta.branch } });
  const error =
    result.status === 'conflict'
      ? `merge conflict with the integration branch ${integration} in: ${conflicts.join(', ')} (work kept on branch ${meta.branch})`
      : `merge check failed (exit ${result.exitCode ?? 'none'}), work kept on branch ${meta.branch}: ${lastLines(gateOutput ?? '', 5)}`;
  return {
    ...outcome,
    status: 'merge_failed',
    error,
    record: {
      ...outcome.record,
      merge: mergeRecord(meta, result.status === 'conflict' ? 'conflict' : 'gate_failed', {
        worktree: present ? meta.worktree : null,
        diff_stat,
        conflicts,
        gate_output: gateOutput,
        expected_changes_missing: missing,
      }),
    },
  };
}

function log(options: IsolationOptions, line: string): void {
  options.log?.(line);
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join(' | ');
}

/**
 * Puts back a session's integration branch that was deleted mid-run, at the tip last recorded in
 * the state (`integration.tip`; a compare-and-swap against "no such ref"), so later tasks start
 * from, and merge onto, the earlier merges instead of a branch made afresh from HEAD.
 */
async function restoreIntegration(repo: Repository, options: IsolationOptions, sessionId: string, branch: string): Promise<void> {
  if (!options.paths) return;
  const state = await readState(options.paths).catch(() => null);
  const recorded = state?.session_id === sessionId ? state.integration : null;
  if (!recorded || recorded.branch !== branch) return;
  if ((await resolveCommit(repo.root, `refs/heads/${branch}`)) !== null) return;
  if (await restoreDeletedBranch(repo.root, branch, recorded.tip))
    log(options, `${branch} was deleted; restored at its last recorded tip ${recorded.tip.slice(0, 12)}`);
}

/** Records the integration branch in the session (`integration`): created with `base`, or a new `tip`. */
async function recordIntegration(paths: SessionPaths, sessionId: string, branch: string, base: string | null, tip: string): Promise<void> {
  await updateState(paths, (tx) => {
    const state = tx.state;
    if (!state || state.session_id !== sessionId) return;
    const current = state.integration;
    if (current && current.branch === branch) {
      if (current.tip === tip) return;
      state.integration = { ...current, tip };
    } else {
      state.integration = { branch, base: base ?? tip, tip };
    }
  }).catch(() => undefined);
}

/**
 * While an agent runs: every `everyMs`, a snapshot of its worktree (worktree.ts `snapshotWorktree`,
 * which touches neither its files nor its index) is checked against the integration tip with
 * `git merge-tree` (merge-queue.ts `predictMerge`); when the predicted conflicts change, they are
 * recorded on the task (`ctx.recordPredictedConflicts`) for the board. Checks never overlap; a
 * failed check (a file half-written, git busy) is skipped. `stop` waits for a check under way.
 */
function startConflictPredictor(
  repo: Repository,
  worktree: string,
  integration: string,
  ctx: AgentContext,
  everyMs: number,
): { stop: () => Promise<void> } {
  const record = ctx.recordPredictedConflicts?.bind(ctx);
  if (!record || !(everyMs > 0)) return { stop: () => Promise.resolve() };
  let last = '';
  let stopped = false;
  let running: Promise<void> | null = null;
  const check = async () => {
    const tip = await resolveCommit(repo.root, `refs/heads/${integration}`);
    if (!tip || stopped) return;
    const prediction = await predictMerge(repo, tip, await snapshotWorktree(repo, worktree, [INPUTS_DIR]));
    const conflicts = prediction.clean ? [] : prediction.conflicts;
    if (stopped || conflicts.join('\0') === last) return;
    last = conflicts.join('\0');
    await record(conflicts);
  };
  const timer = setInterval(() => {
    running ??= check()
      .catch(() => undefined)
      .finally(() => {
        running = null;
      });
  }, everyMs);
  timer.unref();
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
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
