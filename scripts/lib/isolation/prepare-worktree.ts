// The task's worktree before its agent runs: created from the integration tip, or found again on a resumed run, with
// the work of an interrupted or unmerged attempt kept on a branch of its own.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { AgentContext } from '../agents/agent-types.ts';
import { git, isAncestor, resolveCommit } from './git.ts';
import { recordIntegration, restoreIntegration } from './integration-record.ts';
import { INPUTS_DIR, type IsolationOptions } from './isolation-options.ts';
import { readMeta, writeMeta, type TaskMeta, type TaskPlaces } from './task-meta.ts';
import {
  addWorktree,
  claimSessionId,
  copyIncludedFiles,
  ensureIntegrationBranch,
  isWorktree,
  removeWorktree,
  withGitLock,
  type Repository,
} from './worktree.ts';
import { clearInterruptedGit, collectAgentWork, pinWorktree } from './worktree-git.ts';

/**
 * Creates (or, on a resumed run, finds) the task's worktree on its branch, from the integration tip.
 * Serialised under the worktrees lock.
 */
export async function prepareWorktree(
  repo: Repository,
  options: IsolationOptions,
  ctx: AgentContext,
  integration: string,
  branch: string,
  places: TaskPlaces,
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
