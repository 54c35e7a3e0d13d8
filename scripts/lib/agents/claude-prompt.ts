// The sub-agent's prompt, and the markdown task files (`--task_file`) it can be built from.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import matter from 'gray-matter';
import { z } from 'zod';
import type { AgentContext } from './agent-types.ts';
import { errorMessage, usageError } from '../core/errors.ts';
import { formatIssues, PRIORITIES } from '../state/schema.ts';

const listOrString = z
  .union([z.array(z.string()), z.string()])
  .transform((value) => (Array.isArray(value) ? value : value.split(',')).map((item) => item.trim()).filter(Boolean));

/** Frontmatter a task file may carry; every key is optional and flags override it. */
export const TaskFileFrontmatterSchema = z.strictObject({
  task_name: z.string().optional(),
  goal: z.string().optional(),
  /** A list, or a comma-separated string. */
  depends_on: listOrString.optional(),
  priority: z.enum(PRIORITIES).optional(),
  /** A list, or a comma-separated string. */
  files: listOrString.optional(),
});

/** A parsed task file. */
export interface TaskFile {
  /** Absolute path. */
  path: string;
  taskName?: string;
  goal?: string;
  dependsOn?: string[];
  priority?: string;
  files?: string[];
  /** The markdown body: the detailed instructions (trimmed; may be empty). */
  instructions: string;
}

/**
 * Reads a markdown task file: optional YAML frontmatter (`task_name`, `goal`, `depends_on`,
 * `priority`, `files`) and a body of detailed instructions. Without a `goal`, the body's first
 * line (its heading) stands in for it.
 *
 * @param file - path, relative to `cwd`.
 * @throws OrchestratorError usage (exit 2) when the file is missing, not a file, has broken YAML or
 *   unknown or mistyped keys; the message names the file and the key.
 */
export function readTaskFile(file: string, cwd = process.cwd()): TaskFile {
  const full = path.resolve(cwd, file);
  let text: string;
  try {
    if (!statSync(full).isFile()) throw new Error('it is not a file');
    text = readFileSync(full, 'utf8');
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : errorMessage(error);
    throw usageError(`Cannot read --task_file ${JSON.stringify(file)} (${full}): ${why}. Give the path of a markdown task file.`, error);
  }
  let parsed: matter.GrayMatterFile<string>;
  try {
    parsed = matter(text, {});
  } catch (error) {
    throw usageError(
      `The frontmatter of --task_file ${full} is not valid YAML: ${errorMessage(error).split('\n')[0]}. Fix the block between the "---" lines.`,
      error,
    );
  }
  const checked = TaskFileFrontmatterSchema.safeParse(parsed.data);
  if (!checked.success) {
    throw usageError(
      `The frontmatter of --task_file ${full} is invalid: ${formatIssues(checked.error)}. ` +
        `Allowed keys: ${Object.keys(TaskFileFrontmatterSchema.shape).join(', ')} (all optional).`,
    );
  }
  const data = checked.data;
  const instructions = parsed.content.trim();
  const heading = instructions
    .split('\n')[0]
    ?.replace(/^#+\s*/, '')
    .trim();
  return {
    path: full,
    taskName: data.task_name,
    goal: data.goal ?? (heading || undefined),
    dependsOn: data.depends_on,
    priority: data.priority,
    files: data.files,
    instructions,
  };
}

/** What {@link buildPrompt} needs beyond the agent context. */
export interface PromptExtras {
  /** The task file's body, if any. */
  instructions?: string;
  /** The task file's absolute path, if any. */
  taskFilePath?: string;
}

/**
 * Builds the sub-agent's prompt: who it is, the goal, the detailed instructions, its files and
 * its dependencies' results, and what to return. The prompt is sent on standard input, so its
 * text is never interpreted by a shell.
 *
 * @returns markdown text.
 */
export function buildPrompt(
  ctx: Pick<
    AgentContext,
    'taskName' | 'agent' | 'goal' | 'dependsOn' | 'files' | 'session_id' | 'cwd' | 'resultPath' | 'dependencyResults'
  >,
  extras: PromptExtras = {},
): string {
  const sections = [
    `You are ${ctx.agent}, a sub-agent running one task ("${ctx.taskName}") of a larger plan in session ${ctx.session_id}. ` +
      'You run unattended: nobody can answer questions or approve anything, so make reasonable assumptions, state them, and finish the task.',
    `## Goal\n${ctx.goal.trim()}`,
  ];
  if (extras.instructions?.trim()) {
    sections.push(`## Instructions${extras.taskFilePath ? ` (from ${extras.taskFilePath})` : ''}\n${extras.instructions.trim()}`);
  }
  sections.push(`## Working directory\n${ctx.cwd}`);
  if (ctx.files.length > 0) {
    sections.push(
      `## Files\nThis task owns these files; other agents may be changing other files at the same time, so change nothing else:\n` +
        ctx.files.map((file) => `- ${file}`).join('\n'),
    );
  }
  // Own keys only: a dependency named `toString` without a result must not find Object.prototype's.
  const deps = ctx.dependsOn.map(
    (dep) => `- ${dep}: ${(Object.hasOwn(ctx.dependencyResults, dep) ? ctx.dependencyResults[dep] : undefined) ?? '(no result file)'}`,
  );
  if (deps.length > 0) sections.push(`## Results of the tasks this one depends on\nRead them first:\n${deps.join('\n')}`);
  sections.push(
    '## What to return\n' +
      `Your final message is saved by the orchestrator, verbatim, as the body of ${ctx.resultPath}; do not write that file yourself. ` +
      'Make it a self-contained markdown report: a one-line summary first, then what you did, the result itself ' +
      '(findings, answer or changes), the files you changed, and anything left undone or uncertain.',
  );
  return sections.join('\n\n') + '\n';
}
