// orchestrate - : the plan on standard input (a heredoc in one Bash call), validated, saved under .agent/plans/, then run.
import { execa } from 'execa';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RUN_PATH } from '../../scripts/lib/launcher/dist.ts';
import { applyPlanStatuses } from '../../scripts/lib/plan/plan-status.ts';
import { readPlanInput, withSavedPlan } from '../../scripts/lib/plan/plan-input.ts';
import { spec } from '../../scripts/orchestrate.ts';
import { writeFileAtomic } from '../../scripts/lib/state/atomic-write.ts';
import type { SessionState } from '../../scripts/lib/state/schema.ts';
import { listFiles, readFile, tempProject } from '../support/project.ts';

/** Runs `scripts/run orchestrate - ARGS` with `input` on standard input, as a heredoc gives it (no shell in between). */
function orchestrate(args: string[], input: string, cwd: string) {
  return execa(RUN_PATH, ['orchestrate', ...args], { cwd, input, reject: false, all: true });
}

/** Waits for a detached run as the model does: poll-session until it no longer exits 3 (timeout). */
async function waitForRun(cwd: string): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const poll = await execa(RUN_PATH, ['poll-session', '--timeout', '60'], { cwd, reject: false, all: true });
    if (poll.exitCode !== 3) {
      expect(poll.exitCode, poll.all).toBe(0);
      return;
    }
  }
  throw new Error('the detached run did not end');
}

const statuses = (state: SessionState | null) => Object.fromEntries(Object.entries(state?.tasks ?? {}).map(([n, t]) => [n, t.status]));

const MARKDOWN_PLAN = [
  '# Master plan',
  '',
  '## Request',
  '> Survey the repository',
  '',
  '| Task ID | Description | Dependencies | Priority |',
  '|---------|-------------|--------------|----------|',
  '| T-01 | List the source files | None | P1 |',
  '| T-02 | Read the tests | None | P2 |',
  '| T-03 | Summarise both | T-01, T-02 | P2 |',
  '',
].join('\n');

const YAML_PLAN = [
  'request: Survey the repository',
  'max_workers: 2',
  'tasks:',
  '  - { id: scan, goal: "List the source files", delay_ms: 50 }',
  '  - { id: tests, goal: "Read the tests", delay_ms: 50 }',
  '  - { id: report, goal: "Summarise both", depends_on: [scan, tests], delay_ms: 50 }',
  '',
].join('\n');

/** The saved plan's path, from the `Plan <path>: ...` line (foreground) or the `Plan: <path> (...)` line (--detach). */
function savedPath(stdout: string): string {
  const match = /^Plan:? (\/\S+?):? /m.exec(stdout);
  expect(match, stdout).not.toBeNull();
  return match![1]!;
}

