// The mock agent: waits a delay, editing the files it was told to halfway through, and returns a result that quotes its goal, or fails on request.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { OrchestratorError } from '../core/errors.ts';
import type { AgentContext, AgentExecutor, AgentOutcome } from './agent-types.ts';
import { Evidence } from '../verification/evidence.ts';
import { emptyAttempt, lineCount, type AttemptReceipt } from '../verification/receipts.ts';
import { describeCheckFailure as describeCheck, type TaskCheck } from '../verification/task-check.ts';
import { checkReceipt, checkStep, nextTry } from './check-step.ts';

/** Default delay range of a mock agent when `--delay_ms` is not given (ms): the seeds' 1-3 s. */
export const MOCK_DELAY_RANGE_MS = [1000, 3000] as const;

/** The line every mock result carries, so nobody takes it for an agent's findings. */
export const SIMULATED_NOTE = '**SIMULATED: a mock agent wrote this (a rehearsal); no real work was done and nothing below is a finding.**';

/** Options of {@link createMockExecutor}. */
export interface MockOptions {
  /** Simulated work time (ms); default a random value in {@link MOCK_DELAY_RANGE_MS}. */
  delayMs?: number;
  /** Report failure instead of success. */
  fail?: boolean;
  /**
   * Files to write or append to in the agent's working directory, in order, halfway through the
   * delay (as a real agent edits while it works, so its work in progress can be seen); none when it fails.
   */
  edits?: MockEdit[];
  /** Claim success without doing anything: no tool call, no edit (a lazy agent, to rehearse the `unverified` verdict). */
  lazy?: boolean;
  /** The answer's claim (e.g. "Done, all tests pass."), given as the result instead of the usual SIMULATED summary. */
  claim?: string;
  /** Commands the mock pretends it ran, with their exit codes (never run: the receipt records them as simulated). */
  ran?: MockCommand[];
  /**
   * The task's check, run for real after the simulated work (check-step.ts): a failure is tried again (the simulated
   * work once more, without its edits) within `retries`, then fails the task with the check's output.
   */
  check?: TaskCheck;
  /** Tries after a failed check (default 0). */
  retries?: number;
  /** Progress lines (the check, retries). */
  log?: (line: string) => void;
}

/** A command a mock agent pretends it ran: `--ran "CMD=EXIT"`, or a plan's `ran: { CMD: EXIT }`. */
export interface MockCommand {
  command: string;
  exit: number;
}

/**
 * Parses `CMD=EXIT` (the last `=` splits; EXIT a whole number from 0 to 255).
 * @throws OrchestratorError `usage` naming the value and the form expected.
 */
export function parseRanFlag(value: string): MockCommand {
  const at = value.lastIndexOf('=');
  const exit = Number(value.slice(at + 1));
  if (at <= 0 || !/^\d{1,3}$/.test(value.slice(at + 1)) || exit > 255) {
    throw new OrchestratorError(
      'usage',
      `Expected --ran CMD=EXIT with EXIT from 0 to 255 (e.g. --ran "npm test=1"), got ${JSON.stringify(value)}.`,
    );
  }
  return { command: value.slice(0, at), exit };
}

/**
 * The receipt of a mock attempt, marked simulated: one search (its look around the project) and one read per
 * declared file, a Write or Edit per edit it made, and each command it pretends it ran; nothing when lazy or failing.
 */
export function mockReceipt(attempt: number, files: readonly string[], options: MockOptions): AttemptReceipt {
  const receipt = emptyAttempt(attempt, true);
  if (options.lazy || options.fail) return receipt;
  receipt.tool_calls.search = 1;
  receipt.tool_calls.read = files.length;
  for (const edit of options.edits ?? []) {
    receipt.tool_calls.edit++;
    receipt.files.push({
      path: edit.path,
      tool: edit.kind === 'write' ? 'Write' : 'Edit',
      ok: true,
      lines_added: lineCount(edit.text),
      lines_removed: 0,
    });
  }
  for (const ran of options.ran ?? []) {
    receipt.tool_calls.bash++;
    receipt.commands.push({ command: ran.command, exit: ran.exit, denied: false, interrupted: false });
  }
  return receipt;
}

