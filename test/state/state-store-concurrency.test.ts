import path from 'node:path';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { TSX_LOADER } from '../../scripts/lib/launcher/tsx-loader.ts';
import { readState, updateState } from '../../scripts/lib/state/state-store.ts';
import { openSession, registerTask } from '../../scripts/lib/scheduling/transitions.ts';
import { tempProject } from '../support/project.ts';

describe('state store under concurrent writers', () => {
  it('loses no update: 6 processes x 15 locked read-change-writes each', async () => {
    const project = await tempProject();
    const names = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
    await updateState(project.paths, (tx) => {
      const state = openSession(tx, { sessionId: 'locks', maxWorkers: 1 });
      for (const name of names) registerTask(tx, state, { name, goal: `writer ${name}`, runner: 'mock', pid: process.pid });
    });
    const writer = path.join(import.meta.dirname, '../support/state-writer.ts');
    const results = await Promise.all(
      names.map((name) => execa(process.execPath, ['--import', TSX_LOADER, writer, name, '15'], { cwd: project.dir, reject: false })),
    );
    expect(results.map((r) => r.exitCode)).toEqual(names.map(() => 0));
    const state = (await project.state())!;
    expect(state.max_workers).toBe(1 + 6 * 15);
    expect(names.map((name) => state.tasks[name]!.attempts)).toEqual(names.map(() => 15));
    expect((await readEvents(project.paths.eventsPath)).filter((e) => e.type === 'waiting')).toHaveLength(90);
  });

  it('reads a hand-edited file (comments, folded and quoted text) with the yaml package, and rewrites it as block YAML', async () => {
    const project = await tempProject();
    await updateState(project.paths, (tx) => {
      registerTask(tx, openSession(tx, { sessionId: 'edit' }), {
        name: 'a',
        goal: 'first line\nsecond line',
        runner: 'mock',
        pid: process.pid,
      });
    });
    const written = await readFile(project.paths.statePath, 'utf8');
    expect(written).toContain('goal: |-\n      first line\n      second line\n');
    const edited = `# edited by hand\n${written.replace('max_workers: 5', 'max_workers: 7 # more\n').replace(/goal: \|-\n.*\n.*\n/, "goal: 'a long goal\n      folded over two lines'\n")}`;
    await writeFile(project.paths.statePath, edited);
    const state = (await readState(project.paths))!;
    expect(state.max_workers).toBe(7);
    expect(state.tasks.a!.goal).toBe('a long goal folded over two lines');
    await updateState(project.paths, (tx) => void (tx.state!.max_workers = 8));
    const rewritten = await readFile(project.paths.statePath, 'utf8');
    expect(rewritten).not.toContain('#');
    expect(rewritten).toContain('goal: a long goal folded over two lines\n');
    expect((await readState(project.paths))!.max_workers).toBe(8);
  });

  it('gives every reader its own copy of the state', async () => {
    const project = await tempProject();
    await mkdir(project.paths.dir, { recursive: true });
    await updateState(project.paths, (tx) => void openSession(tx, { sessionId: 'copy', maxWorkers: 3 }));
    const first = (await readState(project.paths))!;
    first.max_workers = 99;
    first.tasks.x = {} as never;
    const second = (await readState(project.paths))!;
    expect(second.max_workers).toBe(3);
    expect(second.tasks).toEqual({});
  });
});
