// A result file that is a symbolic link (planted in a cloned repository, say) is replaced, never written through.
import { lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempProject } from '../support/project.ts';

describe('a result file that is a symbolic link', () => {
  it('is replaced by a regular file: the file it pointed to, outside the results folder, stays as it was', async () => {
    const project = await tempProject('dto-result-link-');
    const outside = path.join(project.dir, 'precious.txt');
    await writeFile(outside, 'keep me\n');
    const results = path.join(project.dir, '.agent/results');
    await mkdir(results, { recursive: true });
    await symlink(outside, path.join(results, 'scan.md'));
    const agent = await run('spawn-agent-mock', ['--task_name', 'scan', '--goal', 'scan it', '--delay_ms', '10'], project.dir);
    expect(agent.exitCode, agent.all).toBe(0);
    expect(await readFile(outside, 'utf8')).toBe('keep me\n');
    expect((await lstat(path.join(results, 'scan.md'))).isSymbolicLink()).toBe(false);
    expect(await readFile(path.join(results, 'scan.md'), 'utf8')).toContain('scan it');
    expect((await project.state())!.tasks.scan).toMatchObject({ status: 'completed' });
  });
});
