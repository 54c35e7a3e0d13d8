// Reads a plan (a seed-style master_plan.md task table, or YAML) into validated tasks.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { OrchestratorError } from '../core/errors.ts';
import { countOf } from '../core/format.ts';
import { validateGraph } from '../scheduling/graph.ts';
import { findTables, splitLines } from './markdown-table.ts';
import type { MockCommand, MockEdit } from '../agents/mock-agent.ts';
import { TASK_NAME_PATTERN, TASK_NAME_RULE } from '../core/names.ts';
import { PRIORITIES, formatIssues, type Priority } from '../state/schema.ts';
import { YamlPlanSchema } from './plan-yaml-schema.ts';

/** One task of a plan. */
export interface PlanTask {
  id: string;
  goal: string;
  dependsOn: string[];
  priority: Priority;
  files: string[];
  /** Read by the mock agent only: simulated work time (ms). */
  delayMs?: number;
  /** Read by the mock agent only: fail on purpose. */
  fail?: boolean;
  /** Read by the mock agent only: files to write, then to append to, in its working directory (`write:`/`append:`). */
  edits?: MockEdit[];
  /** Read by the mock agent only: claim success without doing anything (`lazy: true`). */
  lazy?: boolean;
  /** Read by the mock agent only: the answer to give (`claim:`). */
  claim?: string;
  /** Read by the mock agent only: commands to pretend it ran, with their exit codes (`ran: { "npm test": 1 }`); never run. */
  ran?: MockCommand[];
  /** This task's isolation, over the plan's and the command line's (`isolation: none|worktree`). */
  isolation?: 'none' | 'worktree';
  /** With isolation: the task must change files (flagged when it changes none); default true when `files` is given. */
  expectChanges?: boolean;
  /** A program to run after the agent's answer (`check:`), run only with `--allow_plan_checks` (plan-checks.ts). */
  check?: string;
  /** Time limit of one run of the check (s; `check_timeout:`). */
  checkTimeoutS?: number;
}

/** A validated plan. */
export interface Plan {
  path: string;
  format: 'markdown' | 'yaml';
  request: string | null;
  maxWorkers: number | null;
  /** The plan's isolation (YAML `isolation: none|worktree`), or null: the command line's `--isolation` decides. */
  isolation: 'none' | 'worktree' | null;
  tasks: PlanTask[];
}

/** Splits a dependency cell: "None", "-", "" mean none; ids are separated by commas or spaces. */
export function parseDependencyList(cell: string | string[] | undefined): string[] {
  if (cell === undefined) return [];
  const items = Array.isArray(cell) ? cell : cell.split(/[,\s]+/);
  return items.map((item) => item.trim().replace(/^`|`$/g, '')).filter((item) => item !== '' && !/^(none|-|—|n\/a)$/i.test(item));
}

/**
 * Reads and validates a plan file: `.md` as a master plan, `.yaml`/`.yml`/`.json` as YAML.
 * Duplicate ids, unknown dependencies, bad ids and cycles are refused before anything runs.
 * @throws OrchestratorError `invalid_plan` or `dependency_cycle` (exit 2) naming the problem and the file.
 */
export async function loadPlan(file: string): Promise<Plan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new OrchestratorError(
      'invalid_plan',
      `Cannot read the plan ${file}: ${(error as Error).message}. Pass the path of a master_plan.md or a YAML plan.`,
      { cause: error },
    );
  }
  return parsePlanText(text, file, /\.(ya?ml|json)$/i.test(file) ? 'yaml' : 'markdown');
}

/**
 * Parses and validates a plan's text as {@link loadPlan} does a file's (the same parsers and checks);
 * `file` only names it in messages and, resolved, becomes its `path`.
 * @throws OrchestratorError `invalid_plan` or `dependency_cycle` (exit 2) naming the problem and `file`.
 */
export function parsePlanText(text: string, file: string, format: Plan['format']): Plan {
  const plan = format === 'yaml' ? parseYamlPlan(text, file) : parseMarkdownPlan(text, file);
  const seen = new Set<string>();
  for (const task of plan.tasks) {
    if (seen.has(task.id))
      throw new OrchestratorError('invalid_plan', `The plan ${file} lists task ${task.id} twice. Give every task its own id.`);
    seen.add(task.id);
  }
  try {
    validateGraph(new Map(plan.tasks.map((task) => [task.id, task.dependsOn])));
  } catch (error) {
    if (error instanceof OrchestratorError) throw new OrchestratorError(error.code, `${error.message} (plan ${file})`);
    throw error;
  }
  return plan;
}

