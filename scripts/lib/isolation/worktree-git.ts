// git pinned to one task's worktree: every command names that worktree's git dir and work tree, so an agent that
// deleted or rewrote its `.git` file, or moved its HEAD, can never make the orchestrator act on the user's checkout.
import { randomUUID } from 'node:crypto';
import { lstat, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { commitIdentity, git, isAncestor, resolveCommit, type GitOptions, type GitResult } from './git.ts';
import type { Repository } from './worktree.ts';

/** git run on one worktree: `git --git-dir=<its admin dir> --work-tree=<dir> <args>`. */
export type PinnedGit = (args: readonly string[], options?: GitOptions) => Promise<GitResult>;

/**
 * The administrative folder of the worktree at `dir` (`<common dir>/worktrees/<id>`, whose `gitdir`
 * file names `<dir>/.git`), found from the repository's side, never from the worktree's own `.git`
 * file alone (which an agent may have deleted or rewritten: what it names is taken only when that
 * folder's `gitdir` names this worktree, else every entry is read); the common dir for the main worktree.
 * @returns the absolute folder, or null when git has no such worktree registered (pruned).
 */
export async function worktreeGitDir(repo: Repository, dir: string): Promise<string | null> {
  if (path.resolve(dir) === path.resolve(repo.root)) return repo.commonDir;
  const admin = path.join(repo.commonDir, 'worktrees');
  const wanted = path.join(path.resolve(dir), '.git');
  const names = async (entry: string) =>
    path.resolve(admin, entry, (await readFile(path.join(admin, entry, 'gitdir'), 'utf8').catch(() => '')).trim()) === wanted;
  // Usually the worktree's own `.git` file names its folder: taken only when that folder says it is this worktree's.
  const claimed = /^gitdir: (.+)$/m.exec(await readFile(wanted, 'utf8').catch(() => ''))?.[1]?.trim();
  const claimedDir = claimed ? path.resolve(dir, claimed) : null;
  if (claimedDir && path.dirname(claimedDir) === admin && (await names(path.basename(claimedDir)))) return claimedDir;
  for (const entry of await readdir(admin).catch(() => [] as string[])) {
    if (await names(entry)) return path.join(admin, entry);
  }
  return null;
}

/**
 * A git runner pinned to the worktree at `dir`. A worktree's `.git` file that is missing or names
 * another folder is written again (`gitdir: <admin dir>`), so git's own later commands on it
 * (`worktree remove`) work too.
 * @returns null when git has no such worktree registered.
 */
export async function pinWorktree(repo: Repository, dir: string): Promise<PinnedGit | null> {
  const gitDir = await worktreeGitDir(repo, dir);
  if (gitDir === null) return null;
  if (gitDir !== repo.commonDir) {
    const dotGit = path.join(dir, '.git');
    const content = `gitdir: ${gitDir}\n`;
    const now = await readFile(dotGit, 'utf8').catch(() => null);
    if (now !== content) {
      await rm(dotGit, { recursive: true, force: true });
      await writeFile(dotGit, content);
    }
  }
  return (args, options) => git(dir, ['--git-dir', gitDir, '--work-tree', dir, ...args], options);
}

/**
 * Clears what a process SIGKILLed inside git leaves in a task's worktree: git's own lock of a
 * worktree being added (`locked` reading `initializing`) and the index lock of a commit under way
 * (`index.lock`), both in the worktree's admin folder. Only for a worktree whose attempt is over
 * (a re-run of its task, under the worktrees lock): no git command of ours runs in it then, and an
 * agent's git does not outlive its agent's process tree.
 * @returns what was removed (file names), for the log.
 */
export async function clearInterruptedGit(repo: Repository, dir: string): Promise<string[]> {
  const gitDir = await worktreeGitDir(repo, dir);
  if (gitDir === null || gitDir === repo.commonDir) return [];
  const cleared: string[] = [];
  const locked = path.join(gitDir, 'locked');
  if ((await readFile(locked, 'utf8').catch(() => '')).trim() === 'initializing') {
    await rm(locked, { force: true });
    cleared.push('locked');
  }
  const indexLock = path.join(gitDir, 'index.lock');
  if ((await readFile(indexLock).catch(() => null)) !== null) {
    await rm(indexLock, { force: true });
    cleared.push('index.lock');
  }
  return cleared;
}

/** What {@link collectAgentWork} found. */
export interface AgentWork {
  /** The task branch's tip afterwards: every commit of the agent's, its leftovers committed on top. */
  tip: string;
  /** Whether leftovers were committed. */
  committed: boolean;
  /** Where the agent had moved HEAD (a commit, or `refs/heads/<name>`), when it had: its work there is the task's now. */
  movedFrom: string | null;
}

/** The agent left its branch and has work both there and where it went: nothing is merged. */
export class HeadMovedError extends Error {
  override readonly name = 'HeadMovedError';
}

/**
 * The agent left files under a submodule's path. A worktree has no submodule content (the folder is created empty),
 * and `git add -A` drops files there without a word, so merging would lose them: nothing is merged, the worktree is kept.
 */
export class SubmoduleEditsError extends Error {
  override readonly name = 'SubmoduleEditsError';
}

/**
 * The submodule paths (gitlinks of the worktree's index, mode 160000) under which the worktree holds anything: files
 * the agent wrote there, or a submodule it initialized (its content is another repository's, which the task's branch
 * cannot carry). No command is run inside those folders (their `.git` could name any repository and configuration).
 */
async function submodulePathsInUse(pinned: PinnedGit, dir: string): Promise<string[]> {
  const listed = await pinned(['ls-files', '--stage', '-z']);
  const used: string[] = [];
  for (const entry of listed.stdout.split('\0')) {
    if (!entry.startsWith('160000 ')) continue;
    const file = entry.slice(entry.indexOf('\t') + 1);
    const inside = await readdir(path.join(dir, file)).catch(() => [] as string[]);
    if (inside.length > 0) used.push(file);
  }
  return used;
}

/**
 * Commits everything the agent left in its worktree (`add -A`, then a commit with hooks off, no
 * signing, and the configured identity or the orchestrator's own), on whatever HEAD it left, then
 * makes sure the task branch holds it: an agent that moved HEAD off `branch` (`git checkout
 * --detach`, `git switch -c x`) has the branch moved forward to its HEAD, and HEAD put back on the
 * branch. Every command is pinned to the worktree ({@link pinWorktree}).
 * @throws HeadMovedError when the branch has commits that HEAD does not (work in two places: the
 *   caller keeps the worktree and merges nothing). SubmoduleEditsError when the worktree holds anything under a
 *   submodule's path (checked first, nothing committed). GitError when git fails; Error when git has no
 *   such worktree registered.
 */
export async function collectAgentWork(repo: Repository, dir: string, branch: string, message: string): Promise<AgentWork> {
  const pinned = await pinWorktree(repo, dir);
  if (pinned === null) throw new Error(`git has no worktree registered at ${dir} any more`);
  const submodules = await submodulePathsInUse(pinned, dir);
  if (submodules.length > 0) {
    throw new SubmoduleEditsError(
      `the agent left files under the submodule path${submodules.length > 1 ? 's' : ''} ${submodules.join(', ')}, which a worktree ` +
        `has no content for and git would drop without a word: nothing is merged; the worktree ${dir} is kept as it is ` +
        '(copy the files into the submodule yourself, or run such a task with --isolation none)',
    );
  }
  const committed = await commitAll(pinned, dir, message);
  const ref = `refs/heads/${branch}`;
  const on = (await pinned(['symbolic-ref', '--quiet', 'HEAD'], { ok: [0, 1, 128] })).stdout.trim();
  const head = (await pinned(['rev-parse', '--verify', 'HEAD^{commit}'])).stdout.trim();
  if (on === ref) return { tip: head, committed, movedFrom: null };
  const branchTip = (await resolveCommit(repo.root, ref))!;
  const movedFrom = on || head;
  if (!(await isAncestor(repo.root, branchTip, head))) {
    throw new HeadMovedError(
      `the agent moved its worktree's HEAD off its branch ${branch} (to ${movedFrom}), and there is work on both: ` +
        `nothing is merged; the branch and the worktree ${dir} are kept as they are`,
    );
  }
  await git(repo.root, ['update-ref', '-m', 'dto: take the work the agent committed elsewhere', ref, head, branchTip]);
  await pinned(['symbolic-ref', 'HEAD', ref]);
  return { tip: head, committed, movedFrom };
}

/** `add -A` and a commit when anything is staged; @returns whether a commit was made. */
async function commitAll(pinned: PinnedGit, dir: string, message: string): Promise<boolean> {
  await pinned(['add', '-A']);
  const staged = await pinned(['diff', '--cached', '--quiet'], { ok: [0, 1] });
  if (staged.exitCode === 0) return false;
  const env = await commitIdentity(dir);
  await pinned(['-c', 'core.hooksPath=/dev/null', 'commit', '--quiet', '--no-verify', '--no-gpg-sign', '-m', message], { env });
  return true;
}

/**
 * Changed or new files larger than this (bytes) are left out of a snapshot: each snapshot of a file is a new loose
 * object once its content changed, so a task rewriting a 20 MB artifact wrote about 8x its size in a few minutes
 * and 120 copies in half an hour. A prediction is advice; such files still merge (and conflict) at the end.
 */
export const SNAPSHOT_MAX_FILE_BYTES = 1024 * 1024;

/**
 * A commit of what a worktree holds right now, made without touching it: its files (tracked and
 * new, `.gitignore` honoured, `exclude` left out, changed files over {@link SNAPSHOT_MAX_FILE_BYTES} kept as HEAD
 * has them) are added to a temporary index (`GIT_INDEX_FILE`, so the agent's own index, HEAD and files stay as
 * they are), written as a tree and committed on top of HEAD. Nothing points at the commit: it is a loose object
 * git collects later. Pinned to the worktree, as {@link collectAgentWork}.
 * @param exclude - paths relative to the worktree to leave out (e.g. the copied dependency results).
 * @returns the commit id.
 * @throws GitError when git fails; Error when git has no such worktree registered.
 */
export async function snapshotWorktree(repo: Repository, dir: string, exclude: readonly string[] = []): Promise<string> {
  const pinned = await pinWorktree(repo, dir);
  if (pinned === null) throw new Error(`git has no worktree registered at ${dir}`);
  const index = path.join(os.tmpdir(), `dto-snapshot-${randomUUID()}.index`);
  const env = { GIT_INDEX_FILE: index };
  try {
    await pinned(['read-tree', 'HEAD'], { env });
    const left = exclude.map((p) => `:(exclude)${p}`);
    // What changed against HEAD (tracked) and what is new (untracked, ignored files left out), NUL-separated.
    const changed = await pinned(['diff', '--name-only', '-z', 'HEAD', '--', '.', ...left], { env });
    const added = await pinned(['ls-files', '-z', '--others', '--exclude-standard', '--', '.', ...left], { env });
    const large: string[] = [];
    for (const file of `${changed.stdout}\0${added.stdout}`.split('\0')) {
      if (file === '') continue;
      const info = await lstat(path.join(dir, file)).catch(() => null);
      if (info?.isFile() && info.size > SNAPSHOT_MAX_FILE_BYTES) large.push(`:(exclude,literal)${file}`);
    }
    await pinned(['add', '-A', '--', '.', ...left, ...large], { env });
    const tree = (await pinned(['write-tree'], { env })).stdout.trim();
    const commit = await pinned(['commit-tree', tree, '-p', 'HEAD', '-m', 'snapshot for a conflict prediction'], {
      env: { ...env, ...(await commitIdentity(dir)) },
    });
    return commit.stdout.trim();
  } finally {
    await rm(index, { force: true });
  }
}
