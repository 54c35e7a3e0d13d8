import { describe, expect, it } from 'vitest';
import { parseMarkdownPlan, parseYamlPlan } from '../../scripts/lib/plan/plan.ts';
import { applyPlanStatuses } from '../../scripts/lib/plan/plan-status.ts';
import { SessionStateSchema } from '../../scripts/lib/state/schema.ts';

const SEED_PLAN = `# Task Plan

## Original Request
> Analyze my TypeScript project for code quality, security, and performance

## Task Decomposition
| Task ID | Description | Dependencies | Agent |
|---------|-------------|--------------|-------|
| T-01 | Scan source files | None | Agent-01 |
| T-02 | Check code quality | T-01 | Agent-02 |
| T-03 | Security scan | T-01 | Agent-03 |
| T-04 | Performance analysis | T-01 | Agent-04 |
| T-05 | Generate report | T-02,T-03,T-04 | Agent-05 |
`;

describe('plans', () => {
  it("reads the seeds' master plan table", () => {
    const plan = parseMarkdownPlan(SEED_PLAN, 'master_plan.md');
    expect(plan.request).toBe('Analyze my TypeScript project for code quality, security, and performance');
    expect(plan.tasks).toEqual([
      { id: 'T-01', goal: 'Scan source files', dependsOn: [], priority: 'P2', files: [] },
      { id: 'T-02', goal: 'Check code quality', dependsOn: ['T-01'], priority: 'P2', files: [] },
      { id: 'T-03', goal: 'Security scan', dependsOn: ['T-01'], priority: 'P2', files: [] },
      { id: 'T-04', goal: 'Performance analysis', dependsOn: ['T-01'], priority: 'P2', files: [] },
      { id: 'T-05', goal: 'Generate report', dependsOn: ['T-02', 'T-03', 'T-04'], priority: 'P2', files: [] },
    ]);
  });

  it('reads priority and files columns, and names with descriptions', () => {
    const plan = parseMarkdownPlan(
      '| Task ID | Task Name | Description | Dependencies | Priority | Files |\n|---|---|---|---|---|---|\n| a | Model | Add the user model | - | P0 | src/user.ts, src/db.ts |\n',
    );
    expect(plan.tasks[0]).toEqual({
      id: 'a',
      goal: 'Model: Add the user model',
      dependsOn: [],
      priority: 'P0',
      files: ['src/user.ts', 'src/db.ts'],
    });
  });

  it('refuses a table without tasks, bad ids and bad priorities, naming the line', () => {
    expect(() => parseMarkdownPlan('# nothing here\n', 'p.md')).toThrow(/No task table found in p.md/);
    expect(() => parseMarkdownPlan('| Task ID | Description | Dependencies |\n|---|---|---|\n| ../x | d | None |\n', 'p.md')).toThrow(
      /p.md:3: task id "..\/x"/,
    );
    expect(() =>
      parseMarkdownPlan('| Task ID | Description | Dependencies | Priority |\n|---|---|---|---|\n| a | d | None | urgent |\n', 'p.md'),
    ).toThrow(/priority "URGENT" of a/);
  });

  it('reads a YAML plan and refuses unknown keys', () => {
    const plan = parseYamlPlan(
      'request: r\nmax_workers: 3\ntasks:\n  - { id: a, goal: A, delay_ms: 10 }\n  - { id: b, goal: B, depends_on: [a], priority: P0, files: [x] }\n',
    );
    expect(plan).toMatchObject({ request: 'r', maxWorkers: 3, format: 'yaml' });
    expect(plan.tasks).toEqual([
      { id: 'a', goal: 'A', dependsOn: [], priority: 'P2', files: [], delayMs: 10, fail: undefined },
      { id: 'b', goal: 'B', dependsOn: ['a'], priority: 'P0', files: ['x'], delayMs: undefined, fail: undefined },
    ]);
    expect(() => parseYamlPlan('tasks:\n  - { id: a, goal: A, dependz: [b] }\n', 'p.yaml')).toThrow(/p.yaml does not match.*dependz/);
    expect(() => parseYamlPlan('tasks: [', 'p.yaml')).toThrow(/not valid YAML/);
  });

  it('rewrites status cells with the seeds icons and adds a Status column when there is none', () => {
    const state = SessionStateSchema.parse({
      version: 1,
      session_id: 's',
      created_at: '2026-11-22T10:00:00.000Z',
      updated_at: '2026-11-22T10:00:00.000Z',
      tasks: {
        'T-01': {
          status: 'completed',
          agent: 'Agent-01',
          goal: 'g',
          registered_at: '2026-11-22T10:00:00.000Z',
          started_at: '2026-11-22T10:00:01.000Z',
          ended_at: '2026-11-22T10:00:03.000Z',
        },
        'T-02': {
          status: 'running',
          agent: 'Agent-02',
          goal: 'g',
          registered_at: '2026-11-22T10:00:00.000Z',
          started_at: '2026-11-22T10:00:03.000Z',
        },
      },
    });
    const out = applyPlanStatuses(SEED_PLAN, state);
    expect(out.split('\n').slice(6, 10)).toEqual([
      '| Task ID | Description | Dependencies | Agent | Status |',
      '|---------|-------------|--------------|-------| --- |',
      '| T-01 | Scan source files | None | Agent-01 | ✅ Completed |',
      '| T-02 | Check code quality | T-01 | Agent-02 | 🔵 Running |',
    ]);
    expect(out.split('\n').slice(0, 6).join('\n')).toBe(SEED_PLAN.split('\n').slice(0, 6).join('\n'));
    const withStatus = '| Task ID | Agent | Status | Start Time | End Time |\n|---|---|---|---|---|\n| T-01 | - | 🟡 Pending | - | - |\n';
    expect(applyPlanStatuses(withStatus, state)).toBe(
      '| Task ID | Agent | Status | Start Time | End Time |\n|---|---|---|---|---|\n| T-01 | Agent-01 | ✅ Completed | 10:00:01 | 10:00:03 |\n',
    );
  });

  it('keeps rows without a leading pipe in the table, as GitHub does', () => {
    const plan = parseMarkdownPlan(
      '| Task ID | Description | Dependencies |\n|---|---|---|\n| a | do a | None |\nb | do b | a\nc | do c | a, b |\n',
    );
    expect(plan.tasks.map((task) => [task.id, task.goal, task.dependsOn])).toEqual([
      ['a', 'do a', []],
      ['b', 'do b', ['a']],
      ['c', 'do c', ['a', 'b']],
    ]);
  });

  it('refuses a row with a missing or an extra cell, naming its line', () => {
    const head = '# Plan\n\n| Task ID | Description | Dependencies |\n|---|---|---|\n| a | do a | None |\n';
    expect(() => parseMarkdownPlan(`${head}| b | do b |\n`, 'p.md')).toThrow(/p\.md:6: this row has 2 cells but the table header has 3/);
    expect(() => parseMarkdownPlan(`${head}| b | do b | a | extra |\n`, 'p.md')).toThrow(
      /p\.md:6: this row has 4 cells but the table header has 3/,
    );
    expect(() => parseMarkdownPlan(`${head}Some notes right under the table\n`, 'p.md')).toThrow(/p\.md:6: this row has 1 cell but/);
    expect(parseMarkdownPlan(`${head}\nSome notes after a blank line\n`).tasks).toHaveLength(1);
  });

  it('counts escaped pipes as text, not as cell borders', () => {
    const plan = parseMarkdownPlan('| Task ID | Description | Dependencies |\n|---|---|---|\n| a | grep `x \\| y` in src | None |\n');
    expect(plan.tasks[0]!.goal).toBe('grep `x | y` in src');
  });

  it('refuses a blank description with the row number, as --goal "" is refused', () => {
    expect(() =>
      parseMarkdownPlan('| Task ID | Description | Dependencies |\n|---|---|---|\n| a | do a | None |\n| b |  | a |\n', 'p.md'),
    ).toThrow(/p\.md:4: task b has an empty Description cell/);
    expect(() => parseMarkdownPlan('| Task ID | Dependencies |\n|---|---|\n| a | None |\n', 'p.md')).toThrow(
      /p\.md:1: the task table has no Description/,
    );
    expect(() => parseYamlPlan('tasks:\n  - { id: a, goal: "   " }\n', 'p.yaml')).toThrow(
      /tasks\.0\.goal: must say what the agent must do/,
    );
  });

  it('ignores a table inside a fenced code block', () => {
    const text =
      '```\n| Task ID | Description | Dependencies |\n|---|---|---|\n| x | in code | None |\n```\n\n| Task ID | Description | Dependencies |\n|---|---|---|\n| a | real | None |\n';
    expect(parseMarkdownPlan(text).tasks.map((task) => task.id)).toEqual(['a']);
  });

  it('rewrites only the Status cell, keeping extra cells, alignment, escapes, line breaks and trailing text', () => {
    const state = SessionStateSchema.parse({
      version: 1,
      session_id: 's',
      created_at: '2026-11-22T10:00:00.000Z',
      updated_at: '2026-11-22T10:00:00.000Z',
      tasks: {
        a: { status: 'completed', agent: 'Agent-01', goal: 'g', registered_at: '2026-11-22T10:00:00.000Z' },
        b: { status: 'running', agent: 'Agent-02', goal: 'g', registered_at: '2026-11-22T10:00:00.000Z' },
      },
    });
    const text = [
      '| Task ID | Description | Dependencies | Status | Notes |',
      '|:--------|:-----------:|-------------:|--------|-------|',
      '| a | grep `x \\| y` | None | 🟡 Pending | keep **me** |',
      'b  |   do b   | a |    | also \\| kept',
      '| c | unknown to the session | a | 🟡 Pending | untouched |',
      'Trailing text that is not a row.',
      '',
    ].join('\r\n');
    const out = applyPlanStatuses(text, state);
    expect(out.split('\r\n')).toEqual([
      '| Task ID | Description | Dependencies | Status | Notes |',
      '|:--------|:-----------:|-------------:|--------|-------|',
      '| a | grep `x \\| y` | None | ✅ Completed | keep **me** |',
      'b  |   do b   | a |    🔵 Running | also \\| kept',
      '| c | unknown to the session | a | 🟡 Pending | untouched |',
      'Trailing text that is not a row.',
      '',
    ]);
    expect(applyPlanStatuses(out, state)).toBe(out);
  });

  it('adds a Status column without touching a user cell after the last column', () => {
    const state = SessionStateSchema.parse({
      version: 1,
      session_id: 's',
      created_at: '2026-11-22T10:00:00.000Z',
      updated_at: '2026-11-22T10:00:00.000Z',
      tasks: { a: { status: 'failed', agent: 'Agent-01', goal: 'g', registered_at: '2026-11-22T10:00:00.000Z' } },
    });
    const text = '| Task ID | Description | Dependencies |\n|---|---|---|\n| a | do a | None |\n| b | do b | a | a user note |\n';
    expect(applyPlanStatuses(text, state)).toBe(
      '| Task ID | Description | Dependencies | Status |\n|---|---|---| --- |\n| a | do a | None | ❌ Failed |\n| b | do b | a | a user note |\n',
    );
  });
});
