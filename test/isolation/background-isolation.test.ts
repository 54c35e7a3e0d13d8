import { describe, expect, it } from 'vitest';
import { run, start } from '../support/project.ts';
import { tempRepo } from './git-repo.ts';

describe('spawn-agent-mock --isolation worktree (background mode)', () => {
  it('8 agents started at once (8 workers) each edit in a worktree of their own; all merge, a dependant sees its dependency, the user tree is untouched', async () => {
    const repo = await tempRepo();
    const before = await repo.snapshot();
    const common = ['--session_id', 'bg', '--isolation', 'worktree', '--max_workers', '8', '--delay_ms', '100', '--wait', '--quiet'];
    const agents = [
      ...['w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8'].map((name) =>
        start(
          'spawn-agent-mock',
          ['--task_name', name, '--goal', `write ${name}`, '--write', `${name}.txt=${name}, with a comma`, ...common],
          repo.dir,
        ),
      ),
      start(
        'spawn-agent-mock',
        ['--task_name', 'dep', '--goal', 'extend w1', '--depends_on', 'w1', '--append', 'w1.txt=\\nand dep', ...common],
        repo.dir,
      ),
    ];
    const results = await Promise.all(agents);
    expect(
      results.map((r) => r.exitCode),
      results.map((r) => r.all).join('\n'),
    ).toEqual(Array(9).fill(0));
    const state = (await repo.state())!;
    expect(Object.values(state.tasks).map((t) => [t.status, t.merge?.status])).toEqual(Array(9).fill(['completed', 'merged']));
    const branch = state.integration!.branch;
    expect(branch).toBe('dto/bg/integration');
    expect(await repo.git(['show', `${branch}:w1.txt`])).toBe('w1, with a comma\nand dep');
    expect((await repo.git(['log', '--first-parent', '--format=%s', `${before.head}..${branch}`])).split('\n')).toHaveLength(9);
    expect(await repo.snapshot()).toEqual(before);
    expect(await repo.extraWorktrees()).toEqual([]);
  });

  it('refuses --isolation worktree outside a git repository before registering anything', async () => {
    const { tempProject } = await import('../support/project.ts');
    const project = await tempProject();
    const result = await run(
      'spawn-agent-mock',
      ['--task_name', 'x', '--goal', 'g', '--isolation', 'worktree', '--delay_ms', '0'],
      project.dir,
    );
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--isolation worktree needs a git repository');
    expect(await project.state()).toBeNull();
  });
});
