// Archiving a session before a new one replaces it: its state hard-linked (or copied) and its events renamed under the session's id, never over an earlier archive.
import fs from 'node:fs/promises';
import { OrchestratorError } from '../core/errors.ts';
import { describeFsError } from './atomic-write.ts';
import { archivePaths, type SessionPaths } from './session-paths.ts';

/**
 * Keeps the current session as `<session_id>.yaml` (a hard link, so `latest.yaml` never
 * disappears, even for a moment) and moves its events to `<session_id>.events.jsonl`.
 * @throws OrchestratorError `session_conflict` when that archive exists already.
 */
export async function archiveSession(paths: SessionPaths, sessionId: string): Promise<void> {
  const target = archivePaths(paths, sessionId);
  try {
    await fs.link(paths.statePath, target.state);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new OrchestratorError(
        'session_conflict',
        `Cannot archive session ${sessionId}: ${target.state} already exists. Move it aside and try again.`,
      );
    }
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS')
      throw describeFsError(error, target.state, 'archive the session as');
    // No hard links on this file system: an exclusive copy instead.
    await fs.copyFile(paths.statePath, target.state, fs.constants.COPYFILE_EXCL).catch((copyError: unknown) => {
      throw (copyError as NodeJS.ErrnoException).code === 'EEXIST'
        ? new OrchestratorError(
            'session_conflict',
            `Cannot archive session ${sessionId}: ${target.state} already exists. Move it aside and try again.`,
          )
        : describeFsError(copyError, target.state, 'archive the session as');
    });
  }
  try {
    await fs.rename(paths.eventsPath, target.events);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw describeFsError(error, target.events, 'archive the events as');
  }
}
