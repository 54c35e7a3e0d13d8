// Command-line values: negative numbers, durations a timer can hold, required names, one clear message each.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { durationFlag, MAX_TIMER_MS, numberFlag, parseCommandLine, renderHelp, type CommandSpec } from '../../scripts/lib/cli/cli.ts';
import { flag, parseOptions, parseOptionsOrShowHelp } from '../../scripts/lib/cli/options.ts';
import { main as orchestrateMain } from '../../scripts/orchestrate.ts';
import { validateTaskName } from '../../scripts/lib/core/names.ts';
import { parseYamlPlan } from '../../scripts/lib/plan/plan.ts';
import { SessionStateSchema } from '../../scripts/lib/state/schema.ts';
import { run, tempProject } from '../support/project.ts';

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
    expect(poll.stderr).toBe(
      'error: Expected --timeout to be a number of seconds at least 0 and at most 2147483.647 (the longest a timer can wait, about 24.8 days), got "-1".',
    );

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

/** One flag of each kind, as the entry scripts declare them. */
const TYPED = {
  name: 'typed',
  summary: 'A test command.',
  usage: '[flags]',
  flags: {
    out: flag.string({ placeholder: 'FILE', description: 'Report path.', default: 'out.md' }),
    task: flag.string({ placeholder: 'NAME', description: 'One task.' }),
    grace_ms: flag.integer({ placeholder: 'N', description: 'Grace.', min: 0, max: 600_000, default: 5000 }),
    workers: flag.integer({ placeholder: 'N', description: 'Workers.', min: 1, max: 256 }),
    budget: flag.number({ placeholder: 'USD', description: 'Budget.', min: 0, exclusiveMin: true }),
    timeout: flag.duration({ placeholder: 'S', description: 'Slice.', unit: 's', min: 0 }),
    on_failure: flag.choice({ values: ['stop', 'continue'], default: 'continue', description: 'Policy.' }),
    depends_on: flag.list({ placeholder: 'A,B', description: 'Dependencies.' }),
    quiet: flag.boolean({ description: 'Quiet.' }),
    raw: { type: 'string', description: 'A plain flag: its raw value.' },
  },
  examples: [],
} satisfies CommandSpec;

describe('typed options from a command spec', () => {
  it('turns argv into one typed value per flag, with defaults, kebab-case aliases and repeated lists', () => {
    const table: Array<[string[], Record<string, unknown>]> = [
      [
        [],
        {
          out: 'out.md',
          task: undefined,
          grace_ms: 5000,
          workers: undefined,
          budget: undefined,
          timeout: undefined,
          on_failure: 'continue',
          depends_on: [],
          quiet: false,
          raw: undefined,
        },
      ],
      [
        [
          '--out',
          'r.md',
          '--task',
          'T-1',
          '--grace-ms',
          '0',
          '--workers=8',
          '--budget',
          '0.5',
          '--timeout',
          '1.5',
          '--on-failure',
          'stop',
          '--depends_on',
          'a,b',
          '--depends-on',
          ' c ,',
          '--quiet',
          '--raw',
          'x',
        ],
        {
          out: 'r.md',
          task: 'T-1',
          grace_ms: 0,
          workers: 8,
          budget: 0.5,
          timeout: 1.5,
          on_failure: 'stop',
          depends_on: ['a', 'b', 'c'],
          quiet: true,
          raw: 'x',
        },
      ],
    ];
    for (const [argv, expected] of table) {
      const { options } = parseOptions(argv, TYPED);
      expect({ ...options }).toEqual(expected);
      expect(Object.keys(options)).toHaveLength(Object.keys(TYPED.flags).length);
    }
  });

  it('gives each option the type its builder declares, and refuses unknown keys at compile time', () => {
    const { options } = parseOptions(['--workers', '3'], TYPED);
    const graceMs: number = options.grace_ms;
    const workers: number | undefined = options.workers;
    const policy: 'stop' | 'continue' = options.on_failure;
    const deps: string[] = options.depends_on;
    const quiet: boolean = options.quiet;
    expect([graceMs, workers, policy, deps, quiet]).toEqual([5000, 3, 'continue', [], false]);
    // @ts-expect-error: no such flag in the spec (tsc --noEmit, run by `npm run lint`, fails if this line compiles).
    expect(options.wrokers).toBeUndefined();
  });

  it('names the flag, the value and what is accepted when a value is out of bounds or not one of the choices', () => {
    expect(messageOf(() => parseOptions(['--grace_ms', '-5'], TYPED))).toBe(
      'Expected --grace_ms to be a whole number from 0 to 600000, got "-5".',
    );
    expect(messageOf(() => parseOptions(['--workers', '1.5'], TYPED))).toBe(
      'Expected --workers to be a whole number from 1 to 256, got "1.5".',
    );
    expect(messageOf(() => parseOptions(['--budget', '0'], TYPED))).toBe('Expected --budget to be a number greater than 0, got "0".');
    expect(messageOf(() => parseOptions(['--on_failure', 'halt'], TYPED))).toBe(
      'Expected --on_failure to be one of stop, continue, got "halt".',
    );
    expect(messageOf(() => parseOptions(['--timeout', 'soon'], TYPED))).toContain(
      'Expected --timeout to be a number of seconds at least 0',
    );
    // Two bad values: the first in the spec's order is reported.
    expect(messageOf(() => parseOptions(['--on_failure', 'halt', '--grace_ms', 'x'], TYPED))).toContain('--grace_ms');
  });

  it('prints the help instead of checking values when --help is given', () => {
    let printed = '';
    expect(parseOptionsOrShowHelp(['--grace_ms', 'not-a-number', '--help'], TYPED, (text) => (printed += text))).toBeNull();
    expect(printed).toBe(renderHelp(TYPED));
    expect(printed).toContain('--on_failure stop|continue');
    expect(printed).toContain('--depends_on A,B');
  });

  it('names --agent_timeout, not --timeout, when orchestrate gets a bad agent timeout', async () => {
    const project = await tempProject();
    await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - { id: a, goal: A }\n');
    const error = await orchestrateMain([
      path.join(project.dir, 'plan.yaml'),
      '--agent',
      'claude',
      '--agent_timeout',
      '-1',
      '--skip_preflight',
      '--session_dir',
      project.paths.dir,
    ]).catch((e: unknown) => e);
    expect(error).toMatchObject({ exitCode: 2 });
    expect((error as Error).message).toBe('Expected --agent_timeout to be a number greater than 0 and at most 604800, got "-1".');
    expect(await project.state()).toBeNull();
  });
});
