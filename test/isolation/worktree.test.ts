import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { writeFile, mkdir, symlink } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  addWorktree,
  checkRefComponent,
  copyIncludedFiles,
  diffStat,
  isWorktree,
  openRepository,
  sessionBranches,
  withGitLock,
} from '../../scripts/lib/isolation/worktree.ts';
import { tempProject } from '../support/project.ts';
import { tempRepo } from './git-repo.ts';

describe('worktrees of an isolated session', () => {
  it("answers whether a folder is a worktree while another task's worktree is half made (git worktree add in progress)", async () => {
    const repo = await tempRepo({ 'a.txt': 'a\n' });
    const opened = await openRepository(repo.dir);
    const dir = path.join(opened.worktreesDir, 'S', 'trees', 'T');
    await addWorktree(opened, dir, 'dto/S/tasks/T', 'HEAD');
    // What `git worktree add` has written a moment in: the entry's gitdir, and its commondir created but still empty.
    // `git worktree list` fails on it ("failed to read .git/worktrees/U/commondir: Success"), which once failed a task's
    // merge (CI, 8 tasks adding worktrees at once).
    const entry = path.join(repo.dir, '.git', 'worktrees', 'U');
    await mkdir(entry, { recursive: true });
    await writeFile(path.join(entry, 'gitdir'), `${path.join(opened.worktreesDir, 'S', 'trees', 'U')}/.git\n`);
    await writeFile(path.join(entry, 'commondir'), '');
    const finished = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await writeFile(path.join(entry, 'commondir'), '../..\n');
      await writeFile(path.join(entry, 'HEAD'), `${'0'.repeat(40)}\n`);
    })();
    expect(await isWorktree(opened, dir)).toBe(true);
    await finished;
  });

  it('copies only listed AND ignored files into a new worktree: never a tracked one, never a top-level symlink, never .agent/', async () => {
    const repo = await tempRepo({
      '.gitignore': '.agent/\n.env\nnode_modules/\nlink.env\n',
      '.worktreeinclude': '.env\nnode_modules/\nREADME.md\nlink.env\n.agent/\n',
    });
    const outside = await tempProject();
    await writeFile(path.join(repo.dir, '.env'), 'A=1\n');
    await mkdir(path.join(repo.dir, 'node_modules', 'pkg'), { recursive: true });
    await writeFile(path.join(repo.dir, 'node_modules', 'pkg', 'index.js'), 'module.exports = 1;\n');
    await symlink(path.join(outside.dir, 'x'), path.join(repo.dir, 'link.env'));
    await mkdir(path.join(repo.dir, '.agent'), { recursive: true });
    await writeFile(path.join(repo.dir, '.agent', 'private.txt'), 'no');
    const opened = await openRepository(repo.dir);
    const dir = path.join(opened.worktreesDir, 'S', 'trees', 'T');
    await addWorktree(opened, dir, 'dto/S/tasks/T', 'HEAD');
    expect((await copyIncludedFiles(opened, dir)).sort()).toEqual(['.env', 'node_modules/']);
    expect(await readFile(path.join(dir, '.env'), 'utf8')).toBe('A=1\n');
    expect(await readFile(path.join(dir, 'node_modules/pkg/index.js'), 'utf8')).toBe('module.exports = 1;\n');
    expect(existsSync(path.join(dir, 'link.env'))).toBe(false);
    expect(existsSync(path.join(dir, '.agent'))).toBe(false);
    expect(await readFile(path.join(dir, 'README.md'), 'utf8')).toBe('# test\n');
  });

  it('names branches <prefix>/<session>/integration and <prefix>/<session>/tasks/<task>, so a task may be called "integration"', () => {
    const branches = sessionBranches('S-1');
    expect(branches.integration).toBe('dto/S-1/integration');
    expect(branches.task('integration')).toBe('dto/S-1/tasks/integration');
  });

  it.each(['a..b', 'x.lock', 'end.'])('refuses a task name git cannot take as a branch component: %s', (name) => {
    expect(() => checkRefComponent(name, 'The task name')).toThrow(`The task name "${name}" cannot be part of a git branch name`);
  });

  it('refuses a repository without a commit, saying what to do', async () => {
    const project = await tempProject();
    const { git } = await import('../../scripts/lib/isolation/git.ts');
    await git(project.dir, ['init', '--quiet']);
    await expect(openRepository(project.dir)).rejects.toThrow('has no commit yet. Commit once, or use --isolation none.');
  });

  it('counts files, insertions and deletions between two commits', async () => {
    const repo = await tempRepo({ 'a.txt': 'one\ntwo\n' });
    const base = await repo.git(['rev-parse', 'HEAD']);
    await writeFile(path.join(repo.dir, 'a.txt'), 'one\nTWO\nthree\n');
    await writeFile(path.join(repo.dir, 'b.bin'), Buffer.from([0, 1, 2, 0]));
    await repo.git(['add', '-A']);
    await repo.git(['commit', '-q', '-m', 'change']);
    const stat = await diffStat(repo.dir, base, 'HEAD');
    expect(stat).toEqual({ files: 2, insertions: 2, deletions: 1, paths: ['a.txt', 'b.bin'] });
  });

  it('a merge holding its lock (a long --merge_check) never holds up the worktree of a task starting meanwhile', async () => {
    const repo = await tempRepo();
    const opened = await openRepository(repo.dir);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const merging = withGitLock(
      opened,
      async () => {
        entered();
        await held;
      },
      'merge',
    );
    await inside;
    const dir = path.join(opened.worktreesDir, 'S', 'trees', 'late');
    await withGitLock(opened, () => addWorktree(opened, dir, 'dto/S/tasks/late', 'HEAD'));
    expect(existsSync(path.join(dir, 'README.md'))).toBe(true);
    release();
    await merging;
  });
});
