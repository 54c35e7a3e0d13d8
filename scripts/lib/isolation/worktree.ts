// The repository an isolated session works in: its branch names, the git-level lock, worktrees, commits and diff stats.
import { cp, lstat, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OrchestratorError } from '../core/errors.ts';
import { withLock } from '../state/lock.ts';
import { git, GitError, resolveCommit } from './git.ts';

/** Default first component of every branch the orchestrator creates (`dto/<session>/...`). */
export const DEFAULT_BRANCH_PREFIX = 'dto';

/** Folder, relative to the repository's top level, holding one folder of worktrees per session. */
export const WORKTREES_DIR = '.agent/worktrees';

/**
 * Longest wait for a git lock of ours (ms): a merge may run
 * a `--merge_check` gate of several minutes, and merges are serialised, so waiters wait long. The
 * lock is never taken from a live holder (lock.ts).
 */
export const GIT_LOCK_WAIT_MS = 6 * 3600_000;

/** The repository of an isolated session. */
export interface Repository {
  /** The main work tree's top level (absolute): the user's checkout, never written to by isolation. */
  root: string;
  /** `git rev-parse --git-common-dir`, absolute. */
  commonDir: string;
  /** Where the worktrees of every session live: `<root>/.agent/worktrees`. */
  worktreesDir: string;
  /** The lock file serialising worktree adds and removals across every process (held for milliseconds). */
  lockPath: string;
  /** The lock file serialising merges onto integration branches (held through a `--merge_check` gate). */
  mergeLockPath: string;
}

/**
 * Finds the git repository `cwd` is in and checks it can be isolated: it must have a commit (the
 * integration branch starts from HEAD).
 * @throws OrchestratorError `usage` when `cwd` is not in a git work tree, git is missing, or HEAD has no commit.
 */
export async function openRepository(cwd: string): Promise<Repository> {
  let root: string;
  let commonDir: string;
  try {
    const result = await git(cwd, ['rev-parse', '--show-toplevel', '--git-common-dir']);
    [root, commonDir] = result.stdout.split('\n') as [string, string];
  } catch (error) {
    const reason = error instanceof GitError ? error.stderr : String(error);
    throw new OrchestratorError(
      'usage',
      `--isolation worktree needs a git repository, but ${cwd} is not inside one (${reason.split('\n')[0]}). ` +
        'Run it from your repository, run `git init` and commit first, or use --isolation none.',
      { cause: error },
    );
  }
  if ((await resolveCommit(root, 'HEAD')) === null) {
    throw new OrchestratorError(
      'usage',
      `--isolation worktree starts every task from HEAD, but the repository ${root} has no commit yet. Commit once, or use --isolation none.`,
    );
  }
  const worktreesDir = path.join(root, WORKTREES_DIR);
  return {
    root,
    commonDir: path.resolve(root, commonDir),
    worktreesDir,
    lockPath: path.join(worktreesDir, 'worktrees.lock'),
    mergeLockPath: path.join(worktreesDir, 'merge.lock'),
  };
}

/**
 * Checks that `part` can be one component of a branch name (git check-ref-format): task names and
 * session ids already match `[A-Za-z0-9._-]`, which leaves `..`, a trailing `.` and `.lock`.
 * @throws OrchestratorError `usage` naming the value and what to do.
 */
export function checkRefComponent(part: string, what: string): string {
  if (part === '' || part.startsWith('.') || part.includes('..') || part.endsWith('.') || part.endsWith('.lock')) {
    throw new OrchestratorError(
      'usage',
      `${what} ${JSON.stringify(part)} cannot be part of a git branch name (no "..", no leading or trailing ".", no ".lock" ending). ` +
        'Rename it, or use --isolation none.',
    );
  }
  return part;
}

/** The branch names of one session: `<prefix>/<session>/integration` and `<prefix>/<session>/tasks/<task>`. */
export interface SessionBranches {
  integration: string;
  task(name: string): string;
}

/**
 * The branch names of a session. Task branches live under `tasks/` so a task may be named
 * `integration` without clashing with the integration branch.
 * @throws OrchestratorError `usage` when the prefix or session id cannot be part of a branch name.
 */
export function sessionBranches(sessionId: string, prefix = DEFAULT_BRANCH_PREFIX): SessionBranches {
  checkRefComponent(prefix, 'The branch prefix');
  checkRefComponent(sessionId, 'The session id');
  const base = `${prefix}/${sessionId}`;
  return {
    integration: `${base}/integration`,
    task: (name) => `${base}/tasks/${checkRefComponent(name, 'The task name')}`,
  };
}

