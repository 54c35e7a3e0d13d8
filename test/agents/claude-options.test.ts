import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommandLine, renderHelp } from '../../scripts/lib/cli/cli.ts';
import { readClaudeSettings } from '../../scripts/lib/agents/claude-options.ts';
import { buildPrompt, readTaskFile } from '../../scripts/lib/agents/claude-prompt.ts';
import { OrchestratorError } from '../../scripts/lib/core/errors.ts';
import { main, spec } from '../../scripts/spawn-agent.ts';
import { tempDir } from '../support/claude-fixtures.ts';

function settings(argv: string[], env: NodeJS.ProcessEnv = {}, cwd = process.cwd()) {
  const parsed = parseCommandLine(argv, spec);
  return readClaudeSettings(parsed.flags, parsed.passthrough, env, cwd);
}

describe('readClaudeSettings: argv to the claude invocation', () => {
  it('defaults: claude on PATH, -p --output-format stream-json --verbose, 30 min timeout, 3 min stall limit, 5 s backoff base, no permission flag', () => {
    expect(settings(['--task_name', 'a', '--goal', 'g'])).toEqual({
      bin: 'claude',
      cwd: process.cwd(),
      args: ['-p', '--output-format', 'stream-json', '--verbose'],
      timeoutS: 1800,
      backoffMs: 5000,
      stallTimeoutS: 180,
    });
  });

  it('maps every flag, keeps tool lists unsplit, resolves paths, appends the passthrough last', async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, 'docs'));
    await mkdir(path.join(dir, 'lib'));
    const argv = [
      '--model',
      'opus',
      '--max-turns',
      '12',
      '--max_budget_usd',
      '1.25',
      '--permission_mode',
      'acceptEdits',
      '--append_system_prompt=--strange text',
      '--allowed_tools',
      'Read,Edit',
      '--allowed-tools',
      'Bash(npm test)',
      '--disallowed_tools',
      'WebFetch',
      '--add_dir',
      'docs',
      '--add_dir',
      'lib',
      '--claude_bin',
      './bin/claude',
      '--cwd',
      'docs',
      '--timeout',
      '90.5',
      '--backoff_ms',
      '250',
      '--stall-timeout',
      '2.5',
      '--',
      '--effort',
      'low',
      'extra',
    ];
    expect(settings(argv, {}, dir)).toEqual({
      bin: path.join(dir, 'bin/claude'),
      cwd: path.join(dir, 'docs'),
      args: [
        '-p',
        '--output-format',
        'stream-json',
        '--verbose',
        '--model',
        'opus',
        '--max-turns',
        '12',
        '--max-budget-usd',
        '1.25',
        '--permission-mode',
        'acceptEdits',
        '--append-system-prompt',
        '--strange text',
        '--allowedTools',
        'Read,Edit',
        'Bash(npm test)',
        '--disallowedTools',
        'WebFetch',
        '--add-dir',
        path.join(dir, 'docs'),
        path.join(dir, 'lib'),
        '--effort',
        'low',
        'extra',
      ],
      timeoutS: 90.5,
      backoffMs: 250,
      stallTimeoutS: 2.5,
    });
  });

  it('CLAUDE_BIN picks the executable; --claude_bin wins; an empty CLAUDE_BIN counts as unset', () => {
    expect(settings([], { CLAUDE_BIN: '/opt/claude/bin/claude' }).bin).toBe('/opt/claude/bin/claude');
    expect(settings(['--claude_bin', 'claude-beta'], { CLAUDE_BIN: '/opt/claude' }).bin).toBe('claude-beta');
    expect(settings([], { CLAUDE_BIN: '' }).bin).toBe('claude');
  });

  it('never adds a permission-bypassing flag of its own', () => {
    const { args } = settings(['--permission_mode', 'plan', '--allowed_tools', 'Read']);
    expect(args.join(' ')).not.toMatch(/dangerously|bypassPermissions/);
  });
});

