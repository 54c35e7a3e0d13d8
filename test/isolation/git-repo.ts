// Test helper: a temporary git repository with one commit, and small git queries on it.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { git } from '../../scripts/lib/isolation/git.ts';
import { tempProject } from '../support/project.ts';

/** The identity test commits are made with (no global git config is assumed). */
export const TEST_IDENTITY = {
  GIT_AUTHOR_NAME: 'Test User',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test User',
  GIT_COMMITTER_EMAIL: 'test@example.com',
};

/**
 * A temporary project that is a git repository on branch `main` with one commit (`README.md`, and a
 * `.gitignore` listing `.agent/`, as a user of the skill would have it).
 */
export async function tempRepo(files: Record<string, string> = {}) {
  const project = await tempProject('dto-git-');
  const run = (args: string[]) => git(project.dir, args, { env: TEST_IDENTITY });
  await run(['init', '--quiet', '--initial-branch', 'main']);
  await writeFile(path.join(project.dir, 'README.md'), '# test\n');
  await writeFile(path.join(project.dir, '.gitignore'), '.agent/\n');
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(project.dir, file), text);
  await run(['add', '-A']);
  await run(['commit', '--quiet', '-m', 'initial']);
  return {
    ...project,
    git: async (args: string[]) => (await run(args)).stdout,
    /** HEAD, the current branch and `git status --porcelain`: what must not change. */
    snapshot: async () => ({
      head: (await run(['rev-parse', 'HEAD'])).stdout,
      branch: (await run(['symbolic-ref', 'HEAD'])).stdout,
      status: (await run(['status', '--porcelain', '--untracked-files=all'])).stdout,
    }),
    /** The registered worktrees other than the main one. */
    extraWorktrees: async () =>
      (await run(['worktree', 'list', '--porcelain'])).stdout
        .split('\n')
        .filter((line) => line.startsWith('worktree '))
        .slice(1),
  };
}
