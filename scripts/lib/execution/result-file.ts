// Agent result files: `<output_dir>/<task_name>.md`, YAML frontmatter (gray-matter) then the agent's text.
import { writeFileAtomic } from '../state/atomic-write.ts';
import { accessSync, constants, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { usageError } from '../core/errors.ts';
import { resolveInside } from '../core/names.ts';

type Matter = typeof import('gray-matter');
let matterModule: Promise<Matter> | null = null;

/** gray-matter, loaded when a result file is first written or read (a start that only queues its task does neither). */
function loadMatter(): Promise<Matter> {
  matterModule ??= import('gray-matter').then((mod) => (mod as { default?: Matter }).default ?? (mod as unknown as Matter));
  return matterModule;
}

/** The frontmatter every result file carries; runners add their own fields (cost, tokens, ...). */
export interface ResultFrontmatter {
  task: string;
  agent: string;
  status: 'completed' | 'failed' | 'merge_failed';
  session_id: string;
  attempt: number;
  runner: string;
  started_at: string | null;
  ended_at: string;
  duration_ms: number | null;
  depends_on: string[];
  error?: string | null;
  [key: string]: unknown;
}

/**
 * Checks, without creating anything, that `dir` is a usable result folder: an existing writable
 * directory, or a path whose nearest existing ancestor is a writable directory (so it can be
 * created). Run before a task is registered, so a bad `--output_dir` never leaves a task claimed.
 *
 * @param dir - absolute folder.
 * @throws OrchestratorError usage (exit 2) naming the path and what is in the way.
 */
export function checkOutputDir(dir: string): void {
  let probe = dir;
  for (;;) {
    let stats;
    try {
      stats = statSync(probe);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const parent = path.dirname(probe);
      // Missing, or below a file (ENOTDIR): look at the parent, until something exists.
      if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== probe) {
        probe = parent;
        continue;
      }
      throw usageError(`Cannot use --output_dir ${JSON.stringify(dir)}: ${(error as Error).message}.`);
    }
    if (!stats.isDirectory()) {
      throw usageError(
        probe === dir
          ? `Expected --output_dir to be a folder, got ${JSON.stringify(dir)}, which is a file. Pick another folder or move the file.`
          : `Expected --output_dir to be a folder, got ${JSON.stringify(dir)}: ${JSON.stringify(probe)} is a file. Pick another folder.`,
      );
    }
    try {
      accessSync(probe, constants.W_OK | constants.X_OK);
    } catch {
      throw usageError(
        `Cannot write results to --output_dir ${JSON.stringify(dir)}: ${probe === dir ? 'the folder' : `its parent ${JSON.stringify(probe)}`} is not writable. Pick a writable folder.`,
      );
    }
    return;
  }
}

/**
 * Path of a task's result file, checked to stay inside the output folder.
 * @param outputDir - absolute folder.
 * @param taskName - an already validated task name.
 */
export function resultPathFor(outputDir: string, taskName: string): string {
  return resolveInside(outputDir, `${taskName}.md`);
}

/**
 * Writes a result file atomically (temporary file, then rename), so readers never see half of one.
 * `undefined` values are dropped from the frontmatter.
 * @param options.beforeCommit - runs right before the rename (the writer's check that the task is still its own); if it
 *   throws, nothing is renamed, the temporary file is removed and its error is thrown as is.
 */
export async function writeResultFile(
  file: string,
  frontmatter: ResultFrontmatter,
  body: string,
  options: { beforeCommit?: () => Promise<void> } = {},
): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const data = Object.fromEntries(Object.entries(frontmatter).filter(([, value]) => value !== undefined));
  const matter = await loadMatter();
  const text = matter.stringify(body.endsWith('\n') ? body : `${body}\n`, data);
  await writeFileAtomic(file, text, { action: 'write the result file', beforeCommit: options.beforeCommit });
}

/**
 * Reads a result file.
 * @returns its frontmatter and body, or null if the file does not exist.
 */
export async function readResultFile(file: string): Promise<{ data: Record<string, unknown>; body: string } | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  // Pass an options object so gray-matter does not serve a cached parse of equal text.
  const matter = await loadMatter();
  const parsed = matter(text, {});
  return { data: parsed.data, body: parsed.content };
}