/**
 * Parses a YAML plan: `tasks: [{ id, goal, depends_on, priority, files, delay_ms, fail, write, append, lazy, claim, ran,
 * isolation, expect_changes, check, check_timeout }]`, optional `request`, `max_workers`, `isolation` (plan-yaml-schema.ts). `write`/`append`
 * map relative paths to text, `ran` commands to exit codes (mock agents only, never run); a `..` or absolute path is refused. A merge check command is never read from a plan (a plan is data).
 */
export function parseYamlPlan(text: string, file = 'plan.yaml'): Plan {
  let data: unknown;
  try {
    data = YAML.parse(text);
  } catch (error) {
    throw new OrchestratorError('invalid_plan', `The plan ${file} is not valid YAML: ${(error as Error).message.split('\n')[0]}.`);
  }
  const parsed = YamlPlanSchema.safeParse(data);
  if (!parsed.success) {
    throw new OrchestratorError(
      'invalid_plan',
      `The plan ${file} does not match the YAML plan format (${formatIssues(parsed.error)}). ` +
        'Expected: tasks: [{ id, goal, depends_on, priority, files, delay_ms, fail, write, append, lazy, claim, ran, isolation, expect_changes, check, check_timeout }], optional request, max_workers and isolation.',
    );
  }
  return {
    path: path.resolve(file),
    format: 'yaml',
    request: parsed.data.request ?? null,
    maxWorkers: parsed.data.max_workers ?? null,
    isolation: parsed.data.isolation ?? null,
    tasks: parsed.data.tasks.map((task) => ({
      id: task.id,
      goal: task.goal,
      dependsOn: parseDependencyList(task.depends_on),
      priority: task.priority ?? 'P2',
      files: task.files ?? [],
      delayMs: task.delay_ms,
      fail: task.fail,
      edits:
        task.write || task.append
          ? [
              ...Object.entries(task.write ?? {}).map(([file, text]) => ({ kind: 'write' as const, path: file, text })),
              ...Object.entries(task.append ?? {}).map(([file, text]) => ({ kind: 'append' as const, path: file, text })),
            ]
          : undefined,
      lazy: task.lazy,
      claim: task.claim,
      ran: task.ran ? Object.entries(task.ran).map(([command, exit]) => ({ command, exit })) : undefined,
      isolation: task.isolation,
      expectChanges: task.expect_changes,
      check: task.check,
      checkTimeoutS: task.check_timeout,
    })),
  };
}

/**
 * Index of the header cell matching the first of `names` that any cell matches (names in order of
 * preference; case-insensitive, exact after trimming and removing emphasis), or -1.
 */
