// Process liveness and identity-checked signalling: the only place (with process/tree.ts) that calls process.kill with a signal.
import { execFileSync } from 'node:child_process';
import { checkIdentity, pidExists, readProcStat, type ProcessIdentity } from './identity.ts';

/** A process as recorded in the state: pid, start time token and host (both may be missing in old files). */
export type RecordedIdentity = Pick<ProcessIdentity, 'pid'> & { start?: string | null; host?: string | null };

/**
 * Tells whether a process exists on this machine (any process: it says nothing about whose it is;
 * use `checkIdentity` for that). `kill(pid, 0)` sends nothing; EPERM means the process exists but
 * belongs to someone else. pid <= 0 is never a process (0 and negative values address groups).
 */
export function isProcessAlive(pid: number | null | undefined): boolean {
  return typeof pid === 'number' && Number.isInteger(pid) && pid > 0 && pidExists(pid);
}

/**
 * Whether `pid` may ever be signalled by this skill: a whole number above 1. pid 1 is init, 0 is
 * the caller's own process group, and negative numbers address process groups (-1: every process
 * the user may signal), so none of them can be an agent (kill(2)).
 */
export function isSignallablePid(pid: unknown): pid is number {
  return typeof pid === 'number' && Number.isInteger(pid) && pid > 1;
}

/**
 * The process group of a live process: field 5 of `/proc/<pid>/stat` on Linux (proc(5)), else
 * `ps -o pgid= -p <pid>`.
 * @returns the group id, or null when the process is gone or cannot be inspected.
 */
export function processGroupOf(pid: number): number | null {
  if (!isSignallablePid(pid)) return null;
  try {
    const pgid = Number(readProcStat(pid)[2]);
    return Number.isInteger(pgid) ? pgid : null;
  } catch {
    // No /proc entry: gone, or not Linux; ask ps.
  }
  try {
    const out = execFileSync('ps', ['-o', 'pgid=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const pgid = Number(out);
    return out !== '' && Number.isInteger(pgid) ? pgid : null;
  } catch {
    return null;
  }
}

/** Why a recorded process may not be signalled, or null when it is verifiably the one recorded and alive. */
export function signalRefusal(recorded: RecordedIdentity): string | null {
  if (!isSignallablePid(recorded.pid)) return `pid ${String(recorded.pid)} can never be an agent (pid <= 1 or not a whole number)`;
  if (recorded.start == null)
    return `pid ${recorded.pid} has no recorded start time, so it cannot be told apart from another process that reused the pid`;
  const verdict = checkIdentity(recorded);
  if (verdict === 'unknown') return `pid ${recorded.pid} runs on another host (${recorded.host})`;
  if (verdict === 'gone')
    return `pid ${recorded.pid} is no longer the recorded process (it exited; the pid may now belong to another process)`;
  return null;
}

/**
 * Sends `signal` to one process after checking, just before, that it is still the recorded one
 * (pid plus start time, same host). The check and the kill are two system calls: the pid would
 * have to be freed and handed to a new process between them, a window of microseconds.
 * @returns whether the signal was sent.
 */
export function signalIdentified(recorded: RecordedIdentity, signal: NodeJS.Signals): boolean {
  if (signalRefusal(recorded) !== null) return false;
  try {
    process.kill(recorded.pid, signal);
    return true;
  } catch {
    return false; // Exited in between.
  }
}

/**
 * Synchronous last resort, e.g. in an `exit` handler, for a child this process started `detached`
 * (so it leads a group of its own): sends `signal` to that group while it exists — the group id
 * stays in use, and so cannot be handed to another process, as long as the group has members —
 * and to the child itself when it is verifiably still the recorded process. Refuses pid <= 1.
 * The normal way is `terminateProcessTree` (process/tree.ts).
 * @param spawned - the child's identity, read right after it started.
 * @returns whether any signal was delivered.
 */
export function signalOwnChild(spawned: RecordedIdentity, signal: NodeJS.Signals): boolean {
  if (!isSignallablePid(spawned.pid)) return false;
  let sent = false;
  try {
    process.kill(-spawned.pid, signal);
    sent = true;
  } catch {
    // No such group (the child did not lead one, or the group is empty).
  }
  return signalIdentified(spawned, signal) || sent;
}
