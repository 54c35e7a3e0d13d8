// The one way to stop a process tree: SIGTERM, then SIGKILL after a grace period, each signal sent only to a process verified to be ours.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { HOST, isZombie, processStartTime, readProcStat } from './identity.ts';
import { isProcessAlive, isSignallablePid, processGroupOf, signalRefusal, type RecordedIdentity } from './signals.ts';

/** How long a tree gets to exit after SIGTERM before SIGKILL (ms); execa's `forceKillAfterDelay` default. */
export const DEFAULT_KILL_GRACE_MS = 5000;

/** One row of the process table. `start` is the same token as `processStartTime` gives. */
interface ProcessRow {
  ppid: number;
  pgid: number;
  /** Session id, when known (a process started `detached` leads a session of its own: sid === pid). */
  sid: number | null;
  start: string;
}

/** Every live process: `/proc/<pid>/stat` fields 4, 5, 6 and 22 on Linux, else `ps -A -o pid=,ppid=,pgid=,sess=,lstart=`. */
function processTable(): Map<number, ProcessRow> {
  const table = new Map<number, ProcessRow>();
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const rest = readProcStat(entry);
        table.set(Number(entry), { ppid: Number(rest[1]), pgid: Number(rest[2]), sid: Number(rest[3]), start: rest[19]! });
      } catch {
        // The process ended while we listed it.
      }
    }
    if (table.size > 0) return table;
  } catch {
    // No /proc (macOS, BSD): ask ps.
  }
  // `sess` is the session id on Linux and macOS; a ps that does not know it is asked without it.
  for (const withSession of [true, false]) {
    try {
      const columns = withSession ? 'pid=,ppid=,pgid=,sess=,lstart=' : 'pid=,ppid=,pgid=,lstart=';
      const pattern = withSession ? /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.+?)\s*$/ : /^\s*(\d+)\s+(\d+)\s+(\d+)\s+()(.+?)\s*$/;
      const output = execFileSync('ps', ['-A', '-o', columns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      for (const line of output.split('\n')) {
        const match = pattern.exec(line);
        if (match) {
          const sid = match[4] ? Number(match[4]) : null;
          table.set(Number(match[1]), { ppid: Number(match[2]), pgid: Number(match[3]), sid, start: match[5]! });
        }
      }
      // A ps whose `sess` is not a number (a kernel address on some BSDs) matched nothing: ask without it.
      if (table.size > 0) return table;
    } catch {
      // Without ps only the recorded root can be reached.
    }
  }
  return table;
}

/**
 * Every live descendant of `pid` (children, grandchildren, ...), found by walking the parent table.
 * @returns pids, parents before their children; [] when the process has none or cannot be inspected.
 */
export function listDescendants(pid: number): number[] {
  return descendantsIn(processTable(), [pid]).map((row) => row.pid);
}

/**
 * The descendants of `roots` in `table`. With `spareSessions`, a descendant that leads a session of
 * its own (started `detached`: an agent launched for another task) is left out, with its subtree.
 */
function descendantsIn(table: Map<number, ProcessRow>, roots: number[], spareSessions = false): Array<{ pid: number; start: string }> {
  const children = new Map<number, number[]>();
  for (const [child, row] of table) children.set(row.ppid, [...(children.get(row.ppid) ?? []), child]);
  const found: Array<{ pid: number; start: string }> = [];
  const seen = new Set(roots);
  const queue = [...roots];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      if (seen.has(child)) continue;
      seen.add(child);
      if (spareSessions && table.get(child)!.sid === child) continue;
      found.push({ pid: child, start: table.get(child)!.start });
      queue.push(child);
    }
  }
  return found;
}

/** Alive and not a zombie (a zombie has exited and only waits for its parent to collect its status). */
export function isProcessRunning(pid: number): boolean {
  return isProcessAlive(pid) && !isZombie(pid);
}