/**
 * Runs `fn` under one of the repository's git locks (lock files of our own, lock.ts: owner-stamped,
 * never taken from a live holder):
 * - `worktrees` (default): worktree adds and removals, so they never race on `.git/config.lock`
 *   (field notes: 6 of 8 simultaneous adds failed); held for milliseconds;
 * - `merge`: merges onto integration branches, one at a time, held through a `--merge_check` gate.
 *   A merge takes `worktrees` inside it (for the gate's scratch worktree), never the other way
 *   round, so the two never deadlock, and a long gate never delays the start of other tasks.
 * The worktrees folder is created with a `.gitignore` of `*`, so the user's `git status` never
 * lists the worktrees.
 */
export async function withGitLock<T>(repo: Repository, fn: () => Promise<T>, kind: 'worktrees' | 'merge' = 'worktrees'): Promise<T> {
  await mkdir(repo.worktreesDir, { recursive: true });
  await writeFile(path.join(repo.worktreesDir, '.gitignore'), '*\n', { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  return withLock(kind === 'merge' ? repo.mergeLockPath : repo.lockPath, () => fn(), { waitMs: GIT_LOCK_WAIT_MS });
}

/**
 * Claims the session id's branch and worktree names (`<prefix>/<session>/...`, `<worktrees>/<session>/`)
 * for the session whose state is `statePath`, in `<worktrees>/<session>/owner`: two sessions with one
 * id (each with its own `--session_dir`) would share them, and the second would take over the first
 * one's live worktrees. A claim whose state file no longer exists is taken over. Call it under
 * {@link withGitLock}, or before anything is registered (a look only, with `look`).
 * @throws OrchestratorError `usage` naming the other session's folder and what to do.
 */
export async function claimSessionId(repo: Repository, sessionId: string, statePath: string, look = false): Promise<void> {
  const file = path.join(repo.worktreesDir, sessionId, 'owner');
  const mine = path.resolve(statePath);
  const owner = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (owner === mine) return;
  if (owner !== '' && (await lstat(owner).catch(() => null))) {
    throw new OrchestratorError(
      'usage',
      `The session id ${JSON.stringify(sessionId)} is already used in this repository by the session at ${path.dirname(owner)} ` +
        `(its branches ${DEFAULT_BRANCH_PREFIX}/${sessionId}/... and worktrees). Give this run another --session_id, ` +
        'or run it with that --session_dir.',
    );
  }
  if (look) return;
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${mine}\n`);
}

/**
 * Creates the integration branch from the user's HEAD unless it exists (a compare-and-swap against
 * "no such ref", so two processes never both create it).
 * @returns the branch's base (HEAD when created, else the existing branch's first commit is not
 *   known here: the caller keeps the base recorded at creation) and its tip.
 */
export async function ensureIntegrationBranch(repo: Repository, branch: string): Promise<{ created: boolean; tip: string }> {
  const ref = `refs/heads/${branch}`;
  const existing = await resolveCommit(repo.root, ref);
  if (existing) return { created: false, tip: existing };
  const head = (await resolveCommit(repo.root, 'HEAD'))!;
  const made = await git(repo.root, ['update-ref', ref, head, ''], { ok: [0, 1, 128] });
  if (made.exitCode === 0) return { created: true, tip: head };
  const now = await resolveCommit(repo.root, ref);
  if (now) return { created: false, tip: now };
  throw new GitError(['update-ref', ref, head, ''], made.exitCode, made.stderr);
}

/**
 * git's complaint about another worktree caught half-made: `git worktree add` writes the entry's
 * files (`gitdir`, `commondir`, `HEAD`) one after the other, and `git worktree list` run meanwhile
 * fails with "failed to read .git/worktrees/<name>/commondir" (seen with 8 tasks adding worktrees at once).
 */
const HALF_MADE_ENTRY = /failed to read .*worktrees\/[^/]+\/(commondir|gitdir|HEAD)/;

/**
 * Whether `dir` is a registered worktree of the repository (`git worktree list --porcelain`). An
 * entry of another worktree that is being added at that moment is waited for (up to about 2 s).
 * @throws GitError when git keeps failing.
 */
export async function isWorktree(repo: Repository, dir: string): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      const list = await git(repo.root, ['worktree', 'list', '--porcelain']);
      return list.stdout.split('\n').some((line) => line === `worktree ${dir}`);
    } catch (error) {
      if (!(error instanceof GitError && HALF_MADE_ENTRY.test(error.stderr)) || attempt >= 20) throw error;
      await sleep(50 + Math.random() * 50);
    }
  }
}

/**
 * Adds a worktree at `dir` on a new branch `branch` starting at commit `base`:
 * `git worktree add --no-track -b <branch> <dir> <base>`, with hooks off (`core.hooksPath=/dev/null`).
 * Call it under {@link withGitLock}.
 * @throws GitError when git refuses (the branch or folder already exists).
 */
export async function addWorktree(repo: Repository, dir: string, branch: string, base: string): Promise<void> {
  await mkdir(path.dirname(dir), { recursive: true });
  // Hooks off, as for the orchestrator's commits: a failing post-checkout hook (husky, LFS without git-lfs) would fail every task.
  await git(repo.root, ['-c', 'core.hooksPath=/dev/null', 'worktree', 'add', '--quiet', '--no-track', '-b', branch, dir, base]);
}

/**
 * Removes a worktree (`git worktree remove`, `--force` only when asked) and prunes stale entries.
 * Call it under {@link withGitLock}. A folder that is not a worktree any more is only pruned.
 */
export async function removeWorktree(repo: Repository, dir: string, options: { force?: boolean } = {}): Promise<void> {
  if (await isWorktree(repo, dir)) await git(repo.root, ['worktree', 'remove', ...(options.force ? ['--force'] : []), dir]);
  await git(repo.root, ['worktree', 'prune']);
}

/** What a task changed: files, inserted and deleted lines (binary files count as files only). */
export interface DiffStat {
  files: number;
  insertions: number;
  deletions: number;
  /** The changed paths (at most 50, in git's order). */
  paths: string[];
}

/** The diff stat from `base` to `tip` (`git diff --numstat`). */
export async function diffStat(cwd: string, base: string, tip: string): Promise<DiffStat> {
  const result = await git(cwd, ['diff', '--numstat', '-z', base, tip]);
  const stat: DiffStat = { files: 0, insertions: 0, deletions: 0, paths: [] };
  // -z: "<ins>\t<del>\t<path>\0", or for renames "<ins>\t<del>\t\0<from>\0<to>\0".
  const parts = result.stdout.split('\0');
  for (let i = 0; i < parts.length; i++) {
    const match = /^(-|\d+)\t(-|\d+)\t(.*)$/s.exec(parts[i]!);
    if (!match) continue;
    let file = match[3]!;
    if (file === '') {
      file = parts[i + 2] ?? '';
      i += 2;
    }
    stat.files += 1;
    stat.insertions += match[1] === '-' ? 0 : Number(match[1]);
    stat.deletions += match[2] === '-' ? 0 : Number(match[2]);
    if (stat.paths.length < 50) stat.paths.push(file);
  }
  return stat;
}

/** The include list: a `.gitignore`-syntax file at the repository's top level (the convention Claude Code, Codex and others share). */
export const INCLUDE_FILE = '.worktreeinclude';

/**
 * Copies the git-ignored files a task needs (`.env`, a local config, `node_modules`) from the user's
 * checkout into a new worktree, as listed in {@link INCLUDE_FILE}: only paths that match a pattern
 * AND that git ignores are copied (a tracked file never is), never through a symbolic link at the
 * top, never from `.agent/` (the orchestrator's own folder). Copied files stay ignored in the
 * worktree, so they are never committed. Without the file, nothing is copied.
 * @returns the copied paths (relative; folders end with `/`).
 */
export async function copyIncludedFiles(repo: Repository, dir: string): Promise<string[]> {
  const list = path.join(repo.root, INCLUDE_FILE);
  const exists = await lstat(list).catch(() => null);
  if (!exists?.isFile()) return [];
  const matched = await git(repo.root, ['ls-files', '-z', '--others', '--ignored', '--directory', `--exclude-from=${list}`]);
  if (matched.stdout === '') return [];
  const ignored = await git(repo.root, ['check-ignore', '-z', '--stdin'], { input: matched.stdout, ok: [0, 1] });
  const copied: string[] = [];
  for (const entry of ignored.stdout.split('\0').filter((item) => item !== '')) {
    if (entry === '.agent/' || entry.startsWith('.agent/') || entry === '.git' || entry.startsWith('.git/')) continue;
    const from = path.join(repo.root, entry);
    const stat = await lstat(from).catch(() => null);
    if (!stat || stat.isSymbolicLink()) continue;
    const to = path.join(dir, entry);
    await mkdir(path.dirname(to), { recursive: true });
    await cp(from, to, { recursive: true, verbatimSymlinks: true, errorOnExist: false, force: false });
    copied.push(entry);
  }
  return copied;
}