export function columnIndex(header: string[], names: string[]): number {
  const cells = header.map((cell) => cell.replace(/[*_`]/g, '').trim().toLowerCase());
  for (const name of names) {
    const index = cells.indexOf(name.toLowerCase());
    if (index !== -1) return index;
  }
  return -1;
}

/** Header names of the task-id and dependencies columns (either marks the task table), in order of preference. */
export const ID_COLUMNS = ['task id', 'id', 'task'];
export const DEPENDENCY_COLUMNS = ['dependencies', 'deps', 'depends on', 'depends_on'];

/**
 * Parses a seed-style `master_plan.md`: the first GitHub-flavoured table with a task-id column and a
 * dependencies column (`| Task ID | Description | Dependencies | ... |`, "None" for no dependency).
 * A `Description` (or `Task Name`) cell is the goal; `Priority` and `Files` columns are optional.
 * The request is the blockquote under a heading containing "Request".
 *
 * Tables are read as GitHub reads them (marked's lexer): rows need no leading pipe, and a table
 * ends at a blank line or another block. Every row must have exactly the header's number of
 * cells (GFM would pad or cut it silently, so a forgotten cell would read as "no dependencies").
 *
 * @throws OrchestratorError `invalid_plan` naming `file:line` for a row with the wrong number of
 *   cells, a bad task id, a bad priority or an empty goal, or when there is no task table.
 */
export function parseMarkdownPlan(text: string, file = 'master_plan.md'): Plan {
  const table = findTables(text).find(
    (candidate) => columnIndex(candidate.header, ID_COLUMNS) !== -1 && columnIndex(candidate.header, DEPENDENCY_COLUMNS) !== -1,
  );
  if (!table) {
    throw new OrchestratorError(
      'invalid_plan',
      `No task table found in ${file}. Expected a Markdown table with the columns "Task ID | Description | Dependencies" ` +
        '(see templates/master_plan.md), or pass a YAML plan.',
    );
  }
  const idCol = columnIndex(table.header, ID_COLUMNS);
  const depCol = columnIndex(table.header, DEPENDENCY_COLUMNS);
  const goalCol = columnIndex(table.header, ['description', 'goal', 'task name', 'name', 'task']);
  const nameCol = columnIndex(table.header, ['task name', 'name']);
  const priorityCol = columnIndex(table.header, ['priority']);
  const filesCol = columnIndex(table.header, ['files']);
  const goalColumns = [goalCol, nameCol].filter((col) => col !== -1 && col !== idCol);
  if (goalColumns.length === 0) {
    throw new OrchestratorError(
      'invalid_plan',
      `${file}:${table.start + 1}: the task table has no Description (or Task Name) column, so the agents would have no goal. ` +
        'Add a "Description" column saying what each task must do.',
    );
  }
  const tasks = table.rows.map(({ line, cells }) => {
    const where = `${file}:${line + 1}`;
    if (cells.length !== table.header.length) {
      throw new OrchestratorError(
        'invalid_plan',
        `${where}: this row has ${countOf(cells.length, 'cell')} but the table header has ${table.header.length} ` +
          `(${table.header.join(' | ')}). Give every row one cell per column (an empty cell is "| |"; write "None" for no dependencies), ` +
          'and leave a blank line after the table before other text.',
      );
    }
    const id = (cells[idCol] ?? '').replace(/[`*]/g, '');
    if (!TASK_NAME_PATTERN.test(id)) {
      throw new OrchestratorError('invalid_plan', `${where}: task id ${JSON.stringify(id)} must match ${TASK_NAME_RULE}.`);
    }
    const description = goalCol !== -1 && goalCol !== idCol ? (cells[goalCol] ?? '') : '';
    const name = nameCol !== -1 && nameCol !== goalCol ? (cells[nameCol] ?? '') : '';
    const goal = [name, description].filter((part) => part.trim() !== '').join(': ');
    if (goal === '') {
      throw new OrchestratorError(
        'invalid_plan',
        `${where}: task ${id} has an empty ${table.header[goalColumns[0]!]} cell. Say what the agent must do (an empty goal is refused, as --goal "" is).`,
      );
    }
    const priorityCell = priorityCol === -1 ? '' : (cells[priorityCol] ?? '').trim().toUpperCase();
    if (priorityCell && !(PRIORITIES as readonly string[]).includes(priorityCell)) {
      throw new OrchestratorError(
        'invalid_plan',
        `${where}: priority ${JSON.stringify(priorityCell)} of ${id} must be one of ${PRIORITIES.join(', ')}.`,
      );
    }
    return {
      id,
      goal,
      dependsOn: parseDependencyList(cells[depCol]),
      priority: (priorityCell || 'P2') as Priority,
      files: filesCol === -1 ? [] : parseDependencyList(cells[filesCol]),
    };
  });
  if (tasks.length === 0) throw new OrchestratorError('invalid_plan', `The task table of ${file} has no rows.`);
  return {
    path: path.resolve(file),
    format: 'markdown',
    request: extractRequest(splitLines(text).map((line) => line.text)),
    maxWorkers: null,
    isolation: null,
    tasks,
  };
}

function extractRequest(lines: string[]): string | null {
  const heading = lines.findIndex((line) => /^#{1,6}\s.*request/i.test(line));
  if (heading === -1) return null;
  const quote: string[] = [];
  for (const line of lines.slice(heading + 1)) {
    if (/^#{1,6}\s/.test(line)) break;
    if (line.startsWith('>')) quote.push(line.replace(/^>\s?/, ''));
    else if (quote.length > 0 && line.trim() === '') break;
  }
  return quote.length > 0 ? quote.join('\n').trim() : null;
}
