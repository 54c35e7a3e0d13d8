// Typed options from a command's spec: flag builders that declare each flag's kind, bounds and default, and parseOptions, whose result TypeScript checks by key and type.
import {
  durationFlag,
  enumFlag,
  integerFlag,
  listFlag,
  numberFlag,
  parseCommandLine,
  renderHelp,
  stringFlag,
  type CommandSpec,
  type FlagSpec,
  type ParsedFlags,
} from './cli.ts';

/** The text of a flag in `--help`. */
export interface FlagText {
  /** One line for `--help`. */
  description: string;
  /** Shown as `--flag VALUE`. */
  placeholder?: string;
  short?: string;
}

/** A flag that reads its own value: what the builders below return. */
export type TypedFlag<T> = FlagSpec<T> & { read: (flags: ParsedFlags, name: string) => T };

/** Bounds of a whole or decimal number flag (inclusive unless `exclusiveMin`). */
export interface NumberBounds {
  min: number;
  max?: number;
  exclusiveMin?: boolean;
}

/** Bounds of a duration flag: its unit (`s` allows decimals, `ms` whole numbers), bounds in that unit; never above MAX_TIMER_MS. */
export interface DurationBounds {
  unit: 's' | 'ms';
  min: number;
  max?: number;
  exclusiveMin?: boolean;
}

function valueFlag<T>(text: FlagText, read: (flags: ParsedFlags, name: string) => T, extra: Partial<FlagSpec> = {}): TypedFlag<T> {
  return { type: 'string', ...text, ...extra, read };
}

/** A free-text flag: the string given, else `default` (else undefined). */
function string(text: FlagText & { default: string }): TypedFlag<string>;
function string(text: FlagText): TypedFlag<string | undefined>;
function string(text: FlagText & { default?: string }): TypedFlag<string | undefined> {
  const { default: fallback, ...help } = text;
  return valueFlag(help, (flags, name) => stringFlag(flags, name) ?? fallback);
}

/** An on/off flag: true when given. */
function boolean(text: FlagText): TypedFlag<boolean> {
  return { type: 'boolean', ...text, read: (flags, name) => flags[name] === true };
}

/**
 * A whole-number flag within `min`..`max` (inclusive).
 * @throws OrchestratorError usage: "Expected --grace_ms to be a whole number from 0 to 600000, got "x"."
 */
function integer(text: FlagText & { min: number; max?: number; default: number }): TypedFlag<number>;
function integer(text: FlagText & { min: number; max?: number }): TypedFlag<number | undefined>;
function integer(text: FlagText & { min: number; max?: number; default?: number }): TypedFlag<number | undefined> {
  const { default: fallback, min, max, ...help } = text;
  return valueFlag(help, (flags, name) => integerFlag(flags, name, { min, max }) ?? fallback);
}

/**
 * A decimal-number flag within bounds (e.g. USD).
 * @throws OrchestratorError usage: "Expected --max_budget_usd to be a number greater than 0, got "0"."
 */
function number(text: FlagText & NumberBounds & { default: number }): TypedFlag<number>;
function number(text: FlagText & NumberBounds): TypedFlag<number | undefined>;
function number(text: FlagText & NumberBounds & { default?: number }): TypedFlag<number | undefined> {
  const { default: fallback, min, max, exclusiveMin, ...help } = text;
  return valueFlag(help, (flags, name) => numberFlag(flags, name, { min, max, exclusiveMin }) ?? fallback);
}

/**
 * A duration flag in its own unit (see {@link DurationBounds}); the value stays in that unit.
 * @throws OrchestratorError usage: "Expected --timeout to be a number of seconds at least 0 and at most 2147483.647 (...), got "-1"."
 */
function duration(text: FlagText & DurationBounds & { default: number }): TypedFlag<number>;
function duration(text: FlagText & DurationBounds): TypedFlag<number | undefined>;
function duration(text: FlagText & DurationBounds & { default?: number }): TypedFlag<number | undefined> {
  const { default: fallback, unit, min, max, exclusiveMin, ...help } = text;
  return valueFlag(help, (flags, name) => durationFlag(flags, name, { unit, min, max, exclusiveMin }) ?? fallback);
}

/**
 * One of a fixed set of values; the placeholder defaults to `a|b|c`.
 * @throws OrchestratorError usage: "Expected --on_failure to be one of stop, continue, got "halt"."
 */
