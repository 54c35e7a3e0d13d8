// After an isolated agent ended: its work committed on its branch, merged onto the integration branch (or kept there
// with the reason it did not merge), and the worktree of merged work removed.
import type { AgentContext, AgentOutcome } from '../agents/agent-types.ts';
import type { TaskMerge } from '../state/model.ts';
import { resolveCommit } from './git.ts';
import { recordIntegration, restoreIntegration } from './integration-record.ts';
import type { IsolationOptions } from './isolation-options.ts';
import { mergeOntoIntegration, type MergeResult } from './merge-queue.ts';
import { mergeRecord, writeMeta, type TaskMeta, type TaskPlaces } from './task-meta.ts';
import { diffStat, isWorktree, removeWorktree, withGitLock, type Repository } from './worktree.ts';
import { collectAgentWork, HeadMovedError, SubmoduleEditsError } from './worktree-git.ts';

/** One task's work being landed: where it is, what its agent returned, and what it changed. */
interface Landing {
  repo: Repository;
  options: IsolationOptions;
  ctx: AgentContext;
  meta: TaskMeta;
  outcome: AgentOutcome;
  integration: string;
  /** Whether the task's worktree is still there (a resumed run may find it removed). */
  present: boolean;
  diff_stat: NonNullable<TaskMerge['diff_stat']>;
  /** The task was expected to change files and changed none. */
  missing: boolean;
}

/**
 * Commits the agent's work, merges it, removes the worktree of merged work.
 * @returns the task's outcome, with its `merge` record: `merged` or `empty` (completed), `not_merged` (the agent did
 *   not complete, moved HEAD off its branch, edited a submodule, or the merge was cancelled), `conflict` or
 *   `gate_failed` (`merge_failed`, the work kept on its branch and the reason saved for the next attempt).
 * @throws a git failure, which the caller turns into a failed task.
 */
export async function landWork(
  repo: Repository,
  options: IsolationOptions,
  ctx: AgentContext,
  meta: TaskMeta,
  outcome: AgentOutcome,
  integration: string,
  places: TaskPlaces,
): Promise<AgentOutcome> {
  // Under the worktrees lock, as every other look at the list: other tasks may be adding theirs right now.
  const present = await withGitLock(repo, () => isWorktree(repo, meta.worktree));
  const message = `${ctx.taskName} (${ctx.agent}, session ${ctx.session_id})`;
  let tip: string;
  try {
    const work = present ? await collectAgentWork(repo, meta.worktree, meta.branch, message) : null;
    if (work?.movedFrom) options.log?.(`${ctx.taskName}: its agent had moved HEAD to ${work.movedFrom}; its work there is the task's`);
    tip = work?.tip ?? (await resolveCommit(repo.root, `refs/heads/${meta.branch}`))!;
  } catch (error) {
    if (!(error instanceof HeadMovedError) && !(error instanceof SubmoduleEditsError)) throw error;
    const merge = mergeRecord(meta, 'not_merged', { worktree: meta.worktree });
    return { ...outcome, status: 'failed', error: error.message, record: { ...outcome.record, merge } };
  }
  const stat = await diffStat(repo.root, meta.base, tip);
  const expected = options.expectChanges ? options.expectChanges(ctx) : ctx.files.length > 0;
  const landing: Landing = {
    repo,
    options,
    ctx,
    meta,
    outcome,
    integration,
    present,
    diff_stat: { files: stat.files, insertions: stat.insertions, deletions: stat.deletions },
    missing: expected && stat.files === 0,
  };
  if (outcome.status !== 'completed') {
    const merge = mergeRecord(meta, 'not_merged', { worktree: meta.worktree, diff_stat: landing.diff_stat });
    return { ...outcome, record: { ...outcome.record, merge } };
  }
  const result = stat.files === 0 ? null : await merge(landing);
  if (result?.status === 'cancelled') {
    // Cancelled during its merge (waiting for the lock, or in the gate): nothing landed, the work stays on its branch.
    const merge = mergeRecord(meta, 'not_merged', { worktree: present ? meta.worktree : null, diff_stat: landing.diff_stat });
    return {
      ...outcome,
      status: 'failed',
      error: `cancelled during its merge: nothing merged, work kept on branch ${meta.branch}`,
      record: { ...outcome.record, merge },
    };
  }
  if (result === null || result.status === 'merged') return merged(landing, result?.commit ?? null);
  return notMerged(landing, result, places);
}

/** Merges the task's branch onto the integration branch (merge-queue.ts), recording each new tip in the state. */
async function merge(landing: Landing): Promise<MergeResult> {
  const { repo, options, ctx, integration } = landing;
  await restoreIntegration(repo, options, ctx.session_id, integration);
  return mergeOntoIntegration(repo, {
    integration,
    branch: landing.meta.branch,
    message: `Merge ${ctx.taskName} (${ctx.agent}, session ${ctx.session_id})`,
    check: options.check,
    onMerged: (commit) => (options.paths ? recordIntegration(options.paths, ctx.session_id, integration, null, commit) : Promise.resolve()),
    signal: ctx.signal,
  });
}

/** A task whose work merged (`commit`) or that changed nothing (null): its worktree goes, its outcome says so. */
async function merged(landing: Landing, commit: string | null): Promise<AgentOutcome> {
  const { repo, ctx, meta, outcome } = landing;
  if (landing.present) await withGitLock(repo, () => removeWorktree(repo, meta.worktree));
  const merge = mergeRecord(meta, commit ? 'merged' : 'empty', {
    diff_stat: landing.diff_stat,
    commit,
    expected_changes_missing: landing.missing,
  });
  if (landing.missing)
    landing.options.log?.(`${ctx.taskName}: expected to change files (${ctx.files.join(', ') || 'expect_changes'}) but changed none`);
  return {
    ...outcome,
    frontmatter: { ...outcome.frontmatter, merge: merge.status, merge_commit: merge.commit },
    record: { ...outcome.record, merge },
  };
}

/** A merge that conflicted or failed the gate: the reason is saved for the next attempt, the work stays on its branch. */
async function notMerged(
  landing: Landing,
  result: Extract<MergeResult, { status: 'conflict' | 'gate_failed' }>,
  places: TaskPlaces,
): Promise<AgentOutcome> {
  const { meta, outcome } = landing;
  const conflicts = result.status === 'conflict' ? result.conflicts : [];
  const gateOutput = result.status === 'gate_failed' ? result.output : null;
  await writeMeta(places.meta, { ...meta, outcome: null, mergeFailure: { conflicts, gate_output: gateOutput, branch: meta.branch } });
  const error =
    result.status === 'conflict'
      ? `merge conflict with the integration branch ${landing.integration} in: ${conflicts.join(', ')} (work kept on branch ${meta.branch})`
      : `merge check failed (exit ${result.exitCode ?? 'none'}), work kept on branch ${meta.branch}: ${lastLines(gateOutput ?? '', 5)}`;
  const merge = mergeRecord(meta, result.status, {
    worktree: landing.present ? meta.worktree : null,
    diff_stat: landing.diff_stat,
    conflicts,
    gate_output: gateOutput,
    expected_changes_missing: landing.missing,
  });
  return { ...outcome, status: 'merge_failed', error, record: { ...outcome.record, merge } };
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join(' | ');
}
