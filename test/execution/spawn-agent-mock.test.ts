import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import matter from 'gray-matter';
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { TSX_LOADER } from '../../scripts/lib/launcher/tsx-loader.ts';
import { listFiles, run, start, tempProject } from '../support/project.ts';

describe('spawn-agent-mock', () => {
  it('runs one agent: state, events and a result file that quotes the goal', async () => {
    const project = await tempProject();
    const result = await run(
      'spawn-agent-mock',
      ['--task_name', 'scan', '--goal', 'List the files\nand sizes', '--delay_ms', '50'],
      project.dir,
    );
    expect(result.exitCode).toBe(0);
    // The same progress lines as poll-session and the plan runner (event-lines.ts).
    expect(result.stdout).toMatch(/^\[00:0\d\] 🔵 scan started by Agent-01\n\[00:0\d\] ✅ scan completed by Agent-01 in \d+ ms$/);
    const state = await project.state();
    const task = state!.tasks.scan!;
    expect(task).toMatchObject({ status: 'completed', agent: 'Agent-01', attempts: 1, error: null, runner: 'mock' });
    expect(task.duration_ms).toBeGreaterThanOrEqual(50);
    expect(task.result_path).toBe(path.join(project.dir, '.agent/results/scan.md'));
    const file = matter(await readFile(task.result_path!, 'utf8'));
    expect(file.data).toMatchObject({ task: 'scan', agent: 'Agent-01', status: 'completed', attempt: 1, session_id: state!.session_id });
    expect(file.data.duration_ms).toBe(task.duration_ms);
    expect(file.content).toContain('> List the files\n> and sizes');
    const types = (await readEvents(project.paths.eventsPath)).map((e) => e.type);
    expect(types).toEqual(['session_started', 'registered', 'started', 'completed']);
  });

  it('--fail ends failed with exit 1 and the reason recorded', async () => {
    const project = await tempProject();
    const result = await run(
      'spawn-agent-mock',
      ['--task_name', 'x', '--goal', 'g', '--delay_ms', '0', '--fail', '--output_dir', 'out'],
      project.dir,
    );
    expect(result.exitCode).toBe(1);
    const task = (await project.state())!.tasks.x!;
    expect(task.status).toBe('failed');
    expect(task.error).toMatch(/--fail/);
    expect(matter(await readFile(path.join(project.dir, 'out/x.md'), 'utf8')).data.status).toBe('failed');
  });

  it('refuses a name that is running or completed, and re-runs one that failed', async () => {
    const project = await tempProject();
    expect((await run('spawn-agent-mock', ['--task_name', 'a', '--goal', 'g', '--delay_ms', '0'], project.dir)).exitCode).toBe(0);
    const again = await run('spawn-agent-mock', ['--task_name', 'a', '--goal', 'g', '--delay_ms', '0'], project.dir);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/already completed.*--new_session/);
    expect((await run('spawn-agent-mock', ['--task_name', 'b', '--goal', 'g', '--delay_ms', '0', '--fail'], project.dir)).exitCode).toBe(1);
    expect((await run('spawn-agent-mock', ['--task_name', 'b', '--goal', 'g', '--delay_ms', '0'], project.dir)).exitCode).toBe(0);
    const b = (await project.state())!.tasks.b!;
    expect(b).toMatchObject({ status: 'completed', attempts: 2, agent: 'Agent-02' });
  });

  it('40 agents started at the same moment: 40 completed, 40 result files, no lost update', async () => {
    const project = await tempProject();
    const names = Array.from({ length: 40 }, (_, i) => `task-${String(i + 1).padStart(2, '0')}`);
    const children = names.map((name) =>
      start(
        'spawn-agent-mock',
        ['--task_name', name, '--goal', `goal of ${name}`, '--delay_ms', '200', '--max_workers', '40', '--session_id', 'load'],
        project.dir,
      ),
    );
    const results = await Promise.all(children);
    expect(results.map((r) => r.exitCode)).toEqual(names.map(() => 0));
    const state = await project.state();
    expect(Object.keys(state!.tasks).sort()).toEqual(names);
    expect(Object.values(state!.tasks).every((t) => t.status === 'completed')).toBe(true);
    const agents = Object.values(state!.tasks)
      .map((t) => t.agent)
      .sort();
    expect(agents).toEqual(names.map((_, i) => `Agent-${String(i + 1).padStart(2, '0')}`));
    expect(await listFiles(path.join(project.dir, '.agent/results'))).toEqual(names.flatMap((n) => [`${n}.md`, `${n}.receipt.json`]));
    const events = await readEvents(project.paths.eventsPath);
    expect(events.filter((e) => e.type === 'completed')).toHaveLength(40);
    expect(events.filter((e) => e.type === 'session_started')).toHaveLength(1);
  });

  it('a lock holder killed with SIGKILL: the stale lock is recovered and the others finish', async () => {
    const project = await tempProject();
    const holder = execa(process.execPath, ['--import', TSX_LOADER, path.join(import.meta.dirname, '../support/hold-lock.ts')], {
      cwd: project.dir,
      reject: false,
    });
    await new Promise<void>((resolve) => holder.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve()));
    holder.kill('SIGKILL');
    await holder;
    expect(existsSync(project.paths.lockPath)).toBe(true);
    const began = Date.now();
    const results = await Promise.all(
      ['a', 'b', 'c', 'd'].map((name) => start('spawn-agent-mock', ['--task_name', name, '--goal', 'g', '--delay_ms', '10'], project.dir)),
    );
    expect(results.map((r) => r.exitCode)).toEqual([0, 0, 0, 0]);
    expect(Date.now() - began).toBeLessThan(20_000);
    expect(Object.values((await project.state())!.tasks).map((t) => t.status)).toEqual([
      'completed',
      'completed',
      'completed',
      'completed',
    ]);
  });

  it.each([['../x'], ['/abs'], ['a b'], [''], ['.hidden'], ['x/y'], ['a'.repeat(65)], ['..']])(
    'refuses the task name %j and writes nothing anywhere',
    async (name) => {
      const project = await tempProject();
      const result = await run('spawn-agent-mock', ['--task_name', name, '--goal', 'g', '--delay_ms', '0'], project.dir);
      expect(result.exitCode).toBe(2);
      if (name === '') expect(result.stderr).toContain('--task_name is required: give the task a name matching [A-Za-z0-9._-]{1,64}');
      else {
        expect(result.stderr).toContain('Expected --task_name to match [A-Za-z0-9._-]{1,64}');
        expect(result.stderr).toContain(JSON.stringify(name));
      }
      expect(await listFiles(project.dir)).toEqual([]);
      // Where the name would have led had it been used: inside the project (checked above) or outside it.
      expect(existsSync(path.resolve(project.dir, '.agent/results', `${name}.md`))).toBe(false);
    },
  );

  it.each([
    [['--task_name', 'a'], /Missing --goal/],
    [['--goal', 'g'], /--task_name is required/],
    [['--task_name', 'a', '--goal', 'g', '--delay_ms', 'soon'], /Expected --delay_ms to be a whole number.*"soon"/],
    [['--task_name', 'a', '--goal', 'g', '--bogus'], /Unknown option '--bogus'/],
    [['--task_name', 'a', '--goal', 'g', '--priority', 'P9'], /Expected --priority to be one of P0, P1, P2, P3, got "P9"/],
    [['--task_name', 'a', '--goal', 'g', 'stray'], /Unexpected argument "stray"/],
    [['--task_name', 'a', '--goal', 'g', '--depends_on', 'a'], /cannot depend on itself/],
  ])('refuses bad flags %j with a clear message and writes nothing', async (args, message) => {
    const project = await tempProject();
    const result = await run('spawn-agent-mock', args, project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(await listFiles(project.dir)).toEqual([]);
  });

  it('accepts kebab-case aliases and prints --help with an example', async () => {
    const project = await tempProject();
    const help = await run('spawn-agent-mock', ['--help'], project.dir);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('--task_name NAME');
    expect(help.stdout).toContain('Examples:');
    const result = await run('spawn-agent-mock', ['--task-name', 'k', '--goal', 'g', '--delay-ms', '0', '--output-dir', 'o'], project.dir);
    expect(result.exitCode).toBe(0);
    expect(existsSync(path.join(project.dir, 'o/k.md'))).toBe(true);
  });

  it('leaves a corrupt state file untouched and writes no result', async () => {
    const project = await tempProject();
    await run('spawn-agent-mock', ['--task_name', 'a', '--goal', 'g', '--delay_ms', '0'], project.dir);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(project.paths.statePath, 'version: 1\ntasks: 7\n');
    const result = await run('spawn-agent-mock', ['--task_name', 'b', '--goal', 'g', '--delay_ms', '0'], project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(project.paths.statePath);
    expect(await readFile(project.paths.statePath, 'utf8')).toBe('version: 1\ntasks: 7\n');
    expect(existsSync(path.join(project.dir, '.agent/results/b.md'))).toBe(false);
  });
});
