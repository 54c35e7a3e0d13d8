// A plan given on standard input (`orchestrate -`): read it, tell its format, validate it as a file's, save it under .agent/plans/.
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import type { FlagSpec } from '../cli/cli.ts';
import { errorMessage, OrchestratorError, usageError } from '../core/errors.ts';
import { newSessionId, resolveInside } from '../core/names.ts';
import { launcherCommand, shellWord } from '../launcher/dist.ts';
import { describeFsError, writeFileAtomic } from '../state/atomic-write.ts';
import { parsePlanText, type Plan } from './plan.ts';

/** The PLAN argument that means "read the plan from standard input". */
export const STDIN_PLAN = '-';

/** What messages call a plan read from standard input until it is saved (`<stdin>:4: ...`). */
export const STDIN_LABEL = '<stdin>';

/** The most standard input may hold: 1 MiB. */
export const MAX_STDIN_PLAN_BYTES = 1024 * 1024;

/** Where plans read from standard input are saved, relative to the project folder (beside `.agent/results`). */
export const SAVED_PLANS_DIR = '.agent/plans';

/** A plan read from standard input: validated, with the exact text that {@link savePlanInput} saves. */
export interface PlanInput {
  /** The validated plan; its `path` is {@link STDIN_LABEL} until saved. */
  plan: Plan;
  /** Standard input, decoded as UTF-8. */
  text: string;
}

/** The heredoc form, for messages: one command that hands orchestrate its plan. */
export function heredocExample(): string {
  return [
    launcherCommand('orchestrate', `${STDIN_PLAN} --agent mock --detach <<'EOF'`),
    'tasks:',
    '  - { id: scan, goal: "List the source files" }',
    '  - { id: report, goal: "Summarise the scan", depends_on: [scan] }',
    'EOF',
  ].join('\n');
}

/**
 * Reads the plan given as `-`: the whole of standard input (UTF-8, at most {@link MAX_STDIN_PLAN_BYTES}),
 * parsed as YAML when it is a YAML mapping with a `tasks` key, else as a Markdown task table, and
 * validated as {@link parsePlanText} validates a file (duplicates, unknown dependencies, cycles).
 * Nothing is written.
 *
 * @param options.resume - `--resume` (or `--retry_merge`): refused, resuming needs the saved file.
 * @param options.agent - the `--agent` value, for the command a message suggests.
 * @param options.currentPlan - the current session's plan path, if any: the file to resume.
 * @param options.stdin - the stream to read (default `process.stdin`).
 * @throws OrchestratorError usage (exit 2) with `--resume`, for a terminal, empty, oversized or
 *   non-UTF-8 input; `invalid_plan` or `dependency_cycle` (exit 2) for a plan a file would be refused for.
 */
export async function readPlanInput(options: {
  resume: boolean;
  agent: string;
  currentPlan?: string | null;
  stdin?: NodeJS.ReadStream;
}): Promise<PlanInput> {
  if (options.resume) {
    const file = options.currentPlan ? shellWord(options.currentPlan) : `${SAVED_PLANS_DIR}/<name>.md`;
    throw usageError(
      `--resume needs the plan's saved file, not ${STDIN_PLAN} (standard input): a plan read from standard input is saved under ` +
        `${SAVED_PLANS_DIR}/ and orchestrate prints that path (the "Plan" line). Resume with: ` +
        launcherCommand('orchestrate', `${file} --agent ${options.agent} --resume`),
    );
  }
  const text = await readStdinText(options.stdin ?? process.stdin);
  const plan = parseInputPlan(text);
  plan.path = STDIN_LABEL;
  return { plan, text };
}

/**
 * Reads all of `stdin` as UTF-8 text.
 * @throws OrchestratorError usage (exit 2) when `stdin` is a terminal, holds nothing but white space,
 *   holds more than `limit` bytes (reading stops there), is not UTF-8, or cannot be read.
 */