describe('orchestrate - (the plan on standard input)', () => {
  it.each([
    ['Markdown', MARKDOWN_PLAN, '.md', ['T-01', 'T-02', 'T-03']],
    ['YAML', YAML_PLAN, '.yaml', ['scan', 'tests', 'report']],
  ] as const)('runs a %s plan in the foreground and saves it under the session id', async (_kind, text, extension, tasks) => {
    const project = await tempProject();
    const result = await orchestrate(['-', '--agent', 'mock'], text, project.dir);
    expect(result.exitCode, result.all).toBe(0);
    const state = (await project.state())!;
    expect(statuses(state)).toEqual(Object.fromEntries(tasks.map((task) => [task, 'completed'])));
    const saved = path.join(project.dir, '.agent', 'plans', `${state.session_id}${extension}`);
    expect(savedPath(result.stdout)).toBe(saved);
    expect(result.stdout).toContain('Request: Survey the repository');
    expect(state.plan_path).toBe(saved);
    // The exact text; a Markdown plan also gets its status cells, as a plan file does (and nothing else changes).
    expect(await readFile(saved, 'utf8')).toBe(extension === '.md' ? applyPlanStatuses(text, state) : text);
    expect(await listFiles(path.join(project.dir, '.agent', 'plans'))).toEqual([path.basename(saved)]);
    // --resume takes the saved path: the same session, nothing left to run.
    const resumed = await execa(RUN_PATH, ['orchestrate', saved, '--agent', 'mock', '--resume'], {
      cwd: project.dir,
      reject: false,
      all: true,
    });
    expect(resumed.exitCode, resumed.all).toBe(0);
    expect((await project.state())!.session_id).toBe(state.session_id);
  });

  it.each([
    ['Markdown', MARKDOWN_PLAN, '.md'],
    ['YAML', YAML_PLAN, '.yaml'],
  ] as const)('starts a %s plan with --detach: the background run reads the saved file', async (_kind, text, extension) => {
    const project = await tempProject();
    const result = await orchestrate(['-', '--agent', 'mock', '--detach'], text, project.dir);
    expect(result.exitCode, result.all).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    const sessionId = /^Started session (\S+) in the background \(pid \d+\): 3 tasks, mock agents\.$/.exec(lines[0]!)?.[1];
    expect(sessionId, result.stdout).toBeDefined();
    const saved = path.join(project.dir, '.agent', 'plans', `${sessionId}${extension}`);
    expect(lines.slice(1)).toEqual([
      `Plan: ${saved} (saved from standard input; --resume takes this path)`,
      `Log: ${path.join(project.paths.dir, `${sessionId}.log`)}`,
      expect.stringMatching(/^Wait: ".*\/scripts\/run" poll-session --until_done$/),
      expect.stringMatching(/^Slices: ".*\/scripts\/run" poll-session --timeout 90$/),
    ]);
    await waitForRun(project.dir);
    const state = (await project.state())!;
    expect(state.session_id).toBe(sessionId);
    expect(state.plan_path).toBe(saved);
    expect(Object.values(statuses(state))).toEqual(['completed', 'completed', 'completed']);
    expect(await readFile(saved, 'utf8')).toBe(extension === '.md' ? applyPlanStatuses(text, state) : text);
    // The child was given the file, never "-".
    expect(await readFile(path.join(project.paths.dir, `${sessionId}.log`), 'utf8')).toContain(`Plan ${saved}: 3 tasks`);
    const resumed = await execa(RUN_PATH, ['orchestrate', saved, '--agent', 'mock', '--resume'], {
      cwd: project.dir,
      reject: false,
      all: true,
    });
    expect(resumed.exitCode, resumed.all).toBe(0);
  });

  it('refuses an invalid plan (a cycle, an unknown dependency, a duplicate) with exit 2, writing nothing, with or without --detach', async () => {
    const project = await tempProject();
    const cases: Array<[string, RegExp]> = [
      [
        'tasks:\n  - { id: a, goal: "do a", depends_on: [c] }\n  - { id: b, goal: "do b", depends_on: [a] }\n  - { id: c, goal: "do c", depends_on: [b] }\n',
        /cycle: a -> c -> b -> a.*\(plan <stdin>\)/,
      ],
      [
        '| Task ID | Description | Dependencies |\n|---|---|---|\n| a | do a | ghost |\n',
        /a depends on "ghost", which is not a task of the plan/,
      ],
      [
        '| Task ID | Description | Dependencies |\n|---|---|---|\n| a | do a | None |\n| a | again | None |\n',
        /The plan <stdin> lists task a twice/,
      ],
      ['| Task ID | Description | Dependencies |\n|---|---|---|\n| a | do a |\n', /^error: <stdin>:3: this row has 2 cells/m],
      ['tasks: [\n  - { id: a }', /The plan <stdin> is not valid YAML/],
    ];
    for (const [i, [text, message]] of cases.entries()) {
      for (const detach of i < 2 ? [[], ['--detach']] : [[]]) {
        const result = await orchestrate(['-', '--agent', 'mock', ...detach], text, project.dir);
        expect(result.exitCode, result.all).toBe(2);
        expect(result.stderr).toMatch(message);
      }
    }
    expect(await listFiles(project.dir)).toEqual([]);
  });

  it('refuses empty standard input and more than 1 MiB (exit 2), showing the heredoc form', async () => {
    const project = await tempProject();
    for (const input of ['', ' \n\n']) {
      const result = await orchestrate(['-', '--agent', 'mock', '--detach'], input, project.dir);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`PLAN is -, but standard input is empty`);
      expect(result.stderr).toContain(`"${RUN_PATH}" orchestrate - --agent mock --detach <<'EOF'\ntasks:\n`);
      expect(result.stderr).toMatch(/\nEOF\nor pass the path of a plan file/);
    }
    const big = `${MARKDOWN_PLAN}\n${'x'.repeat(1024 * 1024)}\n`;
    const result = await orchestrate(['-', '--agent', 'mock'], big, project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/larger than 1 MiB/);
    expect(await listFiles(project.dir)).toEqual([]);
  });

  it('refuses --resume - (exit 2), naming the saved file to resume with', async () => {
    const project = await tempProject();
    const none = await orchestrate(['-', '--agent', 'mock', '--resume'], YAML_PLAN, project.dir);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/--resume needs the plan's saved file, not - \(standard input\)/);
    expect(none.stderr).toContain(`"${RUN_PATH}" orchestrate .agent/plans/<name>.md --agent mock --resume`);
    expect(await listFiles(project.dir)).toEqual([]);
    expect((await orchestrate(['-', '--agent', 'mock', '--quiet'], YAML_PLAN, project.dir)).exitCode).toBe(0);
    const state = (await project.state())!;
    const again = await orchestrate(['-', '--agent', 'mock', '--retry_merge'], YAML_PLAN, project.dir);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain(`"${RUN_PATH}" orchestrate ${state.plan_path} --agent mock --resume`);
  });

  it('passes a goal with $HOME, backticks and quotes verbatim to the saved plan and the task (no shell in between)', async () => {
    const project = await tempProject();
    const goal = 'Print $HOME and `whoami` with "double" and \'single\' quotes; $(id) \\n stays';
    const yaml = `tasks:\n  - id: odd\n    delay_ms: 10\n    goal: |-\n      ${goal}\n`;
    const markdown = `| Task ID | Description | Dependencies |\n|---|---|---|\n| odd | ${goal} | None |\n`;
    for (const [text, extension] of [
      [yaml, '.yaml'],
      [markdown, '.md'],
    ] as const) {
      const result = await orchestrate(['-', '--agent', 'mock'], text, project.dir);
      expect(result.exitCode, result.all).toBe(0);
      const state = (await project.state())!;
      expect(state.tasks.odd).toMatchObject({ goal, status: 'completed' });
      const saved = path.join(project.dir, '.agent', 'plans', `${state.session_id}${extension}`);
      expect(await readFile(saved, 'utf8')).toBe(extension === '.md' ? applyPlanStatuses(text, state) : text);
      expect(await readFile(saved, 'utf8')).toContain(goal);
    }
  });

  it('never replaces an existing file: a plan saved under a taken name gets a suffix', async () => {
    const project = await tempProject();
    const plans = path.join(project.dir, '.agent', 'plans');
    await mkdir(plans, { recursive: true });
    await writeFile(path.join(plans, 'mine.yaml'), 'keep me\n');
    const result = await orchestrate(['-', '--agent', 'mock', '--session_id', 'mine'], YAML_PLAN, project.dir);
    expect(result.exitCode, result.all).toBe(0);
    expect(await readFile(path.join(plans, 'mine.yaml'), 'utf8')).toBe('keep me\n');
    const files = await listFiles(plans);
    expect(files).toHaveLength(2);
    const saved = files.find((file) => file !== 'mine.yaml')!;
    expect(saved).toMatch(/^mine-[0-9a-f]{4}\.yaml$/);
    expect(savedPath(result.stdout)).toBe(path.join(plans, saved));
    expect(await readFile(path.join(plans, saved), 'utf8')).toBe(YAML_PLAN);
  });

  it('reads the format from the text: a mapping with tasks is YAML (JSON too), anything else Markdown; a terminal is refused', async () => {
    const read = (text: string) =>
      readPlanInput({ resume: false, agent: 'mock', stdin: Readable.from([Buffer.from(text)]) as NodeJS.ReadStream });
    expect((await read('{"tasks": [{"id": "a", "goal": "do a"}]}')).plan).toMatchObject({ format: 'yaml', path: '<stdin>' });
    expect((await read(MARKDOWN_PLAN)).plan).toMatchObject({ format: 'markdown', request: 'Survey the repository' });
    await expect(read('request: no tasks key\n')).rejects.toThrow(/No task table found in <stdin>/);
    const tty = Object.assign(Readable.from([]), { isTTY: true }) as unknown as NodeJS.ReadStream;
    await expect(readPlanInput({ resume: false, agent: 'mock', stdin: tty })).rejects.toThrow(
      /PLAN is -, but standard input is a terminal/,
    );
  });

  it('an exclusive atomic write refuses an existing file and leaves no temporary file', async () => {
    const project = await tempProject();
    const target = path.join(project.dir, 'plan.md');
    await writeFileAtomic(target, 'first\n', { exclusive: true, mode: 0o644 });
    const error = await writeFileAtomic(target, 'second\n', { exclusive: true }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'write_failed', message: expect.stringMatching(/plan\.md already exists and is not replaced/) });
    expect(((error as Error).cause as NodeJS.ErrnoException).code).toBe('EEXIST');
    expect(await readFile(target, 'utf8')).toBe('first\n');
    expect(await listFiles(project.dir)).toEqual(['plan.md']);
  });

  it("gives a detached run the saved path in place of the PLAN argument only (not a flag's value, nor after --)", () => {
    const saved = '/p/.agent/plans/s.md';
    expect(withSavedPlan(['-', '--agent', 'mock'], spec.flags, saved)).toEqual([saved, '--agent', 'mock']);
    expect(withSavedPlan(['--session_dir', '-', '--detach', '-', '--', '-'], spec.flags, saved)).toEqual([
      '--session_dir',
      '-',
      '--detach',
      saved,
      '--',
      '-',
    ]);
    expect(withSavedPlan(['--output-dir', '-', '--quiet', '-'], spec.flags, saved)).toEqual(['--output-dir', '-', '--quiet', saved]);
  });
});
