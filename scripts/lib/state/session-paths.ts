// Where a session's files live: `<cwd>/.agent/sessions/` unless `--session_dir` says otherwise.
import path from 'node:path';
import type { FlagSpec } from '../cli/cli.ts';
import { resolveInside } from '../core/names.ts';

/** Default session folder, relative to the working directory (the user's project). */
export const DEFAULT_SESSION_DIR = '.agent/sessions';
/** The `--session_dir` flag every script accepts. */
export const SESSION_DIR_FLAG: FlagSpec = {
  type: 'string',
  placeholder: 'DIR',
  description: `Session folder (default ${DEFAULT_SESSION_DIR}).`,
};

/** Default result folder for agents, relative to the working directory. */
export const DEFAULT_OUTPUT_DIR = '.agent/results';
/** Default aggregated report, relative to the working directory. */
export const DEFAULT_FINAL_OUTPUT = '.agent/final_output.md';

/** Absolute paths of one session folder's files. */
export interface SessionPaths {
  /** The working directory the relative paths were resolved against. */
  cwd: string;
  /** The session folder. */
  dir: string;
  /** `latest.yaml`: the current session's state. */
  statePath: string;
  /** The lock guarding `latest.yaml`: a file naming its owner (pid, start time, host, token), see lock.ts. */
  lockPath: string;
  /** `events.jsonl`: append-only log of the current session's events. */
  eventsPath: string;
}

/**
 * Resolves the session folder's paths.
 *
 * @param options.cwd - the user's project directory; default `process.cwd()`.
 * @param options.sessionDir - `--session_dir`, absolute or relative to `cwd`; default `.agent/sessions`.
 */
export function resolveSessionPaths(options: { cwd?: string; sessionDir?: string } = {}): SessionPaths {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const dir = path.resolve(cwd, options.sessionDir ?? DEFAULT_SESSION_DIR);
  return {
    cwd,
    dir,
    statePath: path.join(dir, 'latest.yaml'),
    lockPath: path.join(dir, 'latest.yaml.lock'),
    eventsPath: path.join(dir, 'events.jsonl'),
  };
}

/** Paths an archived session is moved to: `<session_id>.yaml` and `<session_id>.events.jsonl`. */
export function archivePaths(paths: SessionPaths, sessionId: string): { state: string; events: string } {
  return {
    state: resolveInside(paths.dir, `${sessionId}.yaml`),
    events: resolveInside(paths.dir, `${sessionId}.events.jsonl`),
  };
}
