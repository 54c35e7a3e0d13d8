import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { run, start, tempProject } from '../support/project.ts';

describe('a plan runner whose session is replaced while it runs', () => {
  it('stops, and never claims or skips the same-named tasks of the session that replaced it', async () => {
    const project = await tempProject();
    const task = (id: string, deps: string) => `  - { id: ${id}, goal: "do ${id}", depends_on: [${deps}], delay_ms: 1500 }`;
    await writeFile(path.join(project.dir, 'plan.yaml'), ['tasks:', task('A', ''), task('B', 'A'), task('C', 'B')].join('\n'));
    const runner = start('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '1', '--session_id', 'first'], project.dir);
    // Wait until the plan's first task runs, then start another session that reuses the name B.
    for (let i = 0; i < 200; i++) {
      const state = await project.state();
      if (state?.tasks.A?.status === 'running') break;
      await delay(50);
    }
    const other = await run(
      'spawn-agent-mock',
      ['--session_id', 'second', '--task_name', 'B', '--goal', 'the other B', '--delay_ms', '2500'],
      project.dir,
    );
    const first = await runner;
    expect(other.exitCode).toBe(0);
    expect(first.exitCode).toBe(1);
    expect(first.stderr).toContain('was replaced by session second');
    const state = (await project.state())!;
    expect(state.session_id).toBe('second');
    expect(Object.keys(state.tasks)).toEqual(['B']);
    expect(state.tasks.B!.status).toBe('completed');
    expect(state.tasks.B!.goal).toBe('the other B');
    // Only the mock agent of session "second" touched its B: one started and one completed event for it.
    const events = (await readEvents(project.paths.eventsPath)).filter((e) => e.task === 'B');
    expect(events.filter((e) => e.type === 'started')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'skipped' || e.type === 'failed' || e.type === 'cancelled')).toHaveLength(0);
  }, 60_000);
});
