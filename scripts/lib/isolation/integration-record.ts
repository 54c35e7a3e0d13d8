// The session's integration branch in the state (`integration`): recorded at each merge, and put back at its recorded
// tip when someone deleted it mid-run.
import type { SessionPaths } from '../state/session-paths.ts';
import { readState, updateState } from '../state/state-store.ts';
import { resolveCommit } from './git.ts';
import type { IsolationOptions } from './isolation-options.ts';
import { restoreDeletedBranch } from './landing.ts';
import type { Repository } from './worktree.ts';

/**
 * Puts back a session's integration branch that was deleted mid-run, at the tip last recorded in
 * the state (`integration.tip`; a compare-and-swap against "no such ref"), so later tasks start
 * from, and merge onto, the earlier merges instead of a branch made afresh from HEAD.
 */
export async function restoreIntegration(
  repo: Repository,
  options: Pick<IsolationOptions, 'paths' | 'log'>,
  sessionId: string,
  branch: string,
): Promise<void> {
  if (!options.paths) return;
  const state = await readState(options.paths).catch(() => null);
  const recorded = state?.session_id === sessionId ? state.integration : null;
  if (!recorded || recorded.branch !== branch) return;
  if ((await resolveCommit(repo.root, `refs/heads/${branch}`)) !== null) return;
  if (await restoreDeletedBranch(repo.root, branch, recorded.tip))
    options.log?.(`${branch} was deleted; restored at its last recorded tip ${recorded.tip.slice(0, 12)}`);
}

/** Records the integration branch in the session (`integration`): created with `base`, or a new `tip`. */
export async function recordIntegration(
  paths: SessionPaths,
  sessionId: string,
  branch: string,
  base: string | null,
  tip: string,
): Promise<void> {
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