export async function readStdinText(stdin: NodeJS.ReadStream, limit = MAX_STDIN_PLAN_BYTES): Promise<string> {
  if (stdin.isTTY) throw noPlanError('standard input is a terminal');
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stdin as AsyncIterable<Buffer | string>) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += bytes.length;
      if (size > limit) {
        throw usageError(
          `The plan on standard input is larger than ${limit / 1024 / 1024} MiB: split the work into smaller plans, ` +
            'or write the plan to a file and pass its path instead of -.',
        );
      }
      chunks.push(bytes);
    }
  } catch (error) {
    if (error instanceof OrchestratorError) throw error;
    throw usageError(`Cannot read the plan from standard input: ${errorMessage(error)}.`, error);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch (error) {
    throw usageError('The plan on standard input is not UTF-8 text: send the plan as UTF-8 (a Markdown table or YAML).', error);
  }
  if (text.trim() === '') throw noPlanError('standard input is empty');
  return text;
}

/** The usage error for `-` with no plan to read: what happened and the heredoc form. */
function noPlanError(what: string): OrchestratorError {
  return usageError(
    `PLAN is ${STDIN_PLAN}, but ${what}: give the plan (a master_plan.md task table or YAML) on standard input in the same ` +
      `command, e.g.\n${heredocExample()}\nor pass the path of a plan file instead of ${STDIN_PLAN}.`,
  );
}

/**
 * Parses and validates standard input's plan: YAML when the text is a YAML mapping with a `tasks`
 * key, else a Markdown task table. A text with a `tasks` key that is not valid YAML and has no
 * Markdown task table either gets the YAML error, the more useful one.
 */
function parseInputPlan(text: string): Plan {
  const doc = YAML.parseDocument(text);
  const hasTasks = YAML.isMap(doc.contents) && doc.contents.has('tasks');
  if (hasTasks && doc.errors.length === 0) return parsePlanText(text, STDIN_LABEL, 'yaml');
  try {
    return parsePlanText(text, STDIN_LABEL, 'markdown');
  } catch (error) {
    if (hasTasks) return parsePlanText(text, STDIN_LABEL, 'yaml'); // Throws the YAML error.
    throw error;
  }
}

/**
 * Saves a plan read from standard input to `<cwd>/.agent/plans/<name>.md` (or `.yaml`, as its format),
 * `<name>` being `sessionId` when it is known, else `plan-<YYYYMMDD-HHMMSS-xxxx>`. The file is
 * written atomically and created exclusively (mode 0o644): an existing file is never replaced (the
 * name then gets a random suffix), and a failed write leaves no temporary file.
 *
 * @returns the saved file's absolute path, for `plan.path`, the detached run and `--resume`.
 * @throws OrchestratorError `write_failed` (exit 2) naming the file and the cause (e.g. a full disk).
 */
export async function savePlanInput(input: PlanInput, options: { cwd: string; sessionId?: string }): Promise<string> {
  const dir = path.resolve(options.cwd, SAVED_PLANS_DIR);
  await mkdir(dir, { recursive: true }).catch((error: unknown) => {
    throw describeFsError(error, dir, 'create the folder');
  });
  const base = options.sessionId ?? `plan-${newSessionId()}`;
  const extension = input.plan.format === 'yaml' ? '.yaml' : '.md';
  for (let attempt = 0; ; attempt++) {
    const file = resolveInside(dir, `${base}${attempt === 0 ? '' : `-${randomBytes(2).toString('hex')}`}${extension}`);
    try {
      await writeFileAtomic(file, input.text, { exclusive: true, mode: 0o644, action: 'save the plan from standard input to' });
      return file;
    } catch (error) {
      const code = ((error as Error).cause as NodeJS.ErrnoException | undefined)?.code;
      if (code !== 'EEXIST' || attempt >= 4) throw error;
    }
  }
}

/**
 * `argv` with the PLAN argument `-` replaced by the saved plan's path: a detached run reads the
 * file (its standard input is /dev/null). A `-` that is the value of a flag taking one, or comes
 * after `--`, is left alone.
 * @param flags - the command's flags (which ones take a value).
 */
export function withSavedPlan(argv: readonly string[], flags: Record<string, FlagSpec<unknown>>, planPath: string): string[] {
  const out = [...argv];
  for (let i = 0; i < out.length; i++) {
    const arg = out[i]!;
    if (arg === '--') break;
    if (arg === STDIN_PLAN) {
      out[i] = planPath;
      break;
    }
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2).replace(/-/g, '_') : null;
    if (name !== null && Object.hasOwn(flags, name) && flags[name]!.type === 'string') i++; // Its value.
  }
  return out;
}
