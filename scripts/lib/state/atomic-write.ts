// Replacing a file atomically (temporary file in the same folder, fsync, rename) without ever leaving the temporary file behind.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { OrchestratorError } from '../core/errors.ts';

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /**
   * The temporary file's path; default `<target>.<pid>.<random>.tmp`. It must be in the target's
   * folder (a rename across file systems is not atomic) and must not exist.
   */
  tempPath?: string;
  /**
   * Runs after the temporary file is complete and on disk, right before the rename: the place
   * for a fence (is the lock still ours, is the target still what was read?). If it throws, the
   * temporary file is removed, nothing is renamed, and its error is thrown as is.
   */
  beforeCommit?: () => Promise<void> | void;
  /** fsync the temporary file before the rename (default true): no empty file after a power cut. */
  fsync?: boolean;
  /** Words for the error message: "Could not <action> <target>" (default "write"). */
  action?: string;
  /**
   * Never replace an existing `target`: the complete temporary file is hard-linked to `target` (which
   * fails when it exists) and then removed, instead of renamed over it. An existing target is a
   * `write_failed` error whose `cause` has the code `EEXIST`.
   */
  exclusive?: boolean;
  /** Permission bits of a file that does not exist yet (before the umask); default 0o666, as fs.writeFile. */
  mode?: number;
}

/**
 * Writes `data` to `target` so that readers see the old content or the new, never a mix:
 * a temporary file in the same folder (created exclusively), written and fsynced, then renamed
 * over `target` (with `exclusive`, linked to a `target` that must not exist yet).
 *
 * On ANY failure (full disk, quota, read-only or immutable file, permissions, a throwing
 * `beforeCommit`) the temporary file is removed before the error propagates, and `target` is
 * untouched. File-system errors become an {@link OrchestratorError} `write_failed` (exit 2)
 * saying what happened in words, e.g. "no space left on the device holding <path>", and what to
 * do; `beforeCommit`'s own errors are rethrown unchanged.
 *
 * @param target - absolute path of the file to replace (or create).
 * @param data - the whole new content (UTF-8 when a string).
 * @throws OrchestratorError `write_failed`, or whatever `beforeCommit` throws.
 * @example
 * await writeFileAtomic('/p/.agent/results/scan.md', text);
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const temp = options.tempPath ?? `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const action = options.action ?? 'write';
  let handle: fs.FileHandle | null = null;
  let stage: 'write' | 'commit' | 'fence' = 'write';
  try {
    handle = await fs.open(temp, 'wx', options.mode ?? 0o666);
    await handle.writeFile(data);
    if (options.fsync !== false) await handle.sync();
    await handle.close();
    handle = null;
    stage = 'fence';
    await options.beforeCommit?.();
    stage = 'commit';
    if (options.exclusive) {
      await fs.link(temp, target);
      await fs.unlink(temp).catch(() => {});
    } else await fs.rename(temp, target);
  } catch (error) {
    await handle?.close().catch(() => {});
    await fs.unlink(temp).catch(() => {});
    if (stage === 'fence') throw error;
    throw describeFsError(error, target, action);
  }
}

/**
 * Turns a file-system error into a user-facing {@link OrchestratorError} `write_failed` (exit 2):
 * what happened, in words, with the path, and what to do. Errors that are not file-system errors
 * (no `code`), and OrchestratorErrors, are returned unchanged.
 *
 * @param error - what fs threw.
 * @param where - the path to name: the file being written (its folder is where a temporary file or lock was made).
 * @param action - what was being done, for "Could not <action> <target>".
 * @param target - the file the user knows (default `where`).
 */
export function describeFsError(error: unknown, where: string, action: string, target = where): unknown {
  if (error instanceof OrchestratorError) return error;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string') return error;
  const dir = path.dirname(where);
  const reasons: Record<string, string> = {
    ENOSPC: `no space left on the device holding ${where}. Free some space on that disk (or use a folder on another one) and run the command again`,
    EDQUOT: `the disk quota is used up on the device holding ${where}. Free some space (or use a folder on another disk) and run the command again`,
    EROFS: `the file system holding ${where} is read-only. Use a folder on a writable disk (for the session: --session_dir DIR), or remount it read-write`,
    EACCES: `permission denied for ${where}. Make ${dir} writable for this user (chmod u+w "${dir}"), or use another folder (for the session: --session_dir DIR)`,
    EPERM:
      `the operation is not permitted on ${where}: it or its folder may be immutable or append-only (Linux: lsattr "${where}", then chattr -i; macOS: chflags nouchg), ` +
      `or not writable by this user. Lift that, or use another folder (for the session: --session_dir DIR)`,
    ENOTDIR: `a part of ${where} is a file, not a folder. Move that file aside or choose another folder`,
    EISDIR: `${where} is a folder, not a file. Move it aside and run the command again`,
    EEXIST: `${where} already exists and is not replaced. Move it aside, or choose another name`,
    EMFILE: `this process has too many open files (EMFILE). Raise the limit (ulimit -n) and run the command again`,
    ENFILE: `the system has too many open files (ENFILE). Close some programs and run the command again`,
    EIO: `an input/output error on the device holding ${where} (EIO). Check that disk, then run the command again`,
  };
  const reason = reasons[code] ?? `${(error as Error).message}`;
  return new OrchestratorError('write_failed', `Could not ${action} ${target}: ${reason}. It was left as it was.`, { cause: error });
}
