import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { listFiles, run, tempProject } from '../support/project.ts';
import { maxOverlap, startOrder } from '../support/timeline.ts';

const yamlTask = (id: string, deps: string[] = [], extra = '') =>
  `  - { id: ${id}, goal: "do ${id}", depends_on: [${deps.join(', ')}], delay_ms: 150${extra} }`;

describe('orchestrate (plan runner)', () => {
  it('runs a diamond in topological order, prints the batches, and records everything background mode does', async () => {
    const project = await tempProject();
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      ['tasks:', yamlTask('A'), yamlTask('B', ['A']), yamlTask('C', ['A']), yamlTask('D', ['B', 'C'])].join('\n'),
    );
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '4'], project.dir);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('Batch 1: A\n  Batch 2: B, C\n  Batch 3: D');
    const state = (await project.state())!;
    expect(Object.values(state.tasks).map((t) => t.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    const order = startOrder(state);
    expect(order[0]).toBe('A');
    expect(order.slice(1, 3).sort()).toEqual(['B', 'C']);
    expect(order[3]).toBe('D');
    expect(Date.parse(state.tasks.D!.started_at!)).toBeGreaterThanOrEqual(Date.parse(state.tasks.B!.ended_at!));
    expect(maxOverlap(state)).toBe(2);
    expect(await listFiles(path.join(project.dir, '.agent/results'))).toEqual(
      ['A', 'B', 'C', 'D'].flatMap((name) => [`${name}.md`, `${name}.receipt.json`]),
    );
    const events = await readEvents(project.paths.eventsPath);
    expect(
      events
        .filter((e) => e.type === 'completed')
        .map((e) => e.task)
        .sort(),
    ).toEqual(['A', 'B', 'C', 'D']);
    const agg = await run('aggregate', [], project.dir);
    expect(agg.exitCode).toBe(0);
  });

  it('never runs more than --workers tasks at once, and uses them all', async () => {
    const project = await tempProject();
    await writeFile(path.join(project.dir, 'plan.yaml'), ['tasks:', ...Array.from({ length: 8 }, (_, i) => yamlTask(`t${i}`))].join('\n'));
    expect((await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '3'], project.dir)).exitCode).toBe(0);
    expect(maxOverlap((await project.state())!)).toBe(3);
  });

  it('gives free workers to the highest priority first', async () => {
    const project = await tempProject();
    const plan = [
      'tasks:',
      yamlTask('low', [], ', priority: P3'),
      yamlTask('mid', [], ', priority: P1'),
      yamlTask('top', [], ', priority: P0'),
      yamlTask('mid2', [], ', priority: P1'),
    ];
    await writeFile(path.join(project.dir, 'plan.yaml'), plan.join('\n'));
    expect((await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '1'], project.dir)).exitCode).toBe(0);
    expect(startOrder((await project.state())!)).toEqual(['top', 'mid', 'mid2', 'low']);
  });

  it('serialises tasks that declare the same file', async () => {
    const project = await tempProject();
    const plan = [
      'tasks:',
      yamlTask('a', [], ', files: [src/app.ts]'),
      yamlTask('b', [], ', files: [src/app.ts]'),
      yamlTask('c', [], ', files: [other.ts]'),
    ];
    await writeFile(path.join(project.dir, 'plan.yaml'), plan.join('\n'));
    expect((await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '3'], project.dir)).exitCode).toBe(0);
    const state = (await project.state())!;
    expect(Date.parse(state.tasks.b!.started_at!)).toBeGreaterThanOrEqual(Date.parse(state.tasks.a!.ended_at!));
    expect(Date.parse(state.tasks.c!.started_at!)).toBeLessThan(Date.parse(state.tasks.a!.ended_at!));
  });

  it('skips the dependants of a failed task (exit 1), or stops everything with --on_failure stop', async () => {
    const project = await tempProject();
    const plan = ['tasks:', yamlTask('a', [], ', fail: true'), yamlTask('b', ['a']), yamlTask('c', ['b']), yamlTask('d')];
    await writeFile(path.join(project.dir, 'plan.yaml'), plan.join('\n'));
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '1'], project.dir);
    expect(result.exitCode).toBe(1);
    let state = (await project.state())!;
    expect(Object.fromEntries(Object.entries(state.tasks).map(([n, t]) => [n, [t.status, t.error]]))).toEqual({
      a: ['failed', 'mock agent failed on purpose (--fail)'],
      b: ['skipped', 'dependency a failed'],
      c: ['skipped', 'dependency b skipped'],
      d: ['completed', null],
    });
    const stopped = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '1', '--on_failure', 'stop'], project.dir);
    expect(stopped.exitCode).toBe(1);
    state = (await project.state())!;
    expect(state.tasks.d).toMatchObject({ status: 'skipped', error: 'stopped after a failed (--on_failure stop)' });
  });

  it('--resume re-runs only the tasks not completed', async () => {
    const project = await tempProject();
    const planPath = path.join(project.dir, 'plan.yaml');
    await writeFile(planPath, ['tasks:', yamlTask('a'), yamlTask('b', ['a'], ', fail: true'), yamlTask('c', ['b'])].join('\n'));
    expect((await run('orchestrate', ['plan.yaml', '--agent', 'mock'], project.dir)).exitCode).toBe(1);
    const first = (await project.state())!;
    await writeFile(planPath, ['tasks:', yamlTask('a'), yamlTask('b', ['a']), yamlTask('c', ['b'])].join('\n'));
    const resumed = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--resume'], project.dir);
    expect(resumed.exitCode).toBe(0);
    const state = (await project.state())!;
    expect(state.session_id).toBe(first.session_id);
    expect(state.tasks.a).toEqual(first.tasks.a);
    expect(state.tasks.b).toMatchObject({ status: 'completed', attempts: 2, agent: first.tasks.b!.agent });
    expect(state.tasks.c).toMatchObject({ status: 'completed', attempts: 1 });
  });

  it('refuses --resume when the session is not this plan', async () => {
    const project = await tempProject();
    await writeFile(path.join(project.dir, 'plan.yaml'), ['tasks:', yamlTask('a')].join('\n'));
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--resume'], project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/Cannot resume/);
    expect(await listFiles(path.join(project.dir, '.agent'))).toEqual([]);
  });

  it('refuses a cycle with its path, an unknown dependency and duplicate ids, writing nothing', async () => {
    const project = await tempProject();
    const cases: Array<[string, RegExp]> = [
      [
        ['tasks:', yamlTask('T-01', ['T-03']), yamlTask('T-02', ['T-01']), yamlTask('T-03', ['T-02'])].join('\n'),
        /cycle: T-01 -> T-03 -> T-02 -> T-01/,
      ],
      [['tasks:', yamlTask('a', ['ghost'])].join('\n'), /a depends on "ghost", which is not a task of the plan/],
      [['tasks:', yamlTask('a'), yamlTask('a')].join('\n'), /lists task a twice/],
    ];
    for (const [plan, message] of cases) {
      await writeFile(path.join(project.dir, 'plan.yaml'), plan);
      const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock'], project.dir);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    expect(await listFiles(project.dir)).toEqual(['plan.yaml']);
  });

  it('updates the status column of a master_plan.md', async () => {
    const project = await tempProject();
    const planPath = path.join(project.dir, 'master_plan.md');
    await writeFile(
      planPath,
      '# Plan\n\n| Task ID | Description | Dependencies | Status |\n|---|---|---|---|\n| T-01 | Scan | None | 🟡 Pending |\n| T-02 | Report | T-01 | ⏸️ Waiting |\n',
    );
    expect((await run('orchestrate', ['master_plan.md', '--agent', 'mock'], project.dir)).exitCode).toBe(0);
    const text = await readFile(planPath, 'utf8');
    expect(text).toContain('| T-01 | Scan | None | ✅ Completed |');
    expect(text).toContain('| T-02 | Report | T-01 | ✅ Completed |');
    expect(existsSync(path.join(project.dir, '.agent/results/T-02.md'))).toBe(true);
  });

  it.each([
    [[], /Missing PLAN/],
    [
      ['p.yaml'],
      /Missing --agent: pass --agent mock for a rehearsal \(no account needed; agents are simulated and their results are not findings\) or --agent claude for real Claude Code agents/,
    ],
    [['nope.yaml', '--agent', 'mock'], /Cannot read the plan .*nope.yaml/],
    [['p.yaml', '--agent', 'mock', '--workers', '0'], /Expected --workers to be a whole number from 1/],
    [['p.yaml', '--agent', 'gpt'], /Expected --agent to be one of mock, claude/],
    [['p.yaml', '--agent', 'mock', '--on_failure', 'panic'], /Expected --on_failure to be one of stop, continue/],
  ])('refuses %j', async (args, message) => {
    const project = await tempProject();
    const result = await run('orchestrate', args, project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});

describe('orchestrate --agent claude (fake claude CLI on PATH, following the contract)', () => {
  const FAKE = path.join(import.meta.dirname, '../support/fake-claude/claude');

  it('runs each task through claude -p with the plan-wide claude flags, recording cost and session ids', async () => {
    const project = await tempProject();
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      ['tasks:', '  - { id: a, goal: "answer a" }', '  - { id: b, goal: "answer b", depends_on: [a] }'].join('\n'),
    );
    const result = await run(
      'orchestrate',
      [
        'plan.yaml',
        '--agent',
        'claude',
        '--claude_bin',
        FAKE,
        '--model',
        'sonnet',
        '--max_turns',
        '7',
        '--permission_mode',
        'plan',
        '--',
        '--effort',
        'high',
      ],
      project.dir,
      { FAKE_CLAUDE_SCENARIO: 'success', FAKE_CLAUDE_LOG: project.dir },
    );
    expect(result.exitCode, result.all).toBe(0);
    const calls = (await listFiles(project.dir)).filter((f) => /^\d+\.json$/.test(f));
    expect(calls).toHaveLength(2);
    const call = JSON.parse(await readFile(path.join(project.dir, calls[0]!), 'utf8')) as { argv: string[]; stdin: string };
    expect(call.argv).toEqual([
      '-p',
      '--output-format',
      'stream-json',
      '--verbose',
      '--model',
      'sonnet',
      '--max-turns',
      '7',
      '--permission-mode',
      'plan',
      '--effort',
      'high',
    ]);
    expect(call.stdin).toMatch(/answer [ab]/);
    const state = (await project.state())!;
    for (const name of ['a', 'b']) {
      expect(state.tasks[name]).toMatchObject({
        status: 'completed',
        runner: 'claude',
        cost_usd: 0.0123,
        input_tokens: 100,
        output_tokens: 20,
      });
      expect(state.tasks[name]!.claude_session_id).toMatch(/^fake-session-\d+$/);
    }
    expect(state.tasks.a!.claude_session_id).not.toBe(state.tasks.b!.claude_session_id);
  });

  it('fails a task on a permanent error (401) without retrying, and skips its dependants', async () => {
    const project = await tempProject();
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      ['tasks:', '  - { id: a, goal: "fake-scenario:auth_401" }', '  - { id: b, goal: "b", depends_on: [a] }'].join('\n'),
    );
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'claude', '--claude_bin', FAKE], project.dir);
    expect(result.exitCode).toBe(1);
    const state = (await project.state())!;
    expect(state.tasks.a).toMatchObject({ status: 'failed', attempts: 1 });
    expect(state.tasks.a!.error).toMatch(/401/);
    expect(state.tasks.b).toMatchObject({ status: 'skipped', error: 'dependency a failed' });
  });

  it('sums cost and tokens over attempts: a max-turns failure, then a resumed success', async () => {
    const project = await tempProject();
    const planPath = path.join(project.dir, 'plan.yaml');
    await writeFile(planPath, 'tasks:\n  - { id: a, goal: "fake-scenario:max_turns" }\n');
    const failed = await run('orchestrate', ['plan.yaml', '--agent', 'claude', '--claude_bin', FAKE, '--max_turns', '2'], project.dir);
    expect(failed.exitCode).toBe(1);
    expect((await project.state())!.tasks.a).toMatchObject({ status: 'failed', cost_usd: 0.0123, input_tokens: 100 });
    expect((await project.state())!.tasks.a!.error).toMatch(/maximum number of turns \(2\)/);
    await writeFile(planPath, 'tasks:\n  - { id: a, goal: "now succeed" }\n');
    expect((await run('orchestrate', ['plan.yaml', '--agent', 'claude', '--claude_bin', FAKE, '--resume'], project.dir)).exitCode).toBe(0);
    expect((await project.state())!.tasks.a).toMatchObject({
      status: 'completed',
      attempts: 2,
      cost_usd: 0.0246,
      input_tokens: 200,
      output_tokens: 40,
    });
  });

  it('refuses claude flags in a mock rehearsal', async () => {
    const project = await tempProject();
    await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - { id: a, goal: g }\n');
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--model', 'opus'], project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/--model only apply to real agents: add --agent claude/);
    expect(await listFiles(project.dir)).toEqual(['plan.yaml']);
  });
});
