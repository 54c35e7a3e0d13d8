// Before the end-of-run line says "land with": the integration branch checked against the last merge this run recorded, put back if it was deleted, and the land command withheld if it was moved.
import { git, isAncestor, resolveCommit } from './git.ts';
import { openRepository } from './worktree.ts';
import type { SessionState } from '../state/model.ts';

/** What {@link checkLanding} found: a note to print (the branch was put back), or why "land with" would not be true. */
export interface Landing {
  /** Said before the land command when the branch had to be put back. */
  note: string | null;
  /** Said instead of the land command when landing the branch as it is would not land this run's work. */
  problem: string | null;
}

/**
 * Puts back `branch`, deleted, at `tip`: `update-ref` with an empty old value, a compare-and-swap
 * against "no such ref", so a branch made meanwhile is never overwritten. Used before each merge
 * (isolated-executor.ts) and before the end-of-run line ({@link checkLanding}).
 * @returns whether this call made the branch (false when it exists, or `tip` is no longer a commit).
 */
export async function restoreDeletedBranch(root: string, branch: string, tip: string): Promise<boolean> {
  if ((await resolveCommit(root, tip)) === null) return false;
  const made = await git(root, ['update-ref', '-m', 'dto: restore a deleted integration branch', `refs/heads/${branch}`, tip, ''], {
    ok: [0, 1, 128],
  });
  return made.exitCode === 0;
}

/**
 * Checks the session's integration branch (`state.integration`) just before the end-of-run line:
 * at the tip this run last recorded, it may be landed as it is; deleted (after the last merge, so no
 * later merge restored it), it is put back at that tip with a compare-and-swap against "no such
 * ref", as isolated-executor.ts does before each merge; moved on past that tip, or elsewhere, by
 * someone else, the line says so instead of offering the land command. Never touches the user's branch.
 *
 * @param repoDir - a folder of the repository the run worked in.
 * @returns null for a session without isolation (or a folder that is no longer a repository), else the {@link Landing}.
 */
export async function checkLanding(repoDir: string, state: SessionState): Promise<Landing | null> {
  const recorded = state.integration;
  if (!recorded) return null;
  const repo = await openRepository(repoDir).catch(() => null);
  if (!repo) return null;
  const { branch, tip } = recorded;
  const ref = `refs/heads/${branch}`;
  const now = await resolveCommit(repo.root, ref);
  if (now === tip) return { note: null, problem: null };
  const short = (commit: string) => commit.slice(0, 12);
  if (now === null) {
    if (await restoreDeletedBranch(repo.root, branch, tip))
      return { note: `${branch} was deleted after the last merge; restored at its last recorded tip ${short(tip)}`, problem: null };
    return {
      note: null,
      problem: `${branch} was deleted and could not be restored at this run's last merge ${short(tip)}: nothing to land`,
    };
  }
  if (await isAncestor(repo.root, tip, now))
    return {
      note: null,
      problem: `${branch} moved on past this run's last merge (${short(tip)} to ${short(now)}) outside this run: look at what was added before landing it`,
    };
  return {
    note: null,
    problem: `${branch} was moved to ${short(now)} outside this run and no longer holds its last merge ${short(tip)}: do not land it as it is`,
  };
}
