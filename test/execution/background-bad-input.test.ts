// Background agents refuse unusable folders before claiming anything, and treat task names as data (own-property lookups).
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempProject } from '../support/project.ts';

type Project = Awaited<ReturnType<typeof tempProject>>;

const mockArgs = (name: string, ...args: string[]) => ['--task_name', name, '--goal', `goal ${name}`, '--delay_ms', '10', ...args];

/** Starts a session with one completed task, and returns the state file's text. */
async function existingSession(project: Project): Promise<string> {
  const first = await run('spawn-agent-mock', mockArgs('first', '--session_id', 'bad'), project.dir);
  expect(first.exitCode, first.all).toBe(0);
  return readFile(project.paths.statePath, 'utf8');
}

describe('an unusable --output_dir or --cwd is refused before the task is registered', () => {
  it('--output_dir naming a file: exit 2, the path named, no session written', async () => {
    const project = await tempProject('dto-bad-');
    const file = path.join(project.dir, 'results.txt');
    await writeFile(file, 'not a folder');
    const result = await run('spawn-agent-mock', mockArgs('t', '--output_dir', 'results.txt'), project.dir);
    expect(result.exitCode, result.all).toBe(2);
    expect(result.stderr).toContain(`Expected --output_dir to be a folder, got ${JSON.stringify(file)}, which is a file`);
    expect(existsSync(project.paths.statePath)).toBe(false);
    expect(await readFile(file, 'utf8')).toBe('not a folder');
  });

  it('--output_dir below a file, in a running session: exit 2 and the state file unchanged', async () => {
    const project = await tempProject('dto-bad-');
    const before = await existingSession(project);
    await writeFile(path.join(project.dir, 'plain'), 'x');
    const result = await run('spawn-agent-mock', mockArgs('second', '--session_id', 'bad', '--output_dir', 'plain/results'), project.dir);
    expect(result.exitCode, result.all).toBe(2);
    expect(result.stderr).toMatch(/Expected --output_dir to be a folder, got ".*plain\/results": ".*plain" is a file/);
    expect(await readFile(project.paths.statePath, 'utf8')).toBe(before);
  });

  it.skipIf(process.getuid?.() === 0)('--output_dir in a folder nobody may write: exit 2, nothing registered', async () => {
    const project = await tempProject('dto-bad-');
    const locked = path.join(project.dir, 'locked');
    await mkdir(locked);
    await chmod(locked, 0o555);
    try {
      const result = await run('spawn-agent-mock', mockArgs('t', '--output_dir', 'locked/out'), project.dir);
      expect(result.exitCode, result.all).toBe(2);
      expect(result.stderr).toMatch(/Cannot write results to --output_dir ".*locked\/out": its parent ".*locked" is not writable/);
      expect(existsSync(project.paths.statePath)).toBe(false);
    } finally {
      await chmod(locked, 0o755);
    }
  });

  it('spawn-agent --cwd naming a file: exit 2 before anything is written', async () => {
    const project = await tempProject('dto-bad-');
    await writeFile(path.join(project.dir, 'file'), 'x');
    const result = await run('spawn-agent', ['--task_name', 't', '--goal', 'g', '--cwd', 'file'], project.dir, {
      CLAUDE_BIN: '/nonexistent/claude',
    });
    expect(result.exitCode, result.all).toBe(2);
    expect(result.stderr).toMatch(/Expected --cwd to be an existing directory, got "file"/);
    expect(existsSync(project.paths.statePath)).toBe(false);
  });
});

describe('task names that are Object.prototype properties', () => {
  it.each(['toString', 'constructor', 'hasOwnProperty'])(
    '--depends_on %s honours --dep_timeout and names the dependency',
    async (name) => {
      const project = await tempProject('dto-bad-');
      const result = await run('spawn-agent-mock', mockArgs('waiter', '--depends_on', name, '--dep_timeout', '2', '--wait'), project.dir);
      expect(result.exitCode, result.all).toBe(1);
      expect((await project.state())!.tasks.waiter!.error).toBe(`dependency ${name} never appeared in the session (waited 2 s)`);
    },
    60_000,
  );

  it('tasks named __proto__ and constructor run end to end in background mode, one depending on the other', async () => {
    const project = await tempProject('dto-bad-');
    const results = await Promise.all([
      run('spawn-agent-mock', mockArgs('constructor', '--session_id', 'proto', '--depends_on', '__proto__'), project.dir),
      run('spawn-agent-mock', mockArgs('__proto__', '--session_id', 'proto'), project.dir),
    ]);
    expect(
      results.map((r) => r.exitCode),
      results.map((r) => r.all).join('\n'),
    ).toEqual([0, 0]);
    const state = (await project.state())!;
    expect(Object.keys(state.tasks).sort()).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(state.tasks, '__proto__')?.value).toMatchObject({ status: 'completed' });
    expect(Object.getOwnPropertyDescriptor(state.tasks, 'constructor')?.value).toMatchObject({
      status: 'completed',
      depends_on: ['__proto__'],
    });
    expect(existsSync(path.join(project.dir, '.agent/results/__proto__.md'))).toBe(true);
  }, 60_000);
});
