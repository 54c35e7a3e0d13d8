import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyEdit, checkEditPath, createMockExecutor, parseEditFlag } from '../../scripts/lib/agents/mock-agent.ts';
import type { AgentContext } from '../../scripts/lib/agents/agent-types.ts';
import { parseYamlPlan } from '../../scripts/lib/plan/plan.ts';
import { run, tempProject } from '../support/project.ts';
import { agentContext } from '../support/agent-context.ts';

function context(cwd: string): AgentContext {
  return agentContext(cwd, { taskName: 'T', goal: 'edit', session_id: 'S' });
}

describe('mock agents that edit files', () => {
  it('parses FILE=TEXT on the first "=", keeps commas and later "=", and turns \\n into newlines', () => {
    expect(parseEditFlag('write', 'src/a.ts=export const a = 1,2;\\n')).toEqual({
      kind: 'write',
      path: 'src/a.ts',
      text: 'export const a = 1,2;\n',
    });
    expect(parseEditFlag('append', 'empty.txt=')).toEqual({ kind: 'append', path: 'empty.txt', text: '' });
  });

  it.each([
    ['/etc/passwd=x', 'relative'],
    ['../outside.txt=x', 'without ".."'],
    ['a/../../b=x', 'without ".."'],
    ['no-equals-sign', 'FILE=TEXT'],
    ['=text', 'FILE=TEXT'],
  ])('refuses %s with a message saying what to do', (value, says) => {
    expect(() => parseEditFlag('write', value)).toThrow(says);
  });

  it('writes, then appends, inside its working directory, creating folders', async () => {
    const { dir } = await tempProject();
    const executor = createMockExecutor({
      delayMs: 0,
      edits: [
        { kind: 'write', path: 'src/deep/a.txt', text: 'one\n' },
        { kind: 'append', path: 'src/deep/a.txt', text: 'two\n' },
      ],
    });
    const outcome = await executor(context(dir));
    expect(outcome.status).toBe('completed');
    expect(outcome.body).toContain('Files edited as told (write src/deep/a.txt, append src/deep/a.txt)');
    expect(await readFile(path.join(dir, 'src/deep/a.txt'), 'utf8')).toBe('one\ntwo\n');
  });

  it('two agents writing below the same new folder at once both succeed (references/examples.md, full-stack-feature: EEXIST)', async () => {
    const project = await tempProject('dto-mock-edit-');
    for (let i = 0; i < 10; i++) {
      await Promise.all(
        ['a', 'b', 'c'].map((name) => applyEdit(project.dir, { kind: 'write', path: `new-${i}/deep/${name}.txt`, text: name })),
      );
      expect(await readFile(path.join(project.dir, `new-${i}/deep/c.txt`), 'utf8')).toBe('c');
    }
  });

  it('never follows a symbolic link out of its working directory (a linked folder or a linked file)', async () => {
    const { dir } = await tempProject();
    const outside = await tempProject();
    await writeFile(path.join(outside.dir, 'target.txt'), 'untouched');
    await mkdir(path.join(dir, 'work'));
    await symlink(outside.dir, path.join(dir, 'work', 'linked-dir'));
    await symlink(path.join(outside.dir, 'target.txt'), path.join(dir, 'work', 'linked-file.txt'));
    const root = path.join(dir, 'work');
    await expect(applyEdit(root, { kind: 'write', path: 'linked-dir/target.txt', text: 'x' })).rejects.toThrow('is a symbolic link');
    await expect(applyEdit(root, { kind: 'append', path: 'linked-file.txt', text: 'x' })).rejects.toThrow('is a symbolic link');
    expect(await readFile(path.join(outside.dir, 'target.txt'), 'utf8')).toBe('untouched');
    expect(() => checkEditPath('..', 'write')).toThrow('without ".."');
  });

  it('reads write/append, isolation and expect_changes from a YAML plan, and refuses an escaping path', () => {
    const plan = parseYamlPlan(
      [
        'isolation: worktree',
        'tasks:',
        '  - { id: a, goal: g, write: { "x.txt": "1" }, append: { "y.txt": "2" }, isolation: none, expect_changes: false }',
      ].join('\n'),
    );
    expect(plan.isolation).toBe('worktree');
    expect(plan.tasks[0]).toMatchObject({
      isolation: 'none',
      expectChanges: false,
      edits: [
        { kind: 'write', path: 'x.txt', text: '1' },
        { kind: 'append', path: 'y.txt', text: '2' },
      ],
    });
    expect(() => parseYamlPlan('tasks:\n  - { id: a, goal: g, write: { "../x": "1" } }')).toThrow('without ".."');
    expect(() => parseYamlPlan('tasks:\n  - { id: a, goal: g, merge_check: "rm -rf /" }')).toThrow('merge_check');
  });

  it('spawn-agent-mock refuses a --write path outside its folder before registering the task', async () => {
    const project = await tempProject();
    const result = await run('spawn-agent-mock', ['--task_name', 'x', '--goal', 'g', '--write', '../escape.txt=x'], project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('without ".."');
    expect(await project.state()).toBeNull();
  });
});
