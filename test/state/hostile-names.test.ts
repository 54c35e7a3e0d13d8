// Task names that are also names of Object.prototype's members (`__proto__`, `constructor`, ...) are ordinary names.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPrompt } from '../../scripts/lib/agents/claude-prompt.ts';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { criticalPath, findCycle, topologicalBatches, validateGraph } from '../../scripts/lib/scheduling/graph.ts';
import { loadPlan, parseMarkdownPlan, parseYamlPlan } from '../../scripts/lib/plan/plan.ts';
import { buildReportData } from '../../scripts/lib/report/report-data.ts';
import { SessionStateSchema } from '../../scripts/lib/state/schema.ts';
import { parseStateJson } from '../../scripts/lib/state/model.ts';
import { summarize } from '../../scripts/lib/report/session-summary.ts';
import { buildStatusView, estimateTimeLeft } from '../../scripts/lib/progress/status-view.ts';
import { decodeState, encodeState, readState, updateState } from '../../scripts/lib/state/state-store.ts';
import { openSession, registerTask, setStatus } from '../../scripts/lib/scheduling/transitions.ts';
import { run, start, tempProject } from '../support/project.ts';

const HOSTILE = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'] as const;
const T0 = '2026-11-22T10:00:00.000Z';

function record(status: string, extra: Record<string, unknown> = {}) {
  return { status, agent: 'Agent-01', goal: 'g', registered_at: T0, ...extra };
}

/** A state whose tasks are given as JSON text, so `__proto__` is an own key as it is in a parsed file. */
function stateWithTasks(tasksJson: string) {
  return SessionStateSchema.parse(
    JSON.parse(`{"version":1,"session_id":"s","created_at":"${T0}","updated_at":"${T0}","tasks":${tasksJson}}`),
  );
}

