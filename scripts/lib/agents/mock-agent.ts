// The mock agent: waits a delay, editing the files it was told to halfway through, and returns a result that quotes its goal, or fails on request.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { OrchestratorError } from '../core/errors.ts';
import type { AgentContext, AgentExecutor, AgentOutcome } from './agent-types.ts';

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
    if (index < parts.length - 1 && stat === null) await fs.mkdir(current);
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
  return async (ctx: AgentContext): Promise<AgentOutcome> => {
    const delayMs = options.delayMs ?? randomMockDelay();
    const half = Math.floor(delayMs / 2);
    await delay(half, undefined, { signal: ctx.signal });
    if (!options.fail) for (const edit of options.edits ?? []) await applyEdit(ctx.cwd, edit);
    await delay(delayMs - half, undefined, { signal: ctx.signal });
    const quoted = ctx.goal
      .split('\n')
      .map((line) => `> ${line}`)
      .join('\n');
    if (options.fail) {
      return {
        status: 'failed',
        error: 'mock agent failed on purpose (--fail)',
        body: `# ${ctx.taskName}: failed (SIMULATED)\n\n${SIMULATED_NOTE}\n\n## Goal\n${quoted}\n\n## Error\nThe mock agent was asked to fail (--fail).\n`,
        frontmatter: { simulated: true, mock_delay_ms: delayMs },
      };
    }
    const edited = (options.edits ?? []).map((edit) => `${edit.kind} ${edit.path}`);
    const deps = ctx.dependsOn.length > 0 ? ctx.dependsOn.join(', ') : 'none';
    return {
      status: 'completed',
      body:
        `# ${ctx.taskName} (SIMULATED)\n\n${SIMULATED_NOTE}\n\n## Goal\n${quoted}\n\n## Result\n` +
        `SIMULATED by ${ctx.agent} (mock agent, attempt ${ctx.attempt}) in ${delayMs} ms, ` +
        `after dependencies: ${deps}. No analysis was made.\n` +
        (edited.length > 0 ? `\nFiles edited as told (${edited.join(', ')}).\n` : ''),
      frontmatter: { simulated: true, mock_delay_ms: delayMs },
    };
  };
}