/** One file edit of a mock agent: `--write FILE=TEXT` / `--append FILE=TEXT`, or a plan's `write:`/`append:`. */
export interface MockEdit {
  kind: 'write' | 'append';
  /** Relative to the agent's working directory; checked by {@link checkEditPath}. */
  path: string;
  text: string;
}

/**
 * Checks an edit's path: relative, not empty, no `..` component (so it cannot leave the agent's
 * working directory by name), no NUL. Symbolic links are refused when the edit is made.
 * @throws OrchestratorError `invalid_path` naming the source, the value and the rule.
 */
export function checkEditPath(file: string, source: string): string {
  const parts = file.split(/[\\/]+/);
  if (file === '' || file.includes('\0') || path.isAbsolute(file) || /^[A-Za-z]:/.test(file) || parts.includes('..')) {
    throw new OrchestratorError(
      'invalid_path',
      `${source}: the file ${JSON.stringify(file)} must be a path relative to the agent's working directory, without ".." ` +
        '(e.g. src/auth.ts).',
    );
  }
  return file;
}

/**
 * Parses `FILE=TEXT` (the first `=` splits; TEXT may be empty or hold more `=`; `\n` in TEXT is a newline).
 * @throws OrchestratorError `usage` without `=`, or `invalid_path` for a bad FILE.
 */
export function parseEditFlag(kind: MockEdit['kind'], value: string): MockEdit {
  const at = value.indexOf('=');
  if (at <= 0) {
    throw new OrchestratorError(
      'usage',
      `Expected --${kind} FILE=TEXT (e.g. --${kind} "src/a.ts=export const a = 1;"), got ${JSON.stringify(value)}.`,
    );
  }
  return { kind, path: checkEditPath(value.slice(0, at), `--${kind}`), text: value.slice(at + 1).replace(/\\n/g, '\n') };
}

/**
 * Makes one edit inside `root`: every existing component of the path must be a real folder or
 * file, never a symbolic link (so no edit lands outside `root`), missing folders are created, and
 * the file is opened with O_NOFOLLOW.
 * @throws OrchestratorError `unsafe_path` for a symbolic link on the way, `invalid_path` for a bad path.
 */
export async function applyEdit(root: string, edit: MockEdit): Promise<void> {
  checkEditPath(edit.path, edit.kind);
  const parts = edit.path.split(/[\\/]+/).filter((part) => part !== '' && part !== '.');
  if (parts.length === 0) throw new OrchestratorError('invalid_path', `${edit.kind}: ${JSON.stringify(edit.path)} names no file.`);
  let current = root;
  for (const [index, part] of parts.entries()) {
    current = path.join(current, part);
    const stat = await fs.lstat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (stat?.isSymbolicLink()) {
      throw new OrchestratorError(
        'unsafe_path',
        `${edit.kind} ${edit.path}: ${current} is a symbolic link; the mock agent never follows one.`,
      );
    }
    if (index < parts.length - 1 && stat === null) await makeFolder(current, edit);
  }
  const flags =
    constants.O_WRONLY |
    constants.O_CREAT |
    (edit.kind === 'append' ? constants.O_APPEND : constants.O_TRUNC) |
    (constants.O_NOFOLLOW ?? 0);
  const handle = await fs.open(current, flags, 0o666);
  try {
    await handle.write(edit.text);
  } finally {
    await handle.close();
  }
}

/**
 * Creates one missing folder of an edit's path; one another agent created meanwhile (two mock agents writing below the
 * same new folder at once) is used if it is a real folder, never a symbolic link.
 */