describe('task names that are Object.prototype members', () => {
  it('keeps a __proto__ task through schema validation, the codec and the cached JSON copy', async () => {
    const state = stateWithTasks(`{"__proto__":${JSON.stringify(record('completed'))},"a":${JSON.stringify(record('pending'))}}`);
    expect(Object.keys(state.tasks)).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(state.tasks)).toBeNull();
    const text = await encodeState(state);
    expect(text).toContain('__proto__');
    const first = await decodeState(text, '/nonexistent/hostile-a.yaml');
    const again = await decodeState(text, '/nonexistent/hostile-a.yaml');
    for (const copy of [first, again]) {
      expect(Object.keys(copy.tasks)).toEqual(['__proto__', 'a']);
      expect(copy.tasks['__proto__']!.status).toBe('completed');
      expect(Object.getPrototypeOf(copy.tasks)).toBeNull();
    }
  });

  it('finds no inherited member when looking up an unregistered name, in fresh and cached reads', async () => {
    const state = stateWithTasks(`{"a":${JSON.stringify(record('pending'))}}`);
    const text = await encodeState(state);
    for (const copy of [
      state,
      await decodeState(text, '/nonexistent/hostile-b.yaml'),
      await decodeState(text, '/nonexistent/hostile-b.yaml'),
      parseStateJson(JSON.stringify(state)),
    ]) {
      for (const name of HOSTILE) {
        const lookedUp: unknown = (copy.tasks as Record<string, unknown>)[name as string];
        expect(lookedUp).toBeUndefined();
        expect(name in copy.tasks).toBe(false);
      }
    }
  });

  it('registers, runs and completes every such name through the state store, and logs each', async () => {
    const { paths } = await tempProject();
    await updateState(paths, (tx) => {
      const state = openSession(tx, { sessionId: 's1' });
      for (const name of HOSTILE) registerTask(tx, state, { name, goal: `do ${name}`, runner: 'mock', pid: process.pid });
    });
    for (const name of HOSTILE) {
      await updateState(paths, (tx) => setStatus(tx, tx.state!, name, 'running'));
      await updateState(paths, (tx) => setStatus(tx, tx.state!, name, 'completed'));
    }
    const state = (await readState(paths))!;
    expect(Object.keys(state.tasks)).toEqual([...HOSTILE]);
    expect(Object.values(state.tasks).map((task) => task.status)).toEqual(HOSTILE.map(() => 'completed'));
    const text = await readFile(paths.statePath, 'utf8');
    for (const name of HOSTILE) expect(text).toContain(`${name}:`);
    const events = await readEvents(paths.eventsPath);
    expect(events.filter((e) => e.type === 'registered').map((e) => e.task)).toEqual([...HOSTILE]);
    expect(events.filter((e) => e.type === 'completed').map((e) => e.task)).toEqual([...HOSTILE]);
    const report = buildReportData(state);
    expect(report.tasks.map((task) => task.task).sort()).toEqual([...HOSTILE].sort());
    expect(summarize(state).counts.completed).toBe(HOSTILE.length);
  });

  it('treats a dependency on an unregistered toString or constructor as missing in reports and views', () => {
    const state = stateWithTasks(`{"a":${JSON.stringify(record('waiting', { depends_on: ['toString', 'constructor'] }))}}`);
    const report = buildReportData(state);
    expect(report.tasks).toHaveLength(1);
    const view = buildStatusView(state, { now: Date.parse(T0) });
    expect(view.rows.map((row) => row.name)).toEqual(['a']);
    expect(estimateTimeLeft(state, Date.parse(T0))).toBeNull();
  });

  it('builds graphs of such names and refuses a dependency on an inherited member that is not a task', () => {
    const graph = Object.fromEntries([
      ['__proto__', []],
      ['constructor', ['__proto__']],
      ['toString', ['constructor', '__proto__']],
    ]) as Record<string, string[]>;
    expect(topologicalBatches(graph)).toEqual([['__proto__'], ['constructor'], ['toString']]);
    expect(findCycle(graph)).toBeNull();
    expect(
      criticalPath(
        graph,
        Object.fromEntries([
          ['__proto__', 5],
          ['constructor', 7],
          ['toString', 1],
        ]),
      ),
    ).toEqual({
      path: ['__proto__', 'constructor', 'toString'],
      lengthMs: 13,
    });
    expect(() => validateGraph({ a: ['constructor'] })).toThrow(/Task a depends on "constructor", which is not a task of the plan/);
    expect(() => validateGraph({ a: ['hasOwnProperty'] })).toThrow(/not a task of the plan/);
    expect(() => topologicalBatches({ a: ['valueOf'] })).not.toThrow();
  });

  it('reads plans whose tasks are named constructor and __proto__, and refuses one depending on an absent constructor', () => {
    const md = parseMarkdownPlan(
      '| Task ID | Description | Dependencies |\n|---|---|---|\n| __proto__ | first | None |\n| constructor | second | __proto__ |\n',
    );
    expect(md.tasks.map((task) => [task.id, task.dependsOn])).toEqual([
      ['__proto__', []],
      ['constructor', ['__proto__']],
    ]);
    const yaml = parseYamlPlan('tasks:\n  - { id: constructor, goal: c }\n  - { id: __proto__, goal: p, depends_on: [constructor] }\n');
    expect(yaml.tasks.map((task) => task.id)).toEqual(['constructor', '__proto__']);
  });

  it('refuses a plan file depending on constructor when no task has that name', async () => {
    const project = await tempProject();
    const file = path.join(project.dir, 'plan.yaml');
    await writeFile(file, 'tasks:\n  - { id: a, goal: A, depends_on: [constructor] }\n');
    await expect(loadPlan(file)).rejects.toThrow(/depends on "constructor", which is not a task of the plan/);
  });

  it('runs a plan of tasks named constructor, __proto__ and toString that depend on each other', async () => {
    const project = await tempProject();
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      'tasks:\n  - { id: constructor, goal: c, delay_ms: 20 }\n  - { id: __proto__, goal: p, depends_on: [constructor], delay_ms: 20 }\n  - { id: toString, goal: t, depends_on: [__proto__, constructor], delay_ms: 20 }\n',
    );
    const result = await run('orchestrate', ['plan.yaml', '--workers', '2', '--agent', 'mock'], project.dir);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const state = (await project.state())!;
    expect(Object.entries(state.tasks).map(([name, task]) => [name, task.status])).toEqual([
      ['constructor', 'completed'],
      ['__proto__', 'completed'],
      ['toString', 'completed'],
    ]);
    expect(Date.parse(state.tasks['__proto__']!.started_at!)).toBeGreaterThanOrEqual(Date.parse(state.tasks['constructor']!.ended_at!));
    const agg = await run('aggregate', ['--json'], project.dir);
    expect(agg.exitCode).toBe(0);
    expect(agg.stdout).toContain('"__proto__"');
  });

  it('runs background agents named __proto__, constructor, toString and hasOwnProperty to completion', async () => {
    const project = await tempProject();
    const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];
    const agents = names.map((name, i) =>
      start(
        'spawn-agent-mock',
        [
          '--session_id',
          'hostile',
          '--task_name',
          name,
          '--goal',
          `do ${name}`,
          '--delay_ms',
          '50',
          ...(i > 0 ? ['--depends_on', names[i - 1]!] : []),
        ],
        project.dir,
      ),
    );
    const results = await Promise.all(agents);
    expect(results.map((r) => r.exitCode)).toEqual(names.map(() => 0));
    const state = (await project.state())!;
    expect(Object.keys(state.tasks).sort()).toEqual([...names].sort());
    expect(Object.values(state.tasks).every((task) => task.status === 'completed')).toBe(true);
    const events = await readEvents(project.paths.eventsPath);
    expect(events.filter((e) => e.type === 'completed').map((e) => e.task)).toEqual(names);
    const agg = await run('aggregate', [], project.dir);
    expect(agg.exitCode).toBe(0);
    const report = await readFile(path.join(project.dir, '.agent/final_output.md'), 'utf8');
    for (const name of names) expect(report).toContain(name);
  });

  it('gives up on a dependency named toString or constructor that is never registered, after --dep_timeout', async () => {
    const project = await tempProject();
    for (const dep of ['toString', 'constructor']) {
      const result = await run(
        'spawn-agent-mock',
        ['--task_name', `needs-${dep}`, '--goal', 'g', '--depends_on', dep, '--dep_timeout', '1', '--delay_ms', '10', '--wait'],
        project.dir,
      );
      expect(result.exitCode).toBe(1);
      expect(result.all).toContain(dep);
      const task = (await project.state())!.tasks[`needs-${dep}`]!;
      expect(task.status).toBe('failed');
      expect(task.error).toContain(dep);
    }
  });

  it('writes "(no result file)" in a prompt for a dependency named toString that has no result', () => {
    const prompt = buildPrompt({
      taskName: 'report',
      agent: 'Agent-02',
      goal: 'g',
      dependsOn: ['toString', 'constructor', 'scan'],
      files: [],
      session_id: 's',
      cwd: '/work/app',
      resultPath: '/work/app/.agent/results/report.md',
      dependencyResults: { scan: '/work/app/.agent/results/scan.md' },
    });
    expect(prompt).toContain('- toString: (no result file)\n- constructor: (no result file)\n- scan: /work/app/.agent/results/scan.md');
    expect(prompt).not.toContain('native code');
  });
});
