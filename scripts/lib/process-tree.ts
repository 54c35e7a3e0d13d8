// Terminating a whole process tree: SIGTERM to the group and every descendant, then SIGKILL to what is left.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { isProcessAlive, signalProcessTree } from './process-util.ts';

/** How long a tree gets to exit after SIGTERM before SIGKILL (ms); execa's `forceKillAfterDelay` default. */
export const DEFAULT_KILL_GRACE_MS = 5000;

/** Parent of every live process, read from `/proc/<pid>/stat` on Linux or `ps -A -o pid=,ppid=` elsewhere. */
function parentTable(): Map<number, number> {
  const table = new Map<number, number>();
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        // Field 4 is the parent pid; the command name (field 2) is in parentheses and may hold spaces.
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        table.set(Number(entry), ppid);
      } catch {
        // The process ended while we listed it.
      }
    }
    if (table.size > 0) return table;
  } catch {
    // No /proc (macOS, BSD): ask ps.
  }
  try {
    for (const line of execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' }).split('\n')) {
      const [pid, ppid] = line.trim().split(/\s+/).map(Number);
      if (pid && ppid !== undefined) table.set(pid, ppid);
    }
  } catch {
    // Without ps we can still signal the process group.
  }
  return table;
}

/**
 * Every live descendant of `pid` (children, grandchildren, ...), found by walking the parent table.
 * @returns pids, parents before their children; [] when the process has none or cannot be inspected.
 */
export function listDescendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const [child, parent] of parentTable()) children.set(parent, [...(children.get(parent) ?? []), child]);
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      if (!found.includes(child)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/** Alive and not a zombie (a zombie has exited and only waits for its parent to collect its status). */
export function isProcessRunning(pid: number): boolean {
  if (!isProcessAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** True while any process (zombies included) is in the process group `pgid`. */
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Terminates `pid` and everything it started: SIGTERM to its process group (when `pid` leads one, as
 * a `detached` child does) and to each descendant found, then, for whatever still lives after
 * `graceMs`, SIGKILL. Works after `pid` itself exited too, as long as its group has members. Descendants are listed before the first signal, so children that the exit of
 * their parent re-parents to init are still reached.
 *
 * @param pid - the tree's root (e.g. the `claude` process).
 * @param graceMs - wait between SIGTERM and SIGKILL (ms). @default {@link DEFAULT_KILL_GRACE_MS}
 * @returns once every process of the tree is gone, or right after the SIGKILL.
 */
export async function terminateProcessTree(pid: number, graceMs = DEFAULT_KILL_GRACE_MS): Promise<void> {
  const tree = [pid, ...listDescendants(pid)];
  signalProcessTree(pid, 'SIGTERM');
  signalAll(tree, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (tree.some(isProcessRunning) || groupExists(pid))) await delay(50);
  const survivors = [...tree, ...listDescendants(pid)].filter(isProcessRunning);
  if (survivors.length === 0 && !groupExists(pid)) return;
  signalProcessTree(pid, 'SIGKILL');
  signalAll(survivors, 'SIGKILL');
}