describe('spawn-agent main: usage errors before anything runs (exit 2)', () => {
  it.each([
    [['--timeout', '0'], 'Expected --timeout to be a number greater than 0 and at most 604800, got "0".'],
    [['--timeout', 'soon'], 'Expected --timeout to be a number greater than 0 and at most 604800, got "soon".'],
    [['--max_turns', '0'], 'Expected --max_turns to be a whole number from 1 to 10000, got "0".'],
    [['--max_budget_usd=-1'], 'Expected --max_budget_usd to be a number greater than 0, got "-1".'],
    [
      ['--permission_mode', 'yolo'],
      'Expected --permission_mode to be one of acceptEdits, auto, bypassPermissions, manual, dontAsk, plan, got "yolo".',
    ],
    [['--stall_timeout', '0'], 'Expected --stall_timeout to be a number greater than 0 and at most 2147483.647, got "0".'],
    [['--stall_timeout', '2147484'], 'Expected --stall_timeout to be a number greater than 0 and at most 2147483.647, got "2147484".'],
    [['--stall_timeout', 'never'], 'Expected --stall_timeout to be a number greater than 0 and at most 2147483.647, got "never".'],
    [
      ['--', '--output-format', 'json'],
      'Expected no --output-format after --, got "--output-format json": spawn-agent runs claude with --output-format stream-json --verbose itself, to follow the agent as it works. Remove it.',
    ],
    [
      ['--', '--output-format=text'],
      'Expected no --output-format after --, got "--output-format text": spawn-agent runs claude with --output-format stream-json --verbose itself, to follow the agent as it works. Remove it.',
    ],
    [['--backoff_ms', '1.5'], 'Expected --backoff_ms to be a whole number from 0 to 3600000, got "1.5".'],
    [['--retries=-1'], 'Expected --retries to be a whole number from 0 to 20, got "-1".'],
    [['--claude_bin', ''], 'Expected --claude_bin to name the claude executable (a path or a command on PATH), got "".'],
    [['--model', ' '], 'Expected --model to name a model, e.g. --model sonnet, got " ".'],
    [
      ['--cwd', 'no/such/dir'],
      `Expected --cwd to be an existing directory, got "no/such/dir" (${path.resolve('no/such/dir')}). Create it or fix the path.`,
    ],
    [
      ['--add_dir', 'no/such/dir'],
      `Expected --add_dir to be an existing directory, got "no/such/dir" (${path.resolve('no/such/dir')}). Create it or fix the path.`,
    ],
    [
      ['--task_file', 'no/such.md'],
      `Cannot read --task_file "no/such.md" (${path.resolve('no/such.md')}): it does not exist. Give the path of a markdown task file.`,
    ],
    [['--task_file', '.'], `Cannot read --task_file "." (${path.resolve('.')}): it is not a file. Give the path of a markdown task file.`],
  ])('%j', async (extra, message) => {
    const error = await main(['--task_name', 'a', '--goal', 'g', ...extra], {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OrchestratorError);
    expect(error).toMatchObject({ message, exitCode: 2 });
  });

  it('--help documents the claude flags and the passthrough', () => {
    const help = renderHelp(spec);
    for (const text of [
      '--task_file PATH',
      '--model NAME',
      '--max_turns N',
      '--max_budget_usd USD',
      '--allowed_tools TOOLS',
      '--disallowed_tools TOOLS',
      '--permission_mode MODE',
      '--append_system_prompt TEXT',
      '--add_dir DIR',
      '--claude_bin PATH',
      '--cwd DIR',
      '--timeout S',
      '--backoff_ms N',
      '--retries N',
      'Arguments after "--" are passed to claude verbatim',
      'Examples:',
    ]) {
      expect(help).toContain(text);
    }
  });
});

describe('readTaskFile', () => {
  async function file(text: string) {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'task.md'), text);
    return path.join(dir, 'task.md');
  }

  it('reads every key; lists may be YAML lists or comma-separated strings', async () => {
    const f = await file(
      '---\ntask_name: T-03\ngoal: Write tests\ndepends_on: T-01, T-02\npriority: P0\nfiles:\n  - test/a.test.ts\n---\n\n# Tests\n\nCover the parser.\n',
    );
    expect(readTaskFile(f)).toEqual({
      path: f,
      taskName: 'T-03',
      goal: 'Write tests',
      dependsOn: ['T-01', 'T-02'],
      priority: 'P0',
      files: ['test/a.test.ts'],
      instructions: '# Tests\n\nCover the parser.',
    });
  });

  it('reads the shipped template templates/agent_task.md', () => {
    const template = path.join(import.meta.dirname, '../../templates/agent_task.md');
    expect(readTaskFile(template)).toMatchObject({
      taskName: 'T-03-security',
      goal: 'Review the files listed by T-01-scan for injection, secrets and unsafe input handling.',
      dependsOn: ['T-01-scan'],
      priority: 'P1',
      files: [],
      instructions: expect.stringMatching(/^# .*Task T-03-security: security review\n/),
    });
  });

  it('without frontmatter or goal: the first line of the body is the goal', async () => {
    const f = await file('## Refactor the lexer\n\nKeep the API.\n');
    expect(readTaskFile(f)).toMatchObject({
      goal: 'Refactor the lexer',
      taskName: undefined,
      instructions: '## Refactor the lexer\n\nKeep the API.',
    });
  });

  it.each([
    [
      '---\nowner: me\n---\nx\n',
      'is invalid: (root): Unrecognized key: "owner". Allowed keys: task_name, goal, depends_on, priority, files (all optional).',
    ],
    ['---\npriority: P7\n---\nx\n', 'is invalid: priority: '],
    ['---\ngoal: [unclosed\n---\nx\n', 'is not valid YAML: '],
    ['---\nfiles: 7\n---\nx\n', 'is invalid: files: '],
  ])('refuses %j with the file and the key named', async (text, message) => {
    const f = await file(text);
    expect(() => readTaskFile(f)).toThrow(`The frontmatter of --task_file ${f} ${message}`);
  });

  it('main: a task file without a task name is refused like a missing --task_name', async () => {
    const f = await file('---\ngoal: g\n---\n');
    await expect(main(['--task_file', f], {})).rejects.toThrow('--task_name is required');
  });
});

