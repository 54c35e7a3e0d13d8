// Argument parsing (node:util parseArgs, strict) with snake_case flags, kebab-case aliases, generated --help and value checks.
import { parseArgs } from 'node:util';
import { EXIT, OrchestratorError, errorMessage, usageError } from '../core/errors.ts';
import { MAX_TIMER_MS } from '../core/limits.ts';

export { MAX_TIMER_MS };
import { launcherCommand } from '../launcher/dist.ts';

/**
 * One flag of a script. Names are snake_case; `--kebab-case` is accepted as an alias.
 * @typeParam T - the typed option value {@link FlagSpec.read} returns (see options.ts for the builders).
 */
export interface FlagSpec<T = unknown> {
  type: 'string' | 'boolean';
  /** One line for `--help`. */
  description: string;
  /** Shown as `--flag VALUE`. */
  placeholder?: string;
  short?: string;
  /** May be given several times (values collected in order). */
  multiple?: boolean;
  /**
   * Checks the raw value and turns it into the typed option (bounds, units, defaults), throwing a
   * usage error that names the flag; set by the builders of options.ts and used by `parseOptions`.
   * Without it the option is the raw value (a string or undefined; a boolean for boolean flags).
   */
  read?: (flags: ParsedFlags, name: string) => T;
}

/** A script's command-line interface. */
export interface CommandSpec {
  /** e.g. `spawn-agent-mock`. */
  name: string;
  /** One-paragraph purpose. */
  summary: string;
  /** `[--flag X] ...` synopsis after the script path. */
  usage: string;
  flags: Record<string, FlagSpec<unknown>>;
  /** Positional arguments allowed (names for the synopsis); none by default. */
  positionals?: string[];
  /** Accept arguments after `--` (returned as `passthrough`). */
  passthrough?: boolean;
  examples: string[];
  /** Files read and written, and exit codes: the script's header. */
  notes?: string[];
}

export type ParsedFlags = Record<string, string | boolean | string[] | undefined>;

/** Result of {@link parseCommandLine}. */
export interface ParsedCommandLine {
  flags: ParsedFlags;
  positionals: string[];
  passthrough: string[];
  help: boolean;
}

/** Renders `--help` text for a command. */
export function renderHelp(spec: CommandSpec): string {
  const helpFlag: FlagSpec = { type: 'boolean', description: 'Show this help and exit.', short: 'h' };
  const rows = Object.entries({ ...spec.flags, help: helpFlag }).map(([name, flag]) => {
    const left = `${flag.short ? `-${flag.short}, ` : ''}--${name}${flag.type === 'string' ? ` ${flag.placeholder ?? 'VALUE'}` : ''}`;
    return [left, flag.description] as const;
  });
  const width = Math.min(34, Math.max(...rows.map(([left]) => left.length)) + 2);
  const lines = [
    `Usage: ${launcherCommand(spec.name)} ${spec.usage}`,
    '',
    spec.summary,
    '',
    'Options (snake_case; --kebab-case also accepted):',
    ...rows.map(([left, text]) =>
      left.length + 2 > width ? `  ${left}\n  ${' '.repeat(width)}${text}` : `  ${left.padEnd(width)}${text}`,
    ),
    '',
    'Examples:',
    ...spec.examples.map((example) => `  ${example}`),
  ];
  if (spec.notes?.length) lines.push('', ...spec.notes);
  return lines.join('\n') + '\n';
}

/** A value that starts with a dash but is a number (`-1`, `-0.5`, `-.5`), not a flag. */
const NEGATIVE_NUMBER = /^-(?:\d|\.\d)/;

/**
 * Turns `--task-name=x` into `--task_name=x` for flags the command knows, and `--timeout -1` into
 * `--timeout=-1` (node's parseArgs takes a value starting with "-" for a missing one, and its
 * "argument is ambiguous" error would hide the real problem, a negative number); leaves the rest alone.
 */
