import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../support/project.ts';
import { maxOverlap } from '../support/timeline.ts';
import { tempRepo } from './git-repo.ts';

const task = (id: string, fields: string) => `  - { id: ${id}, goal: "edit for ${id}", ${fields} }`;

describe('orchestrate --isolation worktree (plan runner)', () => {
  it('runs 8 tasks editing disjoint files at once in 8 worktrees, merges all in topological order, and leaves the user tree alone', async () => {
    const repo = await tempRepo();
    const tasks = Array.from({ length: 8 }, (_, i) =>
      task(`t${i}`, `delay_ms: ${50 + i * 10}, write: { "src/f${i}.txt": "file ${i}\\n" }`),
    );
    const last = task('last', 'depends_on: [t0, t7], delay_ms: 10, write: { "src/last.txt": "after t0 and t7\\n" }');
    await writeFile(path.join(repo.dir, 'plan.yaml'), ['tasks:', ...tasks, last].join('\n'));
    const before = await repo.snapshot();
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '8', '--isolation', 'worktree'], repo.dir);
    expect(result.exitCode, result.all).toBe(0);
    const state = (await repo.state())!;
    const merged = Object.values(state.tasks).map((t) => t.merge?.status);
    expect(merged).toEqual(Array(9).fill('merged'));
    // Every worktree existed at once (8 workers, 8 ready tasks): none failed to be added.
    expect(Object.values(state.tasks).every((t) => t.status === 'completed' && t.attempts === 1)).toBe(true);
    expect(maxOverlap(state)).toBe(8);
    const integration = state.integration!;
    expect(integration.branch).toBe(`dto/${state.session_id}/integration`);
    expect(integration.base).toBe(before.head);
    expect(await repo.git(['rev-parse', integration.branch])).toBe(integration.tip);
    // First-parent history: one merge per task, `last` after both its dependencies.
    const subjects = (await repo.git(['log', '--first-parent', '--reverse', '--format=%s', `${before.head}..${integration.branch}`])).split(
      '\n',
    );
    expect(subjects).toHaveLength(9);
    const order = subjects.map((subject) => /^Merge (\S+)/.exec(subject)![1]!);
    expect(order.indexOf('last')).toBeGreaterThan(Math.max(order.indexOf('t0'), order.indexOf('t7')));
    expect(new Set(order).size).toBe(9);
    const tree = (await repo.git(['ls-tree', '-r', '--name-only', integration.branch])).split('\n');
    expect(tree.filter((file) => file.startsWith('src/'))).toHaveLength(9);
    // The user's branch, HEAD and working tree are untouched; no worktree is left.
    expect(await repo.snapshot()).toEqual(before);
    expect(await repo.extraWorktrees()).toEqual([]);
    expect(state.tasks.t3!.merge!.diff_stat).toEqual({ files: 1, insertions: 1, deletions: 0 });
  });

  it("starts a dependant from the integration tip, so B's worktree holds the file A created", async () => {
    const repo = await tempRepo();
    const plan = [
      'tasks:',
      task('A', 'delay_ms: 10, write: { "notes.txt": "from A\\n" }'),
      task('B', 'depends_on: [A], delay_ms: 10, append: { "notes.txt": "from B\\n" }'),
    ];
    await writeFile(path.join(repo.dir, 'plan.yaml'), plan.join('\n'));
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--isolation', 'worktree'], repo.dir);
    expect(result.exitCode, result.all).toBe(0);
    const state = (await repo.state())!;
    expect(await repo.git(['show', `${state.integration!.branch}:notes.txt`])).toBe('from A\nfrom B');
    expect(state.tasks.B!.merge!.diff_stat).toEqual({ files: 1, insertions: 1, deletions: 0 });
    expect(await readFile(path.join(repo.dir, 'README.md'), 'utf8')).toBe('# test\n');
  });

  it('makes the later of two tasks appending to one file merge_failed naming the file, keeps its branch, and merges the rest', async () => {
    const repo = await tempRepo({ 'shared.txt': 'base\n' });
    const plan = [
      'tasks:',
      task('first', 'delay_ms: 10, append: { "shared.txt": "first\\n" }'),
      // Meant to end second, but which one merges first is not asserted: a loaded machine can add first's worktree
      // seconds late. Whichever merges later conflicts, and the state says which.
      task('second', 'delay_ms: 3000, append: { "shared.txt": "second\\n" }'),
      task('other', 'delay_ms: 10, write: { "other.txt": "other\\n" }'),
      task('after', 'depends_on: [first, second], delay_ms: 10, write: { "after.txt": "x" }'),
    ];
    await writeFile(path.join(repo.dir, 'plan.yaml'), plan.join('\n'));
    const before = await repo.snapshot();
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '4', '--isolation', 'worktree'], repo.dir);
    expect(result.exitCode, result.all).toBe(1);
    const state = (await repo.state())!;
    const statuses = Object.fromEntries(Object.entries(state.tasks).map(([name, t]) => [name, t.status]));
    const [winner, loser] = statuses.second === 'merge_failed' ? ['first', 'second'] : ['second', 'first'];
    expect(statuses).toEqual({ [winner]: 'completed', [loser]: 'merge_failed', other: 'completed', after: 'skipped' });
    const lost = state.tasks[loser]!;
    expect(lost.merge).toMatchObject({ status: 'conflict', conflicts: ['shared.txt'], commit: null });
    expect(lost.error).toContain('shared.txt');
    expect(state.tasks.after!.error).toBe(`dependency ${loser} merge_failed`);
    // The conflicting work stays on its branch, one commit ahead of where it started.
    expect(await repo.git(['show', `${lost.merge!.branch}:shared.txt`])).toBe(`base\n${loser}`);
    const integration = state.integration!.branch;
    expect(await repo.git(['show', `${integration}:shared.txt`])).toBe(`base\n${winner}`);
    expect(await repo.git(['show', `${integration}:other.txt`])).toBe('other');
    expect(await repo.snapshot()).toEqual(before);
    // Only the conflicting task's worktree is kept, for inspection.
    expect(await repo.extraWorktrees()).toEqual([`worktree ${lost.merge!.worktree}`]);
    expect(result.stdout).toContain(
      `Integration branch ${integration}: 2 merged, not merged: ${loser} conflicted in shared.txt (branches kept)`,
    );
    expect(result.stdout).toContain(`land with: git merge --ff-only ${integration}`);
    const report = await run('aggregate', ['--json'], repo.dir);
    const merge = (JSON.parse(report.stdout) as { merge: { merged: string[] } & Record<string, unknown> }).merge;
    expect([...merge.merged].sort()).toEqual([winner, 'other'].sort());
    expect(merge).toMatchObject({
      conflicted: [{ task: loser, branch: lost.merge!.branch, paths: ['shared.txt'] }],
      kept_worktrees: [{ task: loser, worktree: lost.merge!.worktree, why: 'conflict in shared.txt' }],
    });
    expect(await run('aggregate', [], repo.dir)).toMatchObject({ exitCode: 0 });
    const markdown = await readFile(path.join(repo.dir, '.agent/final_output.md'), 'utf8');
    expect(markdown).toContain('## Merges (worktree isolation)');
    expect(markdown).toContain(`- Conflicted: ${loser} (shared.txt; branch \`${lost.merge!.branch}\`)`);
  });

  it('keeps a task whose --merge_check fails out of the integration branch, with the gate output', async () => {
    const repo = await tempRepo();
    const plan = [
      'tasks:',
      task('good', 'delay_ms: 10, write: { "ok.txt": "fine" }'),
      task('bad', 'delay_ms: 10, write: { "BROKEN": "yes" }'),
    ];
    await writeFile(path.join(repo.dir, 'plan.yaml'), plan.join('\n'));
    const gate = 'if test -e BROKEN; then echo "gate: BROKEN present"; exit 3; fi; echo gate ok';
    const result = await run(
      'orchestrate',
      ['plan.yaml', '--agent', 'mock', '--workers', '1', '--isolation', 'worktree', '--merge_check', gate],
      repo.dir,
    );
    expect(result.exitCode).toBe(1);
    const state = (await repo.state())!;
    expect(state.tasks.good!.status).toBe('completed');
    expect(state.tasks.bad!.status).toBe('merge_failed');
    expect(state.tasks.bad!.merge).toMatchObject({ status: 'gate_failed', conflicts: [] });
    expect(state.tasks.bad!.merge!.gate_output).toContain('gate: BROKEN present');
    expect(state.tasks.bad!.error).toContain('exit 3');
    const tree = (await repo.git(['ls-tree', '--name-only', state.integration!.branch])).split('\n');
    expect(tree).toContain('ok.txt');
    expect(tree).not.toContain('BROKEN');
    // The scratch worktrees of the gate are gone.
    expect((await repo.extraWorktrees()).filter((line) => line.includes('.gate'))).toEqual([]);
  });

  it('--retry_merge re-runs a merge_failed task from the current tip, told what conflicted, keeping its old branch; --resume alone leaves it', async () => {
    const repo = await tempRepo({ 'shared.txt': 'base\n' });
    const plan = [
      'tasks:',
      task('first', 'delay_ms: 10, append: { "shared.txt": "first\\n" }'),
      // Whichever of the two merges later conflicts (a loaded machine can add first's worktree late): the state says which.
      task('second', 'delay_ms: 500, append: { "shared.txt": "second\\n" }'),
      task('after', 'depends_on: [first, second], delay_ms: 10, write: { "after.txt": "x" }'),
    ];
    await writeFile(path.join(repo.dir, 'plan.yaml'), plan.join('\n'));
    const args = ['plan.yaml', '--agent', 'mock', '--workers', '2', '--isolation', 'worktree'];
    expect((await run('orchestrate', args, repo.dir)).exitCode).toBe(1);
    const failed = (await repo.state())!;
    const [winner, loser] = failed.tasks.second!.status === 'merge_failed' ? ['first', 'second'] : ['second', 'first'];
    expect([failed.tasks[winner]!.status, failed.tasks[loser]!.status]).toEqual(['completed', 'merge_failed']);
    const oldBranch = failed.tasks[loser]!.merge!.branch;
    const oldTip = await repo.git(['rev-parse', oldBranch]);

    const resumed = await run('orchestrate', [...args, '--resume'], repo.dir);
    expect(resumed.exitCode).toBe(1);
    expect((await repo.state())!.tasks[loser]!.attempts).toBe(1);

    const retried = await run('orchestrate', [...args, '--retry_merge'], repo.dir);
    expect(retried.exitCode, retried.all).toBe(0);
    const state = (await repo.state())!;
    expect(Object.values(state.tasks).map((t) => t.status)).toEqual(['completed', 'completed', 'completed']);
    expect(state.tasks[loser]!.attempts).toBe(2);
    expect(await repo.git(['show', `${state.integration!.branch}:shared.txt`])).toBe(`base\n${winner}\n${loser}`);
    // The conflicting attempt's work is kept on a branch of its own.
    expect(await repo.git(['rev-parse', `${oldBranch}-attempt-1`])).toBe(oldTip);
    const result = await readFile(path.join(repo.dir, `.agent/results/${loser}.md`), 'utf8');
    expect(result).toContain('conflicted with work merged meanwhile, in: shared.txt');
    expect(result).toContain(`${oldBranch}-attempt-1`);
    expect(await repo.extraWorktrees()).toEqual([]);
  });

  it('flags a task that declared files but changed none, and merges nothing for it', async () => {
    const repo = await tempRepo();
    const plan = ['tasks:', task('idle', 'delay_ms: 10, files: [src/auth.ts]'), task('busy', 'delay_ms: 10, write: { "b.txt": "b" }')];
    await writeFile(path.join(repo.dir, 'plan.yaml'), plan.join('\n'));
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--isolation', 'worktree'], repo.dir);
    expect(result.exitCode, result.all).toBe(0);
    const state = (await repo.state())!;
    expect(state.tasks.idle!.merge).toMatchObject({ status: 'empty', expected_changes_missing: true, commit: null });
    expect(state.tasks.busy!.merge).toMatchObject({ status: 'merged', expected_changes_missing: false });
    expect(result.stdout).toContain('idle: expected to change files (src/auth.ts) but changed none');
    expect(await repo.extraWorktrees()).toEqual([]);
  });

  it('refuses bad isolation input before writing anything: no repository, --merge_check without isolation, a task name git refuses', async () => {
    const { tempProject } = await import('../support/project.ts');
    const plain = await tempProject();
    await writeFile(path.join(plain.dir, 'plan.yaml'), ['tasks:', task('a', 'delay_ms: 1')].join('\n'));
    const noRepo = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--isolation', 'worktree'], plain.dir);
    expect(noRepo.exitCode).toBe(2);
    expect(noRepo.stderr).toContain('--isolation worktree needs a git repository');
    const noIsolation = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--merge_check', 'true'], plain.dir);
    expect(noIsolation.exitCode).toBe(2);
    expect(noIsolation.stderr).toContain('--merge_check gates merges of isolated tasks');
    expect(await plain.state()).toBeNull();
    const repo = await tempRepo();
    await writeFile(path.join(repo.dir, 'plan.yaml'), ['tasks:', task('x.lock', 'delay_ms: 1')].join('\n'));
    const badName = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--isolation', 'worktree'], repo.dir);
    expect(badName.exitCode).toBe(2);
    expect(badName.stderr).toContain('Task x.lock: the task name "x.lock" cannot be part of a git branch name');
    expect(await repo.state()).toBeNull();
    expect(await repo.git(['branch', '--list'])).toBe('* main');
  });

  it('copies the git-ignored files listed in .worktreeinclude into each worktree, and never commits them', async () => {
    const repo = await tempRepo({ '.gitignore': '.agent/\n.env\nlocal/\nsecret.key\n', '.worktreeinclude': '.env\nlocal/\nREADME.md\n' });
    await writeFile(path.join(repo.dir, '.env'), 'TOKEN=abc\n');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(repo.dir, 'local'));
    await writeFile(path.join(repo.dir, 'local', 'config.json'), '{}');
    await writeFile(path.join(repo.dir, 'secret.key'), 'not listed');
    // The mock agent appends to the copied .env: it must find it there, and the change must stay out of git.
    const plan = ['tasks:', task('uses-env', 'delay_ms: 10, append: { ".env": "MORE=1\\n" }, write: { "done.txt": "ok" }')];
    await writeFile(path.join(repo.dir, 'plan.yaml'), plan.join('\n'));
    // The gate sees the copied files too (its scratch worktree gets the same include list), and not the unlisted one.
    const gate = 'grep -q TOKEN=abc .env && test -f local/config.json && test ! -e secret.key';
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--isolation', 'worktree', '--merge_check', gate], repo.dir);
    expect(result.exitCode, result.all).toBe(0);
    const state = (await repo.state())!;
    const tree = (await repo.git(['ls-tree', '-r', '--name-only', state.integration!.branch])).split('\n');
    expect(tree).toContain('done.txt');
    expect(tree).not.toContain('.env');
    expect(tree.filter((file) => file.startsWith('local/'))).toEqual([]);
    expect(state.tasks['uses-env']!.merge!.diff_stat).toEqual({ files: 1, insertions: 1, deletions: 0 });
    expect(await readFile(path.join(repo.dir, '.env'), 'utf8')).toBe('TOKEN=abc\n');
  });

  it('isolates tasks named __proto__ and constructor like any other', async () => {
    const repo = await tempRepo();
    const plan = [
      'tasks:',
      task('__proto__', 'delay_ms: 10, write: { "p.txt": "p" }'),
      task('constructor', 'depends_on: [__proto__], delay_ms: 10, append: { "p.txt": "+c" }'),
    ];
    await writeFile(path.join(repo.dir, 'plan.yaml'), plan.join('\n'));
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--isolation', 'worktree'], repo.dir);
    expect(result.exitCode, result.all).toBe(0);
    const state = (await repo.state())!;
    expect(Object.keys(state.tasks)).toEqual(['__proto__', 'constructor']);
    expect(Object.values(state.tasks).map((t) => t.merge?.branch)).toEqual([
      `dto/${state.session_id}/tasks/__proto__`,
      `dto/${state.session_id}/tasks/constructor`,
    ]);
    expect(await repo.git(['show', `${state.integration!.branch}:p.txt`])).toBe('p+c');
  });
});
