// Merging a task's branch onto the integration branch without any checkout: merge-tree, an optional gate, commit-tree, compare-and-swap.
import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { runBounded } from '../process/bounded-run.ts';
import { commitIdentity, git, isAncestor, resolveCommit } from './git.ts';
import { copyIncludedFiles, removeWorktree, withGitLock, type Repository } from './worktree.ts';

/** Longest output tail of a failed gate kept in the state and the report (characters). */
export const GATE_TAIL_CHARS = 2000;

/** How often a merge is recomputed after losing the compare-and-swap to another writer. */
const CAS_TRIES = 10;

/**
 * The optional gate: a command the USER gave on the command line (`orchestrate --merge_check`),
 * run with `sh -c` in a scratch worktree of the candidate merge. Never built from a state or plan file.
 */
export interface MergeCheck {
  command: string;
  /** Time limit of one run (ms). */
  timeoutMs: number;
}

/** What a merge attempt ended with. */
export type MergeResult =
  | { status: 'merged'; commit: string; already: boolean }
  | { status: 'conflict'; conflicts: string[]; tip: string }
  | { status: 'gate_failed'; output: string; exitCode: number | null; tip: string }
  /** The task was cancelled (its signal aborted) before the swap: nothing was merged, the gate was stopped. */
  | { status: 'cancelled'; tip: string };

/**
 * Predicts whether `branch` merges cleanly onto `tip` (`git merge-tree --write-tree --name-only`,
 * about 2 ms; git >= 2.38): nothing is written but loose objects.
 * @returns the merged tree, or the conflicting paths.
 */
export async function predictMerge(
  repo: Repository,
  tip: string,
  branchTip: string,
): Promise<{ clean: true; tree: string } | { clean: false; conflicts: string[] }> {
  const result = await git(repo.root, ['merge-tree', '--write-tree', '--name-only', '--no-messages', tip, branchTip], { ok: [0, 1] });
  const [tree, ...rest] = result.stdout.split('\n');
  if (result.exitCode === 0) return { clean: true, tree: tree!.trim() };
  const conflicts = [...new Set(rest.map((line) => line.trim()).filter((line) => line !== ''))];
  return { clean: false, conflicts };
}

/** Options of {@link mergeOntoIntegration}. */
export interface MergeOptions {
  /** The integration branch (`<prefix>/<session>/integration`). */
  integration: string;
  /** The task's branch. */
  branch: string;
  /** The merge commit's message. */
  message: string;
  check?: MergeCheck;
  /**
   * Called with the new tip after a successful swap, still under the merge lock, so records of the
   * tip (the session's `integration.tip`) are written in merge order.
   */
  onMerged?: (commit: string) => Promise<void>;
  /** The task's cancel: aborted, the gate is stopped and nothing is swapped in (`cancelled`). */
  signal?: AbortSignal;
}

/**
 * Merges `branch` onto the integration branch, one merge at a time (under the merge lock), never
 * touching any work tree but a scratch one for the gate:
 * `merge-tree --write-tree` -> (gate) -> `commit-tree <tree> -p <tip> -p <branch>` ->
 * `update-ref <ref> <new> <tip>`, a compare-and-swap: a writer whose view of the tip is stale
 * (a paused process, a second session writer) gets a refusal and recomputes on the new tip.
 *
 * A branch whose tip is already an ancestor of the integration tip is not merged again
 * (`already: true`): a run resumed after SIGKILL between the swap and the state write. A task cancelled while it
 * waits for the lock or while its gate runs (`signal`) merges nothing (`cancelled`): the gate's tree is stopped and
 * the swap, the only write, is not made.
 *
 * @returns merged (the integration branch's new tip), conflict (the paths), or gate_failed (the
 *   output tail and exit code); the integration branch is unchanged unless merged.
 * @throws GitError when git fails otherwise; Error after {@link CAS_TRIES} lost swaps.
 */
