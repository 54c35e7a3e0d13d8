// Command-line values: negative numbers, durations a timer can hold, required names, one clear message each.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { durationFlag, MAX_TIMER_MS, numberFlag, parseCommandLine, type CommandSpec } from '../scripts/lib/cli.ts';
import { validateTaskName } from '../scripts/lib/names.ts';
import { parseYamlPlan } from '../scripts/lib/plan.ts';
import { SessionStateSchema } from '../scripts/lib/schema.ts';
import { run, tempProject } from './support/project.ts';

const SPEC: CommandSpec = {
  name: 'demo',
  summary: 'A test command.',
  usage: '[--timeout S]',
  flags: {
    timeout: { type: 'string', description: 'Seconds.' },
    delay_ms: { type: 'string', description: 'Milliseconds.' },
    goal: { type: 'string', description: 'Text.' },
    quiet: { type: 'boolean', description: 'Quiet.' },
  },
  examples: [],
};

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}

describe('command-line values', () => {
  it('reads a negative number after a space as the value, so the range check names it', () => {
    for (const raw of ['-1', '-0.5', '-.5']) {
      const parsed = parseCommandLine(['--timeout', raw], SPEC);
      expect(parsed.flags.timeout).toBe(raw);
      expect(messageOf(() => numberFlag(parsed.flags, 'timeout', { min: 0, exclusiveMin: true }))).toBe(
        `Expected --timeout to be a number greater than 0, got "${raw}".`,
      );
    }
    expect(parseCommandLine(['--delay-ms', '-3'], SPEC).flags.delay_ms).toBe('-3');
  });

  it('leaves a dash value that is not a number to node, with one final stop and no positional hint', () => {
    const ambiguous = messageOf(() => parseCommandLine(['--goal', '-x'], SPEC));
    expect(ambiguous).toContain("'--goal' argument is ambiguous");
    const missing = messageOf(() => parseCommandLine(['--timeout'], SPEC));
    const unknown = messageOf(() => parseCommandLine(['--bogus'], SPEC));
    for (const message of [ambiguous, missing, unknown]) {
      expect(message).not.toMatch(/\.\./);
      expect(message).not.toContain('\n');
      expect(message).toMatch(/[.?] Run `demo --help` for the accepted flags\.$/);
    }
    expect(unknown).toBe("Unknown option '--bogus'. Run `demo --help` for the accepted flags.");
  });

  it('does not take an inherited member for a flag name', () => {
    expect(messageOf(() => parseCommandLine(['--constructor', 'x'], SPEC))).toMatch(/^Unknown option '--constructor'/);
    expect(messageOf(() => parseCommandLine(['--to-string'], SPEC))).toMatch(/^Unknown option '--to-string'/);
  });

  it('bounds durations by what a timer can hold', () => {
    expect(MAX_TIMER_MS).toBe(2_147_483_647);
    const seconds = (raw: string) => durationFlag({ timeout: raw }, 'timeout', { unit: 's', min: 0, exclusiveMin: true });
    expect(seconds('2147483.647')).toBe(2147483.647);
    expect(seconds('1.5')).toBe(1.5);
    expect(messageOf(() => seconds('2147483.648'))).toBe(
      'Expected --timeout to be a number of seconds greater than 0 and at most 2147483.647 (the longest a timer can wait, about 24.8 days), got "2147483.648".',
    );
    expect(messageOf(() => seconds('99999999999'))).toContain('at most 2147483.647');
    expect(messageOf(() => seconds('0'))).toContain('greater than 0');
    const ms = (raw: string) => durationFlag({ delay_ms: raw }, 'delay_ms', { unit: 'ms', min: 0 });
    expect(ms(String(MAX_TIMER_MS))).toBe(MAX_TIMER_MS);
    expect(messageOf(() => ms(String(MAX_TIMER_MS + 1)))).toContain('whole number of milliseconds at least 0 and at most 2147483647');
    expect(messageOf(() => ms('1.5'))).toContain('whole number of milliseconds');
    expect(durationFlag({}, 'delay_ms', { unit: 'ms', min: 0 })).toBeUndefined();
    expect(messageOf(() => durationFlag({ t: '5000' }, 't', { unit: 's', min: 0, max: 3600 }))).toBe(
      'Expected --t to be a number of seconds at least 0 and at most 3600, got "5000".',
    );
  });

  it('says a missing task name is required instead of quoting an empty value', () => {
    expect(messageOf(() => validateTaskName(''))).toBe(
      '--task_name is required: give the task a name matching [A-Za-z0-9._-]{1,64}, not starting with ".", for example --task_name T-01 or --task_name security-scan.',
    );
    expect(messageOf(() => validateTaskName('../x'))).toContain('got "../x"');
  });
});

describe('durations in plans and state files', () => {
  it('refuses a YAML plan delay_ms beyond what a timer can hold', () => {
    expect(() => parseYamlPlan('tasks:\n  - { id: a, goal: A, delay_ms: 99999999999 }\n', 'p.yaml')).toThrow(
      /p\.yaml does not match the YAML plan format \(tasks\.0\.delay_ms: must be at most 2147483647 ms/,
    );
    expect(parseYamlPlan(`tasks:\n  - { id: a, goal: A, delay_ms: ${MAX_TIMER_MS} }\n`).tasks[0]!.delayMs).toBe(MAX_TIMER_MS);
  });

  it('refuses a state file whose lease a timer cannot hold', () => {
    const state = { version: 1, session_id: 's', created_at: '2026-11-22T10:00:00.000Z', updated_at: '2026-11-22T10:00:00.000Z' };
    expect(SessionStateSchema.safeParse({ ...state, lease_ms: MAX_TIMER_MS + 1 }).success).toBe(false);
    expect(SessionStateSchema.safeParse({ ...state, lease_ms: MAX_TIMER_MS }).success).toBe(true);
  });
});

describe('the scripts at the command line', () => {
  it('refuse a negative timeout, an overflowing plan delay and a missing task name with exit 2 and a clear message', async () => {
    const project = await tempProject();
    const poll = await run('poll-session', ['--timeout', '-1'], project.dir);
    expect(poll.exitCode).toBe(2);
    expect(poll.stderr).toBe('error: Expected --timeout to be a number of seconds at least 0 and at most 2147483.647 (the longest a timer can wait, about 24.8 days), got "-1".');

    await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - { id: a, goal: A, delay_ms: 99999999999 }\n');
    const plan = await run('orchestrate', ['plan.yaml', '--agent', 'mock'], project.dir);
    expect(plan.exitCode).toBe(2);
    expect(plan.stderr).toContain('delay_ms: must be at most 2147483647 ms');
    expect(await project.state()).toBeNull();

    const spawn = await run('spawn-agent-mock', ['--goal', 'g'], project.dir);
    expect(spawn.exitCode).toBe(2);
    expect(spawn.stderr).toContain('--task_name is required');
    expect(spawn.stderr).not.toContain('got ""');

    const dep = await run('spawn-agent-mock', ['--task_name', 'a', '--goal', 'g', '--dep_timeout', '9999999999'], project.dir);
    expect(dep.exitCode).toBe(2);
    expect(dep.stderr).toContain('Expected --dep_timeout to be a number of seconds at least 0 and at most 2147483.647');
    expect(await project.state()).toBeNull();
  });
});
