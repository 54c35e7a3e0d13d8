// Conflict prediction while an isolated agent runs: its work so far checked against the integration tip.
import type { AgentContext } from '../agents/agent-types.ts';
import { resolveCommit } from './git.ts';
import { INPUTS_DIR } from './isolation-options.ts';
import { predictMerge } from './merge-queue.ts';
import type { Repository } from './worktree.ts';
import { snapshotWorktree } from './worktree-git.ts';

/**
 * While an agent runs: every `everyMs`, a snapshot of its worktree (worktree.ts `snapshotWorktree`,
 * which touches neither its files nor its index) is checked against the integration tip with
 * `git merge-tree` (merge-queue.ts `predictMerge`); when the predicted conflicts change, they are
 * recorded on the task (`ctx.recordPredictedConflicts`) for the board. Checks never overlap; a
 * failed check (a file half-written, git busy) is skipped. `stop` waits for a check under way.
 */
export function startConflictPredictor(
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