export async function mergeOntoIntegration(repo: Repository, options: MergeOptions): Promise<MergeResult> {
  const ref = `refs/heads/${options.integration}`;
  return withGitLock(
    repo,
    async () => {
      await removeStaleGates(repo);
      for (let attempt = 1; attempt <= CAS_TRIES; attempt++) {
        const tip = await resolveCommit(repo.root, ref);
        const branchTip = await resolveCommit(repo.root, `refs/heads/${options.branch}`);
        if (!tip || !branchTip)
          throw new Error(`cannot merge ${options.branch}: ${!tip ? options.integration : options.branch} does not exist`);
        if (await isAncestor(repo.root, branchTip, tip)) return { status: 'merged', commit: tip, already: true };
        const predicted = await predictMerge(repo, tip, branchTip);
        if (!predicted.clean) return { status: 'conflict', conflicts: predicted.conflicts, tip };
        const identity = await commitIdentity(repo.root);
        const commit = (
          await git(repo.root, ['commit-tree', predicted.tree, '-p', tip, '-p', branchTip, '-m', options.message], { env: identity })
        ).stdout.trim();
        if (options.signal?.aborted) return { status: 'cancelled', tip };
        if (options.check) {
          const gate = await runGate(repo, commit, options.check, options.signal);
          if (options.signal?.aborted) return { status: 'cancelled', tip };
          if (!gate.ok) return { status: 'gate_failed', output: gate.output, exitCode: gate.exitCode, tip };
        }
        const swapped = await git(repo.root, ['update-ref', '-m', options.message, ref, commit, tip], { ok: [0, 1, 128] });
        if (swapped.exitCode === 0) {
          await options.onMerged?.(commit);
          return { status: 'merged', commit, already: false };
        }
      }
      throw new Error(`lost the race for ${options.integration} ${CAS_TRIES} times in a row; run again to merge ${options.branch}`);
    },
    'merge',
  );
}

/** Where gates' scratch worktrees live: `<worktrees>/.gate/<commit>-<random>`. */
function gatesDir(repo: Repository): string {
  return path.join(repo.worktreesDir, '.gate');
}

/**
 * Removes gates' scratch worktrees left by a run killed during its gate (registration and folder).
 * Called under the merge lock, which every gate runs under: any scratch worktree found then is
 * stale, since no other gate can be running.
 */
async function removeStaleGates(repo: Repository): Promise<void> {
  const entries = await readdir(gatesDir(repo)).catch(() => [] as string[]);
  if (entries.length === 0) return;
  await withGitLock(repo, async () => {
    for (const entry of entries) {
      const dir = path.join(gatesDir(repo), entry);
      await removeWorktree(repo, dir, { force: true }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
    await git(repo.root, ['worktree', 'prune']);
  });
}

/**
 * Runs the gate in a scratch worktree of `commit` (detached, removed afterwards), with `sh -c` and
 * the user's command. Called under the merge lock; the scratch worktree's add and removal take the
 * worktrees lock.
 */
async function runGate(
  repo: Repository,
  commit: string,
  check: MergeCheck,
  signal?: AbortSignal,
): Promise<{ ok: boolean; output: string; exitCode: number | null }> {
  const dir = path.join(gatesDir(repo), `${commit.slice(0, 12)}-${randomBytes(3).toString('hex')}`);
  await withGitLock(repo, async () => {
    await git(repo.root, ['-c', 'core.hooksPath=/dev/null', 'worktree', 'add', '--quiet', '--detach', dir, commit]);
  });
  try {
    // The gate needs what the tasks had: .env, node_modules (the include list).
    await copyIncludedFiles(repo, dir);
    const result = await runGateCommand(check, dir, commit, signal);
    const ok = result.exitCode === 0 && !result.timedOut;
    return {
      ok,
      output: result.timedOut ? `${result.tail}\n(timed out after ${check.timeoutMs / 1000} s)` : result.tail,
      exitCode: result.exitCode,
    };
  } finally {
    await withGitLock(repo, () => removeWorktree(repo, dir, { force: true }));
  }
}

/**
 * Runs the gate's `sh -c` within bounds (process/bounded-run.ts): a process group of its own, only the last
 * {@link GATE_TAIL_CHARS} characters of its output kept, and the group with every descendant stopped at `timeoutMs`,
 * on a cancel and as soon as `sh` exits (SIGTERM, SIGKILL after 2 s): a child the gate left running can neither hold its
 * output open, and with it the merge lock, nor live on.
 * @returns the exit code (null when killed by a signal), whether the time limit ended it, and the tail.
 */
async function runGateCommand(
  check: MergeCheck,
  cwd: string,
  commit: string,
  signal?: AbortSignal,
): Promise<{ exitCode: number | null; timedOut: boolean; tail: string }> {
  const run = await runBounded({
    file: 'sh',
    args: ['-c', check.command],
    cwd,
    env: { DTO_MERGE_CANDIDATE: commit },
    timeoutMs: check.timeoutMs,
    graceMs: 2000,
    tailChars: GATE_TAIL_CHARS,
    signal,
  });
  return { exitCode: run.exitCode, timedOut: run.timedOut, tail: run.dropped ? `...${run.tail}` : run.tail };
}