/** True while any process (zombies included) is in the process group `pgid`. */
function groupExists(pgid: number): boolean {
  if (!isSignallablePid(pgid)) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Options of {@link terminateProcessTree}. */
export interface TerminateOptions {
  /** Wait between SIGTERM and SIGKILL (ms). @default {@link DEFAULT_KILL_GRACE_MS} */
  graceMs?: number;
  /**
   * The caller started the root itself, `detached` (so the root leads its own group), and keeps
   * that group's id in use: its group may be signalled even after the root exited, while the group
   * still has members (Linux does not hand out a pid that is still some group's id). Default false:
   * the group is signalled only while the root is verifiably the recorded process and its leader.
   */
  ownGroup?: boolean;
  /**
   * Processes of the tree listed earlier by {@link snapshotTree} (pid to start token), e.g. before
   * the caller did something that may make the root exit: they are signalled too, each after its
   * identity is checked. Lets the first SIGTERM go out without listing the process table again.
   */
  members?: ReadonlyMap<number, string>;
  /**
   * Leave out every descendant that leads a session of its own, with its subtree: the agents the
   * root launched for other tasks (started `detached`, see agent-command.ts `startAgent`) are theirs,
   * not the root's, though they stay its children while it lives. For cancel-session, which stops a
   * task's owner and, as roots of their own, the processes it runs as (`agent_child`). Default false.
   */
  spareSessions?: boolean;
}

/**
 * Lists the processes of `root`'s tree now (the root, its descendants and, when the root is
 * verifiably ours and leads its own group, the group's members), with their start tokens, for a
 * later {@link terminateProcessTree} (`members`). Empty when the root is not verifiably ours.
 */
export function snapshotTree(root: RecordedIdentity, options: { spareSessions?: boolean } = {}): Map<number, string> {
  const members = new Map<number, string>();
  if (root.start == null || signalRefusal(root) !== null) return members;
  const table = processTable();
  members.set(root.pid, root.start);
  if (table.get(root.pid)?.pgid === root.pid)
    for (const [other, row] of table) if (row.pgid === root.pid && other !== process.pid) members.set(other, row.start);
  for (const child of descendantsIn(table, [root.pid], options.spareSessions))
    if (child.pid !== process.pid) members.set(child.pid, child.start);
  return members;
}

/** What {@link terminateProcessTree} did. */
export interface TerminateResult {
  /** Why nothing was signalled (pid <= 1, no start time, another host), or null. */
  refused: string | null;
  /** The root was already gone (exited, or its pid belongs to another process now). */
  gone: boolean;
  /** Processes (group members and descendants) sent SIGTERM. */
  terminated: number;
  /** Processes still running after the grace period and sent SIGKILL. */
  killed: number;
}

/**
 * Stops `root` and everything it started: the one way the skill stops processes (cancel-session,
 * timeouts of claude runs, ...). Every signal goes to a process checked just before to be the one
 * recorded (pid plus start time, this host; see process/identity.ts), or to the root's process
 * group only while the root is verifiably ours and leads that group (pgid === pid) — or, with
 * `ownGroup`, to a group the caller created itself. pid <= 1, pid 0 and negative pids are never
 * signalled, nor any group that is not the root's own.
 *
 * Order: list the root's descendants and group members (with start times), SIGTERM the group and
 * each of them; wait up to `graceMs` for all to exit; list again (children started meanwhile), and
 * SIGKILL whatever still runs. Descendants are listed before the first signal, so children the
 * exit of their parent re-parents to init are still reached.
 *
 * @param root - the tree's root as recorded (pid, start, host), or the pid of a detached child the
 *   caller started and has not reaped (its identity is read now; implies `ownGroup`).
 * @param options - grace period and group ownership; a number is taken as `graceMs`.
 * @returns what was signalled; never throws for a process that is gone.
 */
export async function terminateProcessTree(
  root: RecordedIdentity | number,
  options: TerminateOptions | number = {},
): Promise<TerminateResult> {
  const opts: TerminateOptions = typeof options === 'number' ? { graceMs: options } : options;
  const graceMs = opts.graceMs ?? DEFAULT_KILL_GRACE_MS;
  const ownGroup = typeof root === 'number' || Boolean(opts.ownGroup);
  const recorded: RecordedIdentity =
    typeof root === 'number' ? { pid: root, start: isSignallablePid(root) ? processStartTime(root) : null, host: HOST } : root;
  const result: TerminateResult = { refused: null, gone: false, terminated: 0, killed: 0 };
  if (!isSignallablePid(recorded.pid))
    return { ...result, refused: `pid ${String(recorded.pid)} can never be an agent (pid <= 1 or not a whole number)` };
  if (recorded.host && recorded.host !== HOST) return { ...result, refused: `pid ${recorded.pid} runs on another host (${recorded.host})` };
  if (!ownGroup && recorded.start == null) return { ...result, refused: signalRefusal(recorded) };

  const pid = recorded.pid;
  const rootOurs = () => recorded.start != null && signalRefusal(recorded) === null;
  // The group is the root's own while the root (verified) leads it, or when the caller made it.
  const groupOurs = () => (rootOurs() && processGroupOf(pid) === pid) || (ownGroup && groupExists(pid));
  result.gone = !rootOurs();
  const snapshotLives = () => [...(opts.members ?? [])].some(([member, start]) => processStartTime(member) === start);
  if (result.gone && !(ownGroup && groupExists(pid)) && !snapshotLives()) return result;

  const members = new Map<number, string>(opts.members ?? []);
  const collect = () => {
    const table = processTable();
    const known = [...members.keys()].filter((member) => table.get(member)?.start === members.get(member));
    if (rootOurs()) known.push(pid);
    if (rootOurs() && recorded.start) members.set(pid, recorded.start);
    if (groupOurs()) for (const [other, row] of table) if (row.pgid === pid && other !== process.pid) members.set(other, row.start);
    for (const child of descendantsIn(table, known, opts.spareSessions)) if (child.pid !== process.pid) members.set(child.pid, child.start);
  };
  const running = () => [...members].filter(([member, start]) => processStartTime(member) === start && isProcessRunning(member));
  // Each process gets each signal once (a second SIGTERM could land after its handler was removed).
  const done = new Map<NodeJS.Signals, Set<number>>();
  const send = (signal: NodeJS.Signals): number => {
    let sent = 0;
    const already = done.get(signal) ?? new Set<number>();
    done.set(signal, already);
    if (!already.has(-pid) && groupOurs()) {
      already.add(-pid);
      try {
        process.kill(-pid, signal);
        for (const member of members.keys()) if (processGroupOf(member) === pid) already.add(member);
      } catch {
        // The group emptied in between.
      }
    }
    for (const [member, start] of running()) {
      if (already.has(member) || !isSignallablePid(member) || processStartTime(member) !== start) continue;
      already.add(member);
      try {
        process.kill(member, signal);
        sent += 1;
      } catch {
        // Exited in between.
      }
    }
    return sent;
  };

  // With a snapshot, signal first and list afterwards (the root may be exiting already).
  if (!opts.members) collect();
  result.terminated = send('SIGTERM');
  if (opts.members) collect();
  if (opts.members) result.terminated += send('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (running().length > 0 || groupOurs())) await delay(50);
  collect();
  if (running().length === 0 && !groupOurs()) return result;
  result.killed = send('SIGKILL');
  return result;
}
