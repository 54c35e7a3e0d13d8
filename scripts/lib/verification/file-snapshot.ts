// Snapshots of a task's declared files before and after its agent, to tell which it changed (for the verdict).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { FileChange } from './verdict.ts';

/** A file's fingerprint: `missing`, `dir`, or the SHA-256 of its bytes; null when it could not be read. */
type Fingerprint = string | null;

/** Fingerprints of declared files, by path as declared. */
export type FileSnapshot = ReadonlyMap<string, Fingerprint>;

async function fingerprint(root: string, file: string): Promise<Fingerprint> {
  const full = path.resolve(root, file);
  try {
    const stats = await lstat(full);
    if (stats.isDirectory()) return 'dir';
    if (stats.isSymbolicLink()) return `link`;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(full)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : null;
  }
}

/**
 * Fingerprints each declared file under `root` (the agent's working directory: the worktree when isolated): its
 * contents' SHA-256, `missing`, or `dir` for a folder (a folder's change is not judged). Never throws.
 */
export async function snapshotFiles(root: string, files: readonly string[]): Promise<FileSnapshot> {
  const entries = await Promise.all(files.map(async (file) => [file, await fingerprint(root, file)] as const));
  return new Map(entries);
}

/**
 * Compares two snapshots of the same files: `changed` when the contents differ (created, deleted or edited),
 * `unchanged` when equal, `unknown` for a folder or a file that could not be read.
 */
export function compareSnapshots(before: FileSnapshot, after: FileSnapshot): Map<string, FileChange> {
  const changes = new Map<string, FileChange>();
  for (const [file, was] of before) {
    const now = after.get(file) ?? null;
    if (was === null || now === null || was === 'dir' || now === 'dir') changes.set(file, 'unknown');
    else changes.set(file, was === now ? 'unchanged' : 'changed');
  }
  return changes;
}
