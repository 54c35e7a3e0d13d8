// Runs that outlive whoever started them: output that may lose its reader, and orchestrate --detach's start in a session of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage, OrchestratorError } from '../core/errors.ts';
import { scriptArgv } from '../launcher/launch.ts';
import { resolveInside } from '../core/names.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { readState } from '../state/state-store.ts';

/**
 * Makes writes to a closed stdout or stderr harmless for the rest of the process's life.
 *
 * A detached agent outlives the shell or tool call that read its output; its next progress line
 * then fails with EPIPE, which Node raises as an `'error'` event on the stream and, with no
 * listener, as an uncaught exception that would kill the agent in the middle of its task (Node
 * ignores SIGPIPE itself, so only the event matters). After the first such error the stream is
 * left alone: later writes go nowhere.
 */
export function guardBrokenOutput(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    if (stream.listeners('error').includes(ignoreStreamError)) continue;
    stream.on('error', ignoreStreamError);
  }
}

function ignoreStreamError(): void {
  // EPIPE, EBADF, ...: nobody reads this stream any more; the state file and events carry the run.
}

/** Where a detached run's output goes: `<session dir>/<session_id>.log`. */
export function detachedLogPath(paths: SessionPaths, sessionId: string): string {
  return resolveInside(paths.dir, `${sessionId}.log`);
}

/** Options of {@link startDetachedRun}. */
export interface DetachedRunOptions {
  paths: SessionPaths;
  /** The session the child will register (passed to it as `--session_id`). */
  sessionId: string;
  /** The child's arguments: orchestrate's own argv without `--detach`, with `--session_id`. */
  args: string[];
  /** Longest wait for the session to appear in latest.yaml (ms); default 60 000 (a cold tsx start on a loaded machine). */
  waitMs?: number;
  /** Environment of the child; default this process's. */
  env?: NodeJS.ProcessEnv;
}

/** A detached run that registered its session. */
export interface DetachedRun {
  pid: number;
  logPath: string;
}

/**
 * Starts `orchestrate` again as a detached child (a session of its own via setsid: no signal sent
 * to this process's group or terminal reaches it), stdin from /dev/null, stdout and stderr
 * appended to `<session dir>/<session_id>.log`, then waits until latest.yaml holds the session
 * `sessionId` (so a poll right after finds it) and lets the child go on alone.
 *
 * @throws OrchestratorError `agent_failed` (exit 1) with the log's last lines when the child ends
 *   before registering the session, or does not register it within `waitMs`.
 */
export async function startDetachedRun(options: DetachedRunOptions): Promise<DetachedRun> {
  const { paths, sessionId } = options;
  mkdirSync(paths.dir, { recursive: true });
  const logPath = detachedLogPath(paths, sessionId);
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    // node:child_process rather than execa: the child must own its stdio outright (no pipe through this process, which exits).
    child = spawn(process.execPath, scriptArgv('orchestrate', options.args), {
      cwd: paths.cwd,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: options.env ?? process.env,
    });
  } finally {
    closeSync(fd); // The child holds its own copy.
  }
  // Set by the child's callbacks; the cast keeps TypeScript from narrowing it to null for good.
  let ended = null as string | null;
  child.on('error', (error) => (ended = errorMessage(error)));
  child.on('exit', (code, signal) => (ended = code !== null ? `exit ${code}` : `signal ${signal}`));
  const deadline = Date.now() + (options.waitMs ?? 60_000);
  for (;;) {
    const state = await readState(paths).catch(() => null);
    if (state?.session_id === sessionId) break;
    if (ended !== null || Date.now() >= deadline) {
      const how =
        ended === null
          ? `did not register session ${sessionId} within ${Math.round((options.waitMs ?? 60_000) / 1000)} s (it keeps running, pid ${child.pid})`
          : `ended before registering session ${sessionId} (${ended})`;
      throw new OrchestratorError('agent_failed', `The background run ${how}. Last lines of ${logPath}:\n${tail(logPath, 20)}`, {
        exitCode: 1,
      });
    }
    await sleep(50);
  }
  child.unref();
  return { pid: child.pid!, logPath };
}

/** The last `lines` lines of a file, or a note when it cannot be read. */
export function tail(file: string, lines: number): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return text === '' ? '(the log is empty)' : text.split('\n').slice(-lines).join('\n');
  } catch (error) {
    return `(cannot read ${path.basename(file)}: ${errorMessage(error)})`;
  }
}