function normaliseFlagNames(argv: string[], spec: CommandSpec): string[] {
  const out: string[] = [];
  let afterTerminator = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (afterTerminator || !arg.startsWith('--') || arg === '--') {
      if (arg === '--') afterTerminator = true;
      out.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const snake = name.replace(/-/g, '_');
    const known = Object.hasOwn(spec.flags, snake);
    if (!known && snake !== 'help') {
      out.push(arg);
      continue;
    }
    const next = argv[i + 1];
    if (known && eq === -1 && spec.flags[snake]!.type === 'string' && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`--${snake}=${next}`);
      i++;
      continue;
    }
    out.push(`--${snake}${eq === -1 ? '' : arg.slice(eq)}`);
  }
  return out;
}

/**
 * Parses argv strictly: unknown flags, missing values and unexpected positionals are usage errors
 * whose message names the flag and points to `--help`.
 */
export function parseCommandLine(argv: string[], spec: CommandSpec): ParsedCommandLine {
  const terminator = spec.passthrough ? argv.indexOf('--') : -1;
  const own = terminator === -1 ? argv : argv.slice(0, terminator);
  const passthrough = terminator === -1 ? [] : argv.slice(terminator + 1);
  const options = Object.fromEntries(
    Object.entries(spec.flags).map(([name, flag]) => [
      name,
      { type: flag.type, ...(flag.short ? { short: flag.short } : {}), ...(flag.multiple ? { multiple: true } : {}) },
    ]),
  );
  let parsed;
  try {
    parsed = parseArgs({
      args: normaliseFlagNames(own, spec),
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    // node's messages span lines and may end with their own period: one line, one final stop.
    // Node's hint about positionals after '--' misleads here (the scripts take flags): dropped.
    const message = errorMessage(error)
      .replace(/\s*To specify a positional argument.*$/s, '')
      .replace(/\s*\n\s*/g, ' ')
      .trim();
    throw usageError(`${/[.?!]$/.test(message) ? message : `${message}.`} Run \`${spec.name} --help\` for the accepted flags.`, error);
  }
  const help = Boolean(parsed.values.help);
  const max = spec.positionals?.length ?? 0;
  if (!help && parsed.positionals.length > max) {
    throw usageError(
      `Unexpected argument ${JSON.stringify(parsed.positionals[max])}` +
        (max === 0 ? ': this script takes flags only' : `: expected at most ${max} (${spec.positionals!.join(', ')})`) +
        `. Quote values that contain spaces, e.g. --goal "two words". Run \`${spec.name} --help\`.`,
    );
  }
  const { help: _help, ...flags } = parsed.values;
  return { flags: flags, positionals: parsed.positionals, passthrough, help };
}

/**
 * Parses argv like {@link parseCommandLine}; when `--help` was given, prints the help and returns
 * null, so the entry point returns exit 0 without doing anything else.
 * @param write - where the help goes (default stdout).
 */
export function parseOrShowHelp(
  argv: string[],
  spec: CommandSpec,
  write: (text: string) => void = (text) => void process.stdout.write(text),
): ParsedCommandLine | null {
  const parsed = parseCommandLine(argv, spec);
  if (!parsed.help) return parsed;
  write(renderHelp(spec));
  return null;
}

/** Reads a string flag; `required` makes absence a usage error. */
export function stringFlag(flags: ParsedFlags, name: string, required: true): string;
export function stringFlag(flags: ParsedFlags, name: string, required?: false): string | undefined;
export function stringFlag(flags: ParsedFlags, name: string, required = false): string | undefined {
  const value = flags[name];
  if (value === undefined) {
    if (required) throw usageError(`Missing --${name}. Run with --help for usage.`);
    return undefined;
  }
  if (typeof value !== 'string') throw usageError(`Expected --${name} to take a value.`);
  return value;
}

/**
 * Parses a whole-number flag within bounds.
 * @throws OrchestratorError usage: "Expected --delay_ms to be a whole number from 0 to ..., got `abc`".
 */
export function integerFlag(flags: ParsedFlags, name: string, bounds: { min: number; max?: number }): number | undefined {
  const raw = stringFlag(flags, name);
  if (raw === undefined) return undefined;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < bounds.min || value > max) {
    throw usageError(
      `Expected --${name} to be a whole number from ${bounds.min}${bounds.max === undefined ? ' up' : ` to ${max}`}, got ${JSON.stringify(raw)}.`,
    );
  }
  return value;
}

/** Parses a decimal-number flag within bounds (e.g. seconds, USD). */
export function numberFlag(
  flags: ParsedFlags,
  name: string,
  bounds: { min: number; max?: number; exclusiveMin?: boolean },
): number | undefined {
  const raw = stringFlag(flags, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  const tooLow = bounds.exclusiveMin ? value <= bounds.min : value < bounds.min;
  if (raw.trim() === '' || !Number.isFinite(value) || tooLow || (bounds.max !== undefined && value > bounds.max)) {
    const range = `${bounds.exclusiveMin ? 'greater than' : 'at least'} ${bounds.min}${bounds.max === undefined ? '' : ` and at most ${bounds.max}`}`;
    throw usageError(`Expected --${name} to be a number ${range}, got ${JSON.stringify(raw)}.`);
  }
  return value;
}

/**
 * Parses a duration flag in seconds (`unit: 's'`, decimals allowed) or milliseconds (`unit: 'ms'`,
 * whole numbers), bounded by `max` (in the flag's unit) and never above {@link MAX_TIMER_MS}.
 * @returns the value in the flag's own unit, or undefined when absent.
 * @throws OrchestratorError usage: "Expected --timeout to be a number of seconds greater than 0 and at most 2147483.647 (...), got "-1"."
 */
export function durationFlag(
  flags: ParsedFlags,
  name: string,
  bounds: { unit: 's' | 'ms'; min: number; exclusiveMin?: boolean; max?: number },
): number | undefined {
  const raw = stringFlag(flags, name);
  if (raw === undefined) return undefined;
  const timerMax = bounds.unit === 's' ? MAX_TIMER_MS / 1000 : MAX_TIMER_MS;
  const max = Math.min(bounds.max ?? timerMax, timerMax);
  const value = Number(raw);
  const wholeOk = bounds.unit === 's' || /^\s*-?\d+\s*$/.test(raw);
  const tooLow = bounds.exclusiveMin ? value <= bounds.min : value < bounds.min;
  if (raw.trim() === '' || !Number.isFinite(value) || !wholeOk || tooLow || value > max) {
    const unit = bounds.unit === 's' ? 'number of seconds' : 'whole number of milliseconds';
    const why = max === timerMax ? ' (the longest a timer can wait, about 24.8 days)' : '';
    throw usageError(
      `Expected --${name} to be a ${unit} ${bounds.exclusiveMin ? 'greater than' : 'at least'} ${bounds.min} and at most ${max}${why}, got ${JSON.stringify(raw)}.`,
    );
  }
  return value;
}

/** Parses one of a fixed set of values. */
export function enumFlag<T extends string>(flags: ParsedFlags, name: string, allowed: readonly T[]): T | undefined {
  const raw = stringFlag(flags, name);
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw usageError(`Expected --${name} to be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}.`);
  }
  return raw as T;
}

/** Parses a comma-separated list flag (`A,B` or repeated flags); empty items are dropped. */
export function listFlag(flags: ParsedFlags, name: string): string[] {
  const value = flags[name];
  if (value === undefined) return [];
  const items = Array.isArray(value) ? value : [String(value)];
  return items
    .flatMap((item) => item.split(','))
    .map((item) => item.trim())
    .filter(Boolean);
}

/**
 * Runs a script's `main` and exits with its code; prints OrchestratorErrors as `error: ...` on
 * stderr with their exit code, and anything unexpected with its stack and exit 2.
 * Only this function calls `process.exit`.
 */
export function runMain(main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof OrchestratorError) {
        process.stderr.write(`error: ${error.message}\n`);
        process.exit(error.exitCode);
      }
      process.stderr.write(`error: unexpected failure: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(EXIT.usage);
    },
  );
}
