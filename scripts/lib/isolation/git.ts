// A thin wrapper over the git CLI (execa, no shell): one call, its output, and one error type naming the command.

/** A git command that exited with a code the caller did not accept. */
export class GitError extends Error {
  /** The arguments given to git (never a shell string). */
  readonly args: readonly string[];
  /** git's exit code, or null when it could not be started or was killed. */
  readonly exitCode: number | null;
  /** git's standard error, trimmed. */
  readonly stderr: string;
  constructor(args: readonly string[], exitCode: number | null, stderr: string, cause?: unknown) {
    super(`git ${args.join(' ')} failed (exit ${exitCode ?? 'none'}): ${stderr.trim() || 'no message'}`, { cause });
    this.name = 'GitError';
    this.args = args;
    this.exitCode = exitCode;
    this.stderr = stderr.trim();
  }
}

/** Options of {@link git}. */
export interface GitOptions {
  /** Exit codes that are answers, not failures (e.g. 1 for `merge-tree` conflicts). Default `[0]`. */
  ok?: readonly number[];
  /** Extra environment (the author identity of commits). */
  env?: Record<string, string>;
  /** Standard input. */
  input?: string;
}

/** What a git command printed. */
export interface GitResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * Runs `git <args>` in `cwd` (no shell: every argument is passed as is), with prompts off and the C
 * locale, so messages can be parsed and a missing credential never waits for a terminal.
 *
 * @param cwd - the directory git runs in (a work tree, or any folder of the repository).
 * @param args - git's arguments.
 * @returns stdout (trailing newline removed), stderr and the exit code.
 * @throws GitError when git cannot be started or exits with a code not in `options.ok`.
 * @example const { stdout: head } = await git(repo, ['rev-parse', 'HEAD']);
 */
export async function git(cwd: string, args: readonly string[], options: GitOptions = {}): Promise<GitResult> {
  const ok = options.ok ?? [0];
  // Loaded on first use: a start that only registers a task never runs git.
  const { execa } = await import('execa');
  let result;
  try {
    result = await execa('git', args, {
      cwd,
      reject: false,
      stripFinalNewline: true,
      input: options.input,
      env: { GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', GIT_OPTIONAL_LOCKS: '0', ...options.env },
    });
  } catch (error) {
    throw new GitError(args, null, (error as Error).message, error);
  }
  const exitCode = result.exitCode ?? null;
  if (exitCode === null || !ok.includes(exitCode)) throw new GitError(args, exitCode, String(result.stderr ?? result.message ?? ''));
  return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode };
}

/** The commit a revision names (`git rev-parse --verify <rev>^{commit}`), or null when it names none. */
export async function resolveCommit(cwd: string, rev: string): Promise<string | null> {
  const result = await git(cwd, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { ok: [0, 1, 128] });
  return result.exitCode === 0 ? result.stdout.trim() : null;
}

/** Whether commit `ancestor` is reachable from `descendant` (`git merge-base --is-ancestor`). */
export async function isAncestor(cwd: string, ancestor: string, descendant: string): Promise<boolean> {
  const result = await git(cwd, ['merge-base', '--is-ancestor', ancestor, descendant], { ok: [0, 1] });
  return result.exitCode === 0;
}

/**
 * The author and committer identity for commits the orchestrator makes: none when git already has
 * one (`user.name` and `user.email` configured, or the `GIT_AUTHOR_*`/`GIT_COMMITTER_*` variables
 * set), else the fixed "distributed-task-orchestrator" identity, so a commit never fails with
 * "Please tell me who you are".
 */
export async function commitIdentity(cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Record<string, string>> {
  const configured = async (key: string) => (await git(cwd, ['config', '--get', key], { ok: [0, 1] })).stdout.trim() !== '';
  const name = Boolean(env.GIT_AUTHOR_NAME && env.GIT_COMMITTER_NAME) || (await configured('user.name'));
  const email = Boolean(env.GIT_AUTHOR_EMAIL && env.GIT_COMMITTER_EMAIL) || (await configured('user.email'));
  if (name && email) return {};
  return {
    GIT_AUTHOR_NAME: 'distributed-task-orchestrator',
    GIT_AUTHOR_EMAIL: 'distributed-task-orchestrator@localhost',
    GIT_COMMITTER_NAME: 'distributed-task-orchestrator',
    GIT_COMMITTER_EMAIL: 'distributed-task-orchestrator@localhost',
  };
}