describe('buildPrompt', () => {
  const ctx = {
    taskName: 'review',
    agent: 'Agent-03',
    goal: 'Review the parser\nfor bugs',
    dependsOn: ['scan'],
    files: ['src/parse.ts'],
    session_id: 's-1',
    cwd: '/work/app',
    resultPath: '/work/app/.agent/results/review.md',
    dependencyResults: { scan: '/work/app/.agent/results/scan.md' },
  };

  it('says who the agent is, the goal, instructions, files, dependency results and what to return', () => {
    expect(buildPrompt(ctx, { instructions: 'Look at edge cases.', taskFilePath: '/work/app/tasks/review.md' })).toBe(
      'You are Agent-03, a sub-agent running one task ("review") of a larger plan in session s-1. ' +
        'You run unattended: nobody can answer questions or approve anything, so make reasonable assumptions, state them, and finish the task.\n\n' +
        '## Goal\nReview the parser\nfor bugs\n\n' +
        '## Instructions (from /work/app/tasks/review.md)\nLook at edge cases.\n\n' +
        '## Working directory\n/work/app\n\n' +
        '## Files\nThis task owns these files; other agents may be changing other files at the same time, so change nothing else:\n- src/parse.ts\n\n' +
        '## Results of the tasks this one depends on\nRead them first:\n- scan: /work/app/.agent/results/scan.md\n\n' +
        '## What to return\nYour final message is saved by the orchestrator, verbatim, as the body of /work/app/.agent/results/review.md; do not write that file yourself. ' +
        'Make it a self-contained markdown report: a one-line summary first, then what you did, the result itself (findings, answer or changes), ' +
        'the files you changed, and anything left undone or uncertain.\n',
    );
  });

  it('leaves out empty sections', () => {
    const prompt = buildPrompt({ ...ctx, dependsOn: [], files: [], dependencyResults: {} });
    expect(prompt).not.toMatch(/## Instructions|## Files|## Results of the tasks/);
  });
});
