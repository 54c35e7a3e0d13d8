// Agents that misuse git in their worktree: move its HEAD, delete its `.git` file. Their work is never lost, and the
// orchestrator's git commands never reach the user's checkout.
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AgentContext, AgentExecutor } from '../../scripts/lib/agents/agent-types.ts';
import { git } from '../../scripts/lib/isolation/git.ts';
import { withWorktreeIsolation } from '../../scripts/lib/isolation/isolated-executor.ts';
import { openRepository } from '../../scripts/lib/isolation/worktree.ts';
import { readState, updateState } from '../../scripts/lib/state/state-store.ts';
import { openSession } from '../../scripts/lib/scheduling/transitions.ts';
import { resolveSessionPaths } from '../../scripts/lib/state/session-paths.ts';
import { agentContext } from '../support/agent-context.ts';
import { start } from '../support/project.ts';
import { waitForState } from '../support/wait-state.ts';
import { TEST_IDENTITY, tempRepo } from './git-repo.ts';

/** The context the task lifecycle gives an executor (session S1, attempt 1). */
const context = (cwd: string, taskName: string): AgentContext =>
  agentContext(cwd, { taskName, goal: `do ${taskName}`, session_id: 'S1', resultPath: path.join(cwd, `.agent/results/${taskName}.md`) });

/** An agent that runs `steps` (git commands and file writes) in its worktree, then reports success. */
function agent(steps: Array<string[] | { write: string; text: string } | { remove: string }>): AgentExecutor {
  return async (ctx) => {
    for (const step of steps) {
      if (Array.isArray(step)) await git(ctx.cwd, step, { env: TEST_IDENTITY });
      else if ('write' in step) await writeFile(path.join(ctx.cwd, step.write), step.text);
      else await rm(path.join(ctx.cwd, step.remove), { force: true });
    }
    return { status: 'completed', body: 'done' };
  };
}