function choice<const T extends string>(text: FlagText & { values: readonly T[]; default: T }): TypedFlag<T>;
function choice<const T extends string>(text: FlagText & { values: readonly T[] }): TypedFlag<T | undefined>;
function choice<const T extends string>(text: FlagText & { values: readonly T[]; default?: T }): TypedFlag<T | undefined> {
  const { default: fallback, values, ...help } = text;
  return valueFlag({ placeholder: values.join('|'), ...help }, (flags, name) => enumFlag(flags, name, values) ?? fallback);
}

/** A comma-separated list that may also be repeated (`--x A,B --x C`); empty items are dropped; none given = []. */
function list(text: FlagText): TypedFlag<string[]> {
  return valueFlag(text, (flags, name) => listFlag(flags, name), { multiple: true });
}

/**
 * Builders of typed flags for a {@link CommandSpec}: each declares the flag's kind, bounds and
 * default once, and {@link parseOptions} returns the checked value under the flag's name.
 * @example
 * const spec = { name: 'x', summary: '', usage: '', examples: [], flags: {
 *   grace_ms: flag.integer({ placeholder: 'N', description: 'Grace (ms).', min: 0, max: 600_000, default: 5000 }),
 * } } satisfies CommandSpec;
 * const parsed = parseOptions(['--grace-ms', '10'], spec); // parsed.options.grace_ms: number (10)
 */
export const flag = { string, boolean, integer, number, duration, choice, list };

/** The typed value of one flag: what its `read` returns; for a plain {@link FlagSpec}, the raw string (or boolean). */
export type OptionValue<F> = F extends { read: (flags: ParsedFlags, name: string) => infer T }
  ? T
  : F extends { type: 'boolean' }
    ? boolean
    : F extends { multiple: true }
      ? string[] | undefined
      : string | undefined;

/**
 * The options object of a command: one key per flag of its spec, typed by the flag's builder.
 * Declare the spec with `satisfies CommandSpec` (not `: CommandSpec`) so its flag names and types are kept.
 */
export type OptionsOf<S extends CommandSpec> = { readonly [K in keyof S['flags']]: OptionValue<S['flags'][K]> };

/** Result of {@link parseOptions}. */
export interface ParsedOptions<O> {
  /** Every flag of the spec, checked: a typed value, the default, or undefined when absent and without default. */
  options: O;
  positionals: string[];
  /** Arguments after `--` when the spec allows them. */
  passthrough: string[];
  /** The raw flags as given (for code that tells "given" from "defaulted", or passes flags on unchanged). */
  flags: ParsedFlags;
  help: boolean;
}

/**
 * Parses argv strictly (see `parseCommandLine`: unknown flags, missing values and unexpected
 * positionals are usage errors), then reads every flag of the spec through its builder's checks,
 * in the spec's order, so the first bad value is the one reported. With `--help` the values are not
 * checked (`options` is empty and `help` true).
 * @throws OrchestratorError usage (exit 2) naming the flag, the value and what is accepted.
 */
export function parseOptions<S extends CommandSpec>(argv: string[], spec: S): ParsedOptions<OptionsOf<S>> {
  const parsed = parseCommandLine(argv, spec);
  const options: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (!parsed.help) {
    for (const [name, spec_] of Object.entries(spec.flags)) options[name] = readFlag(spec_, parsed.flags, name);
  }
  return {
    options: options as OptionsOf<S>,
    positionals: parsed.positionals,
    passthrough: parsed.passthrough,
    flags: parsed.flags,
    help: parsed.help,
  };
}

/** A flag's value by its own `read`, or for a plain FlagSpec the raw value (`--x` twice for a non-repeatable flag is refused by parseArgs). */
function readFlag(spec: FlagSpec<unknown>, flags: ParsedFlags, name: string): unknown {
  if (spec.read) return spec.read(flags, name);
  if (spec.type === 'boolean') return flags[name] === true;
  return spec.multiple ? flags[name] : stringFlag(flags, name);
}

/**
 * {@link parseOptions}; when `--help` was given, writes the help and returns null, so the entry
 * point returns exit 0 without doing anything else.
 * @param write - where the help goes (default stdout).
 */
export function parseOptionsOrShowHelp<S extends CommandSpec>(
  argv: string[],
  spec: S,
  write: (text: string) => void = (text) => void process.stdout.write(text),
): ParsedOptions<OptionsOf<S>> | null {
  const parsed = parseOptions(argv, spec);
  if (!parsed.help) return parsed;
  write(renderHelp(spec));
  return null;
}
