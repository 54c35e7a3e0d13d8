// A task's check (`--check CMD`, plan field `check:`): parsed into a program and its arguments (never a shell), run after the agent in its folder with a time limit.
import { OrchestratorError } from '../core/errors.ts';
import { runBounded } from '../process/bounded-run.ts';
import { DEFAULT_KILL_GRACE_MS } from '../process/tree.ts';

/** A task's check, ready to run: the program and its arguments, and the time limit of one run. */
export interface TaskCheck {
  /** The command as the user wrote it (for messages and receipts). */
  command: string;
  /** The program and its arguments, as {@link parseCheckCommand} split them. */
  argv: string[];
  /** Time limit of one run (ms). */
  timeoutMs: number;
}

/** What one run of a check did. */
export interface CheckRun {
  command: string;
  /** The exit code; null when it was ended by a signal, timed out or could not start. */
  exit: number | null;
  /** The last {@link CHECK_TAIL_CHARS} characters of its standard output and error, interleaved. */
  output_tail: string;
  timedOut: boolean;
  /** Wall-clock time of the run (ms). */
  duration_ms: number;
}

/** Default time limit of one check run (s). */
export const DEFAULT_CHECK_TIMEOUT_S = 600;
/** Longest output tail kept of a check (characters). */
export const CHECK_TAIL_CHARS = 4000;

/**
 * Parses a check into a program and its arguments, as a POSIX shell would split the words (shell-quote's parser:
 * quotes and backslashes), but runs no shell: operators (`&&`, `|`, `;`, `>`), globs, comments and `$VARIABLES` are
 * refused, so a plan file can never make a shell run anything.
 * @param source - where it came from, for the error (`--check`, `plan.yaml: task T`).
 * @returns the program and its arguments (at least one word).
 * @throws OrchestratorError `usage` naming the value and what to write instead.
 */
export async function parseCheckCommand(text: string, source: string): Promise<string[]> {
  const { parse } = await import('shell-quote');
  const refuse = (why: string) =>
    new OrchestratorError(
      'usage',
      `${source}: the check ${JSON.stringify(text)} ${why}. A check is one program and its arguments, run without a shell ` +
        '(e.g. "npm test", "pytest -q tests/test_api.py"); put anything more in a script and name that.',
    );
  if (text.trim() === '') throw refuse('is empty');
  if (text.includes('\0') || /[\r\n]/.test(text)) throw refuse('holds a line break or NUL');
  let words: ReturnType<typeof parse>;
  try {
    words = parse(text, (name) => {
      throw new Error(`$${name}`);
    });
  } catch (error) {
    throw refuse(`uses the variable ${(error as Error).message}, which is not expanded`);
  }
  const argv: string[] = [];
  for (const word of words) {
    if (typeof word === 'string') argv.push(word);
    else if ('comment' in word) throw refuse('holds a comment (#)');
    else if ('pattern' in word) throw refuse(`holds the pattern ${JSON.stringify(word.pattern)}, which is not expanded`);
    else throw refuse(`holds the shell operator ${JSON.stringify('op' in word ? word.op : word)}`);
  }
  if (argv.length === 0 || argv[0] === '') throw refuse('names no program');
  return argv;
}

/**
 * A task's check from its command and time limit, validated.
 * @param timeoutS - time limit of one run (s), a positive number.
 * @throws OrchestratorError `usage` for a command {@link parseCheckCommand} refuses or a bad time limit.
 */
export async function readTaskCheck(command: string, timeoutS: number, source: string): Promise<TaskCheck> {
  if (!Number.isFinite(timeoutS) || timeoutS <= 0)
    throw new OrchestratorError('usage', `${source}: the check's time limit must be a positive number of seconds, got ${timeoutS}.`);
  return { command, argv: await parseCheckCommand(command, source), timeoutMs: Math.round(timeoutS * 1000) };
}

/**
 * Runs a check in `cwd` (the agent's folder: its worktree when isolated) within bounds (process/bounded-run.ts): no
 * shell, standard input closed, a process group of its own stopped with everything it started at its time limit, on an
 * abort and as soon as it exits (SIGTERM, then SIGKILL after the grace), only the tail of its output kept. Never throws
 * for the check's own failure: a program that cannot start is exit null with the reason as its output.
 */
export async function runCheck(check: TaskCheck, cwd: string, signal?: AbortSignal): Promise<CheckRun> {
  const started = Date.now();
  const run = await runBounded({
    file: check.argv[0]!,
    args: check.argv.slice(1),
    cwd,
    timeoutMs: check.timeoutMs,
    graceMs: DEFAULT_KILL_GRACE_MS,
    tailChars: CHECK_TAIL_CHARS,
    signal,
  });
  const all = `${run.tail}${run.startError === null ? '' : `\n${run.startError}`}`;
  const tail = outputTail(all, run.dropped, run.stderrTail);
  return {
    command: check.command,
    exit: run.timedOut ? null : run.exitCode,
    output_tail: run.timedOut ? `${tail}\n(timed out after ${check.timeoutMs / 1000} s)` : tail,
    timedOut: run.timedOut,
    duration_ms: Date.now() - started,
  };
}

/** Characters of standard error kept apart when the interleaved tail lost them. */
const STDERR_TAIL_CHARS = 1000;

/**
 * The last {@link CHECK_TAIL_CHARS} characters of a check's interleaved output. Standard output and error are two pipes
 * read apart, so their interleaving is only approximate: when the last lines of standard error (often the reason it
 * failed) fell out of the tail, they are put back under a heading of their own, in place of older output.
 * @param dropped - output older than `all` was dropped already (marked `…`, as any cut).
 */
function outputTail(all: string, dropped: boolean, stderr: string): string {
  const cut = (text: string, chars: number, older = false) => (older || text.length > chars ? `…${text.slice(-chars)}` : text);
  const whole = cut(all, CHECK_TAIL_CHARS, dropped);
  const errLines = stderr.trim() === '' ? '' : cut(stderr.trimEnd(), STDERR_TAIL_CHARS);
  if (errLines === '' || whole.includes(errLines.replace(/^…/, ''))) return whole;
  const heading = '\n(standard error, last lines:)\n';
  return `${cut(all, CHECK_TAIL_CHARS - errLines.length - heading.length - 1, dropped)}${heading}${errLines}\n`;
}

/** The instruction that resumes an agent whose check failed: the check, its exit code and its output's tail. */
export function checkFailedPrompt(run: CheckRun): string {
  const how = run.timedOut ? 'timed out' : `exited ${run.exit ?? 'without an exit code'}`;
  return (
    `The check of this task failed: \`${run.command}\` ${how}. Its output ended with:\n\n` +
    `\`\`\`\n${run.output_tail.trim()}\n\`\`\`\n\n` +
    'Fix the cause (not the check), run the check yourself, then give your final answer exactly as the original instructions ask.\n'
  );
}

/** A one-line account of a failed check for errors and retry reasons: `check \`npm test\` failed (exit 1)`. */
export function describeCheckFailure(run: CheckRun): string {
  return `check \`${run.command}\` ${run.timedOut ? `timed out` : `failed (exit ${run.exit ?? 'none'})`}`;
}
