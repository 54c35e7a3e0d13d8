// Agent result files: `<output_dir>/<task_name>.md`, YAML frontmatter (gray-matter) then the agent's text.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import matter from 'gray-matter';
import { resolveInside } from './names.ts';

/** The frontmatter every result file carries; runners add their own fields (cost, tokens, ...). */
export interface ResultFrontmatter {
  task: string;
  agent: string;
  status: 'completed' | 'failed';
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
 */
export async function writeResultFile(file: string, frontmatter: ResultFrontmatter, body: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const data = Object.fromEntries(Object.entries(frontmatter).filter(([, value]) => value !== undefined));
  const text = matter.stringify(body.endsWith('\n') ? body : `${body}\n`, data);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, text, 'utf8');
  await rename(tmp, file);
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
  const parsed = matter(text, {});
  return { data: parsed.data, body: parsed.content };
}