describe('an agent that moves its worktree HEAD', () => {
  for (const [how, move] of [
    ['git checkout --detach', ['checkout', '--quiet', '--detach']],
    ['git switch -c', ['switch', '--quiet', '-c', 'agent-own']],
  ] as const) {
    it(`(${how}) has its commit and its leftovers merged, not dropped as "already merged"`, async () => {
      const repo = await tempRepo();
      const before = await repo.snapshot();
      const executor = withWorktreeIsolation(
        agent([
          [...move],
          { write: 'committed.txt', text: 'by the agent\n' },
          ['add', 'committed.txt'],
          ['commit', '--quiet', '-m', 'agent commit'],
          { write: 'left.txt', text: 'left over\n' },
        ]),
        { repo: await openRepository(repo.dir) },
      );
      const outcome = await executor(context(repo.dir, 'mover'));
      expect(outcome.status, outcome.error ?? undefined).toBe('completed');
      expect(outcome.record?.merge).toMatchObject({ status: 'merged', diff_stat: { files: 2 } });
      const tree = (await repo.git(['ls-tree', '-r', '--name-only', 'dto/S1/integration'])).split('\n');
      expect(tree.sort()).toEqual(['.gitignore', 'README.md', 'committed.txt', 'left.txt']);
      expect(await repo.git(['log', '--format=%s', 'dto/S1/integration'])).toContain('agent commit');
      expect(await repo.extraWorktrees()).toEqual([]);
      expect(await repo.snapshot()).toEqual(before);
    });
  }

  it('with work on its own branch too, is not merged: the task fails naming both, and the worktree is kept', async () => {
    const repo = await tempRepo();
    const executor = withWorktreeIsolation(
      agent([
        { write: 'a.txt', text: 'on the task branch\n' },
        ['add', 'a.txt'],
        ['commit', '--quiet', '-m', 'on the task branch'],
        ['switch', '--quiet', '--detach', 'HEAD~1'],
        { write: 'b.txt', text: 'elsewhere\n' },
        ['add', 'b.txt'],
        ['commit', '--quiet', '-m', 'elsewhere'],
      ]),
      { repo: await openRepository(repo.dir) },
    );
    const outcome = await executor(context(repo.dir, 'split'));
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toMatch(/moved its worktree's HEAD off its branch dto\/S1\/tasks\/split .*work on both/);
    const worktree = outcome.record?.merge?.worktree;
    expect(worktree).toBeTruthy();
    expect(existsSync(path.join(worktree!, 'b.txt'))).toBe(true);
    expect(await repo.git(['log', '--format=%s', 'dto/S1/tasks/split'])).toContain('on the task branch');
    expect(await repo.git(['rev-parse', '--verify', '--quiet', 'dto/S1/integration^{commit}']).catch(() => '')).not.toBe('');
    expect(await repo.git(['log', '--format=%s', 'dto/S1/integration'])).not.toContain('elsewhere');
  });
});

describe('an agent that writes under a submodule path (a worktree has no submodule content)', () => {
  it('merges nothing and keeps the worktree with the files, saying why, instead of dropping them silently', async () => {
    const lib = await tempRepo({ 'lib.txt': 'lib\n' });
    const repo = await tempRepo();
    await repo.git(['-c', 'protocol.file.allow=always', 'submodule', 'add', '--quiet', lib.dir, 'vendor/lib']);
    await repo.git(['commit', '--quiet', '-m', 'add a submodule']);
    const before = await repo.snapshot();
    const executor = withWorktreeIsolation(
      agent([
        { write: 'vendor/lib/patch.txt', text: 'an edit the submodule should carry\n' },
        { write: 'own.txt', text: 'an ordinary edit\n' },
      ]),
      { repo: await openRepository(repo.dir) },
    );
    const outcome = await executor(context(repo.dir, 'sub'));
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toMatch(
      /^the agent left files under the submodule path vendor\/lib, .*nothing is merged; the worktree .* is kept/,
    );
    const worktree = outcome.record!.merge!.worktree!;
    expect(outcome.record!.merge).toMatchObject({ status: 'not_merged', commit: null });
    // The files are where the agent left them, and nothing reached the integration branch.
    expect(existsSync(path.join(worktree, 'vendor/lib/patch.txt'))).toBe(true);
    expect(await repo.git(['ls-tree', '-r', '--name-only', 'dto/S1/integration'])).not.toContain('own.txt');
    expect(await repo.extraWorktrees()).toEqual([`worktree ${worktree}`]);
    expect(await repo.snapshot()).toEqual(before);
  });
});

describe("an agent that deletes its worktree's .git file", () => {
  it("never makes the orchestrator commit in the user's checkout; its work is merged", async () => {
    const repo = await tempRepo();
    // The user's own uncommitted work, which must stay as it is.
    await writeFile(path.join(repo.dir, 'README.md'), '# test\nmine, not committed\n');
    await writeFile(path.join(repo.dir, 'notes.txt'), 'my notes\n');
    const before = await repo.snapshot();
    const executor = withWorktreeIsolation(agent([{ write: 'feature.txt', text: 'feature\n' }, { remove: '.git' }]), {
      repo: await openRepository(repo.dir),
    });
    const outcome = await executor(context(repo.dir, 'unlinked'));
    expect(outcome.status, outcome.error ?? undefined).toBe('completed');
    expect(outcome.record?.merge).toMatchObject({ status: 'merged', diff_stat: { files: 1 } });
    expect(await repo.snapshot()).toEqual(before);
    expect(await repo.git(['log', '--format=%s', 'main'])).toBe('initial');
    const tree = (await repo.git(['ls-tree', '-r', '--name-only', 'dto/S1/integration'])).split('\n');
    expect(tree.sort()).toEqual(['.gitignore', 'README.md', 'feature.txt']);
    expect(await repo.extraWorktrees()).toEqual([]);
  });
});

describe('two sessions with the same --session_id in one repository', () => {
  it('the second is refused before it registers anything; the first keeps its worktree and merges all its work', async () => {
    const repo = await tempRepo();
    const mock = (dir: string, ...args: string[]) =>
      start(
        'spawn-agent-mock',
        ['--task_name', 'edit', '--goal', 'edit', '--session_id', 'same', '--session_dir', dir, '--isolation', 'worktree', ...args],
        repo.dir,
      );
    const first = mock('.agent/one', '--delay_ms', '4000', '--write', 'one.txt=from the first session');
    const firstState = async () => await readState(resolveSessionPaths({ sessionDir: '.agent/one', cwd: repo.dir })).catch(() => null);
    await waitForState({ state: firstState }, (s) => s.tasks.edit?.status === 'running');
    const second = await mock('.agent/two', '--delay_ms', '10', '--write', 'two.txt=from the second', '--wait');
    expect(second.exitCode, second.all).toBe(2);
    expect(second.stderr).toMatch(/session id "same" is already used in this repository by the session at .*\.agent\/one/);
    expect(existsSync(path.join(repo.dir, '.agent/two/latest.yaml'))).toBe(false);
    const done = await first;
    expect(done.exitCode, done.all).toBe(0);
    expect(await repo.git(['show', 'dto/same/integration:one.txt'])).toBe('from the first session');
    expect(await repo.extraWorktrees()).toEqual([]);
  });
});

describe('a repository whose post-checkout hook fails (a husky hook, an LFS hook without git-lfs)', () => {
  it('still gets its worktrees: the orchestrator checks out with hooks off, and the agent works', async () => {
    const repo = await tempRepo();
    const hook = path.join(repo.dir, '.git/hooks/post-checkout');
    await writeFile(hook, '#!/bin/sh\necho "this hook fails" >&2\nexit 1\n', { mode: 0o755 });
    const executor = withWorktreeIsolation(agent([{ write: 'hooked.txt', text: 'done\n' }]), { repo: await openRepository(repo.dir) });
    const outcome = await executor(context(repo.dir, 'hooked'));
    expect(outcome.status, outcome.error ?? undefined).toBe('completed');
    expect(await repo.git(['show', 'dto/S1/integration:hooked.txt'])).toBe('done');
  });
});

describe('a worktree left by a run SIGKILLed inside git (locked "initializing", a stale index.lock)', () => {
  it('does not fail the task for good: the next attempt clears it and runs', async () => {
    const repo = await tempRepo();
    const opened = await openRepository(repo.dir);
    const failing: AgentExecutor = async (ctx) => {
      await writeFile(path.join(ctx.cwd, 'half.txt'), 'half\n');
      return { status: 'failed', error: 'killed', body: '' };
    };
    expect((await withWorktreeIsolation(failing, { repo: opened })(context(repo.dir, 'killed'))).status).toBe('failed');
    // What a SIGKILL leaves: git's own lock of a worktree being added, and the index lock of a commit under way.
    const admin = path.join(repo.dir, '.git/worktrees/killed');
    expect(existsSync(admin)).toBe(true);
    await writeFile(path.join(admin, 'locked'), 'initializing');
    await writeFile(path.join(admin, 'index.lock'), '');
    const again = withWorktreeIsolation(agent([{ write: 'whole.txt', text: 'whole\n' }]), { repo: opened });
    const outcome = await again({ ...context(repo.dir, 'killed'), attempt: 2 });
    expect(outcome.status, outcome.error ?? undefined).toBe('completed');
    expect(await repo.git(['show', 'dto/S1/integration:whole.txt'])).toBe('whole');
    expect(await repo.extraWorktrees()).toEqual([]);
  });
});

describe('an integration branch deleted mid-run', () => {
  it('is restored at the last recorded tip: a later task starts from the earlier merges and lands on them', async () => {
    const repo = await tempRepo();
    const opened = await openRepository(repo.dir);
    const paths = repo.paths;
    await updateState(paths, (tx) => void openSession(tx, { sessionId: 'S1' }));
    const first = await withWorktreeIsolation(agent([{ write: 'one.txt', text: 'one\n' }]), { repo: opened, paths })(
      context(repo.dir, 'one'),
    );
    expect(first.status, first.error ?? undefined).toBe('completed');
    const recorded = (await repo.state())!.integration!;
    await repo.git(['branch', '-D', 'dto/S1/integration']);
    let seen: string[] = [];
    const reader: AgentExecutor = async (ctx) => {
      seen = (await git(ctx.cwd, ['ls-files'])).stdout.split('\n');
      await writeFile(path.join(ctx.cwd, 'two.txt'), 'two\n');
      return { status: 'completed', body: 'done' };
    };
    const second = await withWorktreeIsolation(reader, { repo: opened, paths })(context(repo.dir, 'two'));
    expect(second.status, second.error ?? undefined).toBe('completed');
    expect(seen).toContain('one.txt');
    const tree = (await repo.git(['ls-tree', '-r', '--name-only', 'dto/S1/integration'])).split('\n');
    expect(tree.sort()).toEqual(['.gitignore', 'README.md', 'one.txt', 'two.txt']);
    expect(await repo.git(['merge-base', '--is-ancestor', recorded.tip, 'dto/S1/integration']).then(() => true)).toBe(true);
  });
});
