// Who a process is: its pid plus its start time, so a pid reused by another process is never mistaken for ours.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * A process as this machine knows it: the pid alone is not an identity (pids are reused), the pid
 * plus the process's start time is. `start` is an opaque string compared for equality only:
 * on Linux the 22nd field of `/proc/<pid>/stat` (clock ticks since boot, see proc(5)); elsewhere
 * the `lstart` column of `ps` (second resolution, which cannot tell apart two processes that got
 * the same pid within one second: a reuse that needs the whole pid space to wrap in that second).
 */
export interface ProcessIdentity {
  pid: number;
  /** Start time token, or null when it could not be read (then only `pid` is known). */
  start: string | null;
  /** `os.hostname()` of the machine the process runs on. */
  host: string;
}

/** This machine's name, as recorded in identities. */
export const HOST = hostname();

/**
 * The fields of `/proc/<pid>/stat` from field 3 (the state) on, see proc(5): index 0 is the state
 * (`Z` for a zombie), 1 the parent pid, 2 the process group, 19 the start time in clock ticks since
 * boot. Field 2 (the command) is in parentheses and may hold spaces or ')', so the line is split
 * after the last ')'.
 * @throws the read error: ENOENT when the process is gone, or where there is no /proc (macOS, BSD).
 */
export function readProcStat(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Whether `pid` is a zombie (it exited and waits for its parent to collect it); false when that cannot be told. */
export function isZombie(pid: number): boolean {
  try {
    return readProcStat(pid)[0] === 'Z';
  } catch {
    return false;
  }
}

/** Whether a live process can run: `stopped` (SIGSTOP, SIGTSTP, a debugger), `running` (running or sleeping), or `unknown`. */
export type RunState = 'stopped' | 'running' | 'unknown';

/**
 * Whether a process of this machine is stopped or may run: the state letter of `/proc/<pid>/stat` (`T` stopped by a
 * signal, `t` by a tracer; see proc(5)), or the first letter of `ps -o stat=` where there is no /proc (POSIX `ps`:
 * `T` stopped). A stopped process cannot renew a lease; a running or sleeping one may only be slow.
 * @returns `unknown` when the process is gone, a zombie, or cannot be read.
 */
export function processRunState(pid: number): RunState {
  if (!Number.isInteger(pid) || pid <= 1) return 'unknown';
  let letter: string | undefined;
  try {
    letter = readProcStat(pid)[0];
  } catch {
    if (procMounted()) return 'unknown';
    try {
      const { execFileSync } = process.getBuiltinModule('node:child_process');
      letter = execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()[0];
    } catch {
      return 'unknown'; // ps exits 1 when no such process.
    }
  }
  if (letter === undefined || letter === '' || letter === 'Z' || letter === 'X') return 'unknown';
  return letter === 'T' || letter === 't' ? 'stopped' : 'running';
}

/**
 * Reads the start-time token of a live process.
 * @returns the token, or null when the process does not exist (or cannot be inspected).
 */
export function processStartTime(pid: number): string | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    return readProcStat(pid)[19] ?? null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') {
      // On Linux a missing /proc/<pid> means the process is gone, unless /proc itself is missing.
      if (procMounted()) return null;
    }
  }
  try {
    // Loaded only here (where there is no /proc): an agent start on Linux never needs child_process.
    const { execFileSync } = process.getBuiltinModule('node:child_process');
    const out = execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return out === '' ? null : out;
  } catch {
    return null; // ps exits 1 when no such process.
  }
}

let procChecked: boolean | null = null;
function procMounted(): boolean {
  if (procChecked === null) {
    try {
      readFileSync('/proc/self/stat');
      procChecked = true;
    } catch {
      procChecked = false;
    }
  }
  return procChecked;
}

/** The identity of the current process. */
export function selfIdentity(): ProcessIdentity {
  return { pid: process.pid, start: processStartTime(process.pid), host: HOST };
}

/** The identity of a process of this machine, or null when it is not running. */
export function identityOf(pid: number): ProcessIdentity | null {
  const start = processStartTime(pid);
  return start === null ? null : { pid, start, host: HOST };
}

/**
 * Whether the process recorded as `recorded` is still that same process.
 *
 * - `'alive'`: same host, the pid exists and its start time matches (or no start time was
 *   recorded and the pid exists: the best that can be said then).
 * - `'gone'`: same host and the pid does not exist, or exists with another start time (reused), or
 *   is a zombie (it exited; only its parent has not collected its status yet).
 * - `'unknown'`: recorded on another host; nothing on this machine can tell.
 *
 * Never treats pid <= 1 as ours: such a record is `'gone'` (pid 1 is init, and 0 or negative
 * values address process groups when signalled).
 */
export function checkIdentity(recorded: { pid: number; start?: string | null; host?: string | null }): 'alive' | 'gone' | 'unknown' {
  if (!Number.isInteger(recorded.pid) || recorded.pid <= 1) return 'gone';
  if (recorded.host && recorded.host !== HOST) return 'unknown';
  const now = processStartTime(recorded.pid);
  if (now === null || isZombie(recorded.pid)) return 'gone';
  if (recorded.start == null) return 'alive';
  return now === recorded.start ? 'alive' : 'gone';
}

/** How long a verified (pid, start) pair is trusted by {@link checkIdentityCached} (ms). */
export const IDENTITY_RECHECK_MS = 5000;
const verified = new Map<number, { start: string; at: number }>();

/**
 * {@link checkIdentity} for frequent liveness checks (waiting agents look at every active task
 * each second): a pid whose start time matched within the last {@link IDENTITY_RECHECK_MS} and
 * that still exists (`kill(pid, 0)`, ~2 µs instead of ~45 µs for reading /proc) counts as alive
 * (a zombie too, until the next full check).
 * A pid reused within that window is noticed up to that much later: fine for noticing dead agents,
 * never used before a signal (signals call {@link checkIdentity} itself).
 */
export function checkIdentityCached(
  recorded: { pid: number; start?: string | null; host?: string | null },
  now = Date.now(),
): 'alive' | 'gone' | 'unknown' {
  if (!Number.isInteger(recorded.pid) || recorded.pid <= 1) return 'gone';
  if (recorded.host && recorded.host !== HOST) return 'unknown';
  if (recorded.start != null) {
    const hit = verified.get(recorded.pid);
    if (hit && hit.start === recorded.start && now - hit.at < IDENTITY_RECHECK_MS && pidExists(recorded.pid)) return 'alive';
  }
  const verdict = checkIdentity(recorded);
  if (verdict === 'alive' && recorded.start != null) verified.set(recorded.pid, { start: recorded.start, at: now });
  else verified.delete(recorded.pid);
  return verdict;
}

/**
 * Whether a pid exists at all on this machine, even one this process may not inspect (another
 * user's process: EPERM). `kill(pid, 0)` sends nothing. Says nothing about whose process it is.
 */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
