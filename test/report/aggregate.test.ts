import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ReportData } from '../../scripts/lib/report/report-data.ts';
import { finishedEvents, finishedState, writeFinishedResults, writeSession } from '../support/fixed-session.ts';
import { listFiles, run, start, tempProject } from '../support/project.ts';

async function finishedProject() {
  const project = await tempProject('dto-aggregate-');
  const state = finishedState(path.join(project.dir, '.agent/results'));
  await writeFinishedResults(state);
  await writeSession(project.paths.dir, state, finishedEvents());
  return project;
}

describe('aggregate', () => {
  it('writes final_output.md with the summary, both diagrams and every result, and prints the execution summary', async () => {
    const project = await finishedProject();
    const result = await run('aggregate', [], project.dir);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toContain('EXECUTION SUMMARY');
    expect(result.stdout).toContain('Completed: 3 of 5 tasks');
    expect(result.stdout).toContain('Failed: 1 task (security: claude exited with code 1: API error (overloaded))');
    expect(result.stdout).toContain(`Wrote ${path.join(project.dir, '.agent/final_output.md')}.`);
    const report = await readFile(path.join(project.dir, '.agent/final_output.md'), 'utf8');
    expect(report).toContain('```mermaid\nflowchart LR');
    expect(report).toContain('```mermaid\ngantt');
    expect(report).toContain('quality (try 1) failed, retried :crit');
    expect(report.indexOf('### scan (')).toBeLessThan(report.indexOf('### perf ('));
    expect(report.indexOf('### perf (')).toBeLessThan(report.indexOf('### report ('));
  });

  it('--json prints the same summary as data, with the paths it wrote', async () => {
    const project = await finishedProject();
    const result = await run('aggregate', ['--json', '--html', '--out', 'docs/final.md'], project.dir);
    expect(result.exitCode, result.all).toBe(0);
    const data = JSON.parse(result.stdout) as ReportData & { report_path: string; html_path: string };
    expect(data).toMatchObject({
      schema_version: 1,
      session_id: 'done-fixture',
      total: 5,
      counts: { completed: 3, failed: 1, skipped: 1 },
      makespan_ms: 8800,
      work_ms: 12500,
      parallelism: 1.42,
      critical_path: { tasks: ['scan', 'perf'], length_ms: 8500 },
      cost: { usd: 0.0679 },
      report_path: path.join(project.dir, 'docs/final.md'),
      html_path: path.join(project.dir, 'docs/final.html'),
    });
    expect(data.timeline).toHaveLength(5);
    expect(data.tasks.map((t) => t.task)).toEqual(['scan', 'quality', 'security', 'perf', 'report']);
    expect(await listFiles(path.join(project.dir, 'docs'))).toEqual(['final.html', 'final.md']);
  });

  it('reports a real run of mock agents, with the timeline from events.jsonl', async () => {
    const project = await tempProject('dto-aggregate-');
    const agents = [
      start('spawn-agent-mock', ['--task_name', 'a', '--goal', 'first', '--delay_ms', '100', '--session_id', 's1'], project.dir),
      // --wait: a queued task's agent stays until the task ended, so the report below sees both ended.
      start(
        'spawn-agent-mock',
        ['--task_name', 'b', '--goal', 'second', '--delay_ms', '100', '--depends_on', 'a', '--session_id', 's1', '--wait'],
        project.dir,
      ),
    ];
    expect((await Promise.all(agents)).map((r) => r.exitCode)).toEqual([0, 0]);
    const result = await run('aggregate', ['--json'], project.dir);
    const data = JSON.parse(result.stdout) as ReportData;
    expect(data.timeline.map((s) => [s.task, s.attempt, s.outcome])).toEqual([
      ['a', 1, 'completed'],
      ['b', 1, 'completed'],
    ]);
    expect(data.critical_path.tasks).toEqual(['a', 'b']);
    expect(data.cost.usd).toBeNull();
  });

  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['--out'], /--out/],
    [['stray'], /Unexpected argument "stray"/],
  ])('refuses bad flags %j with exit 2 and a clear message', async (args, message) => {
    const project = await finishedProject();
    const result = await run('aggregate', args, project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('exits 2 when there is no session', async () => {
    const project = await tempProject('dto-aggregate-');
    const result = await run('aggregate', [], project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/No session found/);
    expect(await listFiles(project.dir)).toEqual([]);
  });
});

describe('aggregate: what to check before presenting results', () => {
  const FAKE_CLAUDE = path.join(import.meta.dirname, '../support', 'fake-claude', 'claude');

  it('a mock run opens final_output.md and the summary with the rehearsal banner; its result files say SIMULATED', async () => {
    const project = await tempProject('dto-aggregate-');
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      'tasks:\n  - { id: a, goal: "find bugs", delay_ms: 50 }\n  - { id: b, goal: "fix them", depends_on: [a], delay_ms: 50 }\n',
    );
    expect((await run('orchestrate', ['plan.yaml', '--agent', 'mock'], project.dir)).exitCode).toBe(0);
    const result = await run('aggregate', [], project.dir);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout.split('\n')[0]).toMatch(
      /^REHEARSAL WITH SIMULATED AGENTS: no real work was done\. 2 of 2 tasks ran with mock agents/,
    );
    const report = await readFile(path.join(project.dir, '.agent/final_output.md'), 'utf8');
    expect(report.split('\n')[0]).toMatch(/^> \*\*REHEARSAL WITH SIMULATED AGENTS:\*\* no real work was done\./);
    const resultFile = await readFile(path.join(project.dir, '.agent/results/a.md'), 'utf8');
    expect(resultFile).toMatch(/^simulated: true$/m);
    expect(resultFile).toContain('# a (SIMULATED)');
    expect(resultFile).toContain('**SIMULATED: a mock agent wrote this (a rehearsal); no real work was done');
    const json = JSON.parse((await run('aggregate', ['--json'], project.dir)).stdout) as {
      checks: unknown;
      tasks: Array<{ task: string; verdict: unknown; receipts: unknown; receipt_path: string }>;
    };
    expect(json.checks).toEqual({
      rehearsal: true,
      simulated_tasks: ['a', 'b'],
      permission_denials: [],
      empty_results: [],
      unverified: [],
      contradicted: [],
    });
    // A mock agent's receipts are simulated, and say so; its verdict rests on them.
    expect(json.tasks[0]).toMatchObject({
      task: 'a',
      verdict: { value: 'verified', evidence: ['1 search (simulated)'] },
      receipts: { tool_calls: { search: 1 }, simulated: true },
      receipt_path: path.join(project.dir, '.agent/results/a.receipt.json'),
    });
  });

  it('real agents: no banner; permission denials per task with the tool names, and empty answers, in the summary and --json', async () => {
    const project = await tempProject('dto-aggregate-');
    const env = { CLAUDE_BIN: FAKE_CLAUDE };
    for (const [name, scenario] of [
      ['ok', 'success'],
      ['denied', 'denials'],
      ['blank', 'empty'],
    ] as const) {
      const spawned = await run(
        'spawn-agent',
        ['--session_id', 'real', '--task_name', name, '--goal', `fake-scenario:${scenario} do ${name}`],
        project.dir,
        env,
      );
      expect(spawned.exitCode, spawned.all).toBe(0);
    }
    // These fake agents answer without a single tool call: their success is claimed without evidence (exit 1).
    const result = await run('aggregate', [], project.dir);
    expect(result.exitCode, result.all).toBe(1);
    expect(result.stdout).toContain(
      'Unverified (success claimed without evidence: do not present as done): ok (no tool call at all); ' +
        'denied (no tool call at all); blank (no tool call at all; the answer is empty).',
    );
    expect(result.stdout).not.toContain('REHEARSAL');
    expect(result.stdout).toContain('Permission denials: denied (2: Bash, Write).');
    expect(result.stdout).toContain('Empty results: blank.');
    const report = await readFile(path.join(project.dir, '.agent/final_output.md'), 'utf8');
    expect(report).not.toContain('REHEARSAL');
    expect(report).toContain('- Permission denials: denied (2: Bash, Write)');
    expect(report).toContain('- Empty results: blank');
    const json = JSON.parse((await run('aggregate', ['--json'], project.dir)).stdout) as { checks: unknown };
    expect(json.checks).toEqual({
      rehearsal: false,
      simulated_tasks: [],
      permission_denials: [{ task: 'denied', count: 2, tools: ['Bash', 'Write'] }],
      empty_results: ['blank'],
      unverified: [
        { task: 'ok', evidence: ['no tool call at all'] },
        { task: 'denied', evidence: ['no tool call at all'] },
        { task: 'blank', evidence: ['no tool call at all', 'the answer is empty'] },
      ],
      contradicted: [],
    });
  });
});