async function makeFolder(folder: string, edit: MockEdit): Promise<void> {
  try {
    await fs.mkdir(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const stat = await fs.lstat(folder);
    if (!stat.isDirectory())
      throw new OrchestratorError(
        'unsafe_path',
        `${edit.kind} ${edit.path}: ${folder} appeared meanwhile and is not a folder; the mock agent never follows one.`,
      );
  }
}

/** Picks a random mock delay in {@link MOCK_DELAY_RANGE_MS} (ms). */
export function randomMockDelay(random = Math.random): number {
  const [low, high] = MOCK_DELAY_RANGE_MS;
  return Math.round(low + random() * (high - low));
}

/**
 * Creates an executor that simulates an agent: it sleeps (abortably) and returns a markdown body
 * quoting the goal, marked SIMULATED in its title, its first line and its frontmatter (`simulated: true`). Used by `spawn-agent-mock` and by `orchestrate --agent mock`.
 */
export function createMockExecutor(options: MockOptions = {}): AgentExecutor {
  const log = options.log ?? (() => {});
  return async (ctx: AgentContext): Promise<AgentOutcome> => {
    const delayMs = options.delayMs ?? randomMockDelay();
    const evidence = await Evidence.begin(ctx);
    const quoted = ctx.goal
      .split('\n')
      .map((line) => `> ${line}`)
      .join('\n');
    for (let tryNumber = 1; ; tryNumber++) {
      const half = Math.floor(delayMs / 2);
      await delay(half, undefined, { signal: ctx.signal });
      // Edits once: a later try (after a failed check) simulates the work again without repeating them.
      const edits = tryNumber === 1 ? options : { ...options, edits: [] };
      if (!options.fail && !options.lazy) for (const edit of edits.edits ?? []) await applyEdit(ctx.cwd, edit);
      await delay(delayMs - half, undefined, { signal: ctx.signal });
      evidence.add(mockReceipt(ctx.attempt + tryNumber - 1, ctx.files, edits));
      const frontmatter = { simulated: true, mock_delay_ms: delayMs, ...(options.check ? { tries: tryNumber } : {}) };
      if (options.fail) {
        return {
          status: 'failed',
          error: 'mock agent failed on purpose (--fail)',
          body: `# ${ctx.taskName}: failed (SIMULATED)\n\n${SIMULATED_NOTE}\n\n## Goal\n${quoted}\n\n## Error\nThe mock agent was asked to fail (--fail).\n`,
          frontmatter,
          receipt: await evidence.document({ completed: false, result: '' }),
        };
      }
      const step = await checkStep(ctx, options.check, { tryNumber, retries: options.retries ?? 0 }, log);
      if (step.kind === 'retry') {
        await nextTry(ctx, log, `${step.reason}; the mock agent tries again, retry ${tryNumber} of ${options.retries ?? 0}`, 0);
        continue;
      }
      const result = mockAnswer(ctx, options, delayMs);
      const receipt = await evidence.document({ completed: step.kind === 'passed', result }, checkReceipt(step.run));
      if (step.kind === 'failed') {
        const error = `${describeCheck(step.run)} after ${tryNumber} ${tryNumber === 1 ? 'try' : 'tries'} (--retries ${options.retries ?? 0})`;
        return {
          status: 'failed',
          error,
          body:
            `# ${ctx.taskName}: failed (SIMULATED)\n\n${SIMULATED_NOTE}\n\n## Goal\n${quoted}\n\n## Error\n${error}\n\n` +
            `## Check output (last lines)\n\`\`\`\n${step.run.output_tail.trim()}\n\`\`\`\n`,
          frontmatter: { ...frontmatter, failure: 'check_failed' },
          receipt,
        };
      }
      return {
        status: 'completed',
        body: `# ${ctx.taskName} (SIMULATED)\n\n${SIMULATED_NOTE}\n\n## Goal\n${quoted}\n\n## Result\n${result.trimEnd()}\n`,
        frontmatter,
        receipt,
      };
    }
  };
}

/** A mock agent's answer: its `claim`, or a SIMULATED summary naming its attempt, delay, dependencies and edits. */
function mockAnswer(ctx: AgentContext, options: MockOptions, delayMs: number): string {
  const edited = options.lazy ? [] : (options.edits ?? []).map((edit) => `${edit.kind} ${edit.path}`);
  const deps = ctx.dependsOn.length > 0 ? ctx.dependsOn.join(', ') : 'none';
  return (
    options.claim ??
    `SIMULATED by ${ctx.agent} (mock agent, attempt ${ctx.attempt}) in ${delayMs} ms, after dependencies: ${deps}. ` +
      `No analysis was made.\n${edited.length > 0 ? `\nFiles edited as told (${edited.join(', ')}).\n` : ''}`
  );
}
