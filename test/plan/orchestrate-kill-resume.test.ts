// orchestrate killed with SIGKILL in the middle of a plan, then run again with --resume (no worktree isolation).
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { run, start, tempProject } from '../support/project.ts';

describe('orchestrate SIGKILLed mid-run, then --resume', () => {
  it('keeps what completed as it was, runs the rest (the killed run’s running tasks again), and leaves no lock or temporary file', async () => {
    const project = await tempProject('dto-kill-resume-');
    // Two chains side by side, so tasks are running in both when the run is killed.
    const names = ['a1', 'a2', 'a3', 'a4', 'b1', 'b2', 'b3', 'b4'];
    const plan = [
      'tasks:',
      ...names.map((id) => {
        const n = Number(id[1]);
        return `  - { id: ${id}, goal: "do ${id}", ${n > 1 ? `depends_on: [${id[0]}${n - 1}], ` : ''}delay_ms: 400 }`;
      }),
    ];
    await writeFile(path.join(project.dir, 'plan.yaml'), plan.join('\n'));
    const child = start('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '2', '--quiet'], project.dir);
    let atKill = null as Awaited<ReturnType<typeof project.state>>;
    for (const deadline = Date.now() + 120_000; Date.now() < deadline && child.exitCode === null;) {
      const state = await project.state().catch(() => null);
      const tasks = state ? Object.values(state.tasks) : [];
      if (tasks.filter((t) => t.status === 'completed').length >= 2 && tasks.some((t) => t.status === 'running')) {
        atKill = state;
        break;
      }
      await delay(20);
    }
    expect(atKill).not.toBeNull();
    child.kill('SIGKILL');
    await child;
    const killed = (await project.state())!;
    const completedAtKill = names.filter((n) => killed.tasks[n]?.status === 'completed');
    const runningAtKill = names.filter((n) => killed.tasks[n]?.status === 'running');
    expect(completedAtKill.length).toBeGreaterThanOrEqual(2);
    expect(completedAtKill.length).toBeLessThan(names.length);
    expect(runningAtKill.length).toBeGreaterThanOrEqual(1);

    const resumed = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '2', '--resume', '--quiet'], project.dir);
    expect(resumed.exitCode, resumed.all).toBe(0);
    const state = (await project.state())!;
    expect(state.session_id).toBe(killed.session_id);
    expect(names.map((n) => state.tasks[n]!.status)).toEqual(names.map(() => 'completed'));
    // Completed tasks were not run again: their records are as the killed run left them.
    for (const name of completedAtKill) expect(state.tasks[name]).toEqual(killed.tasks[name]);
    // Tasks the killed run had started ran again as their next attempt; the others once.
    for (const name of runningAtKill) expect(state.tasks[name]!.attempts).toBe(killed.tasks[name]!.attempts + 1);
    const events = await readEvents(project.paths.eventsPath);
    const completions = names.map((n) => events.filter((e) => e.type === 'completed' && e.task === n).length);
    expect(completions).toEqual(names.map(() => 1));
    // One result and one receipt file per task, and no temporary file of either left by the killed run.
    expect((await readdir(path.join(project.dir, '.agent/results'))).sort()).toEqual(
      names.flatMap((n) => [`${n}.md`, `${n}.receipt.json`]).sort(),
    );
    const left = (await readdir(project.paths.dir)).filter((f) => f.endsWith('.tmp') || f.includes('.lock'));
    expect(left).toEqual([]);
  }, 180_000);
});
