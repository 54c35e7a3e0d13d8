// Benchmark 3: the lock under 8, 32 and 64 concurrent writer processes (and 64 with lock holders paused), beside one process with and without the lock.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readEvents } from '../scripts/lib/state/events.ts';
import { TSX_LOADER } from '../scripts/lib/launcher/tsx-loader.ts';
import { resolveSessionPaths } from '../scripts/lib/state/session-paths.ts';
import { readState, updateState } from '../scripts/lib/state/state-store.ts';
import { openSession, registerTask, setStatus } from '../scripts/lib/scheduling/transitions.ts';
import { startCommand, tempProject, waitFor, type Child } from './lib/procs.ts';

const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lock-writer.ts');

/** One lock configuration. */
export interface LockRow {
  label: string;
  writers: number;
  updatesEach: number;
  /** Tasks in the state (one per writer of the concurrent run, so the state is as large). */
  tasksInState: number;
  totalUpdates: number;
  seconds: number;
  updatesPerSecond: number;
  lostUpdates: number;
  /** Lock attempts (mkdir calls) per update: 1 means never busy. */
  attemptsPerUpdate: number;
  /** Lock holders stopped (SIGSTOP) while holding the lock, and for how long each (ms); 0 when none. */
  pausedHolders: number;
  pauseMs: number;
  problems: string[];
}

/** Stops lock holders (read from the lock file's owner record) while writers run: `count` times for `ms` each. */
async function pauseHolders(lockPath: string, children: Child[], pause: { count: number; ms: number }): Promise<number> {
  const pids = new Set(children.map((c) => c.pid));
  const running = () => children.some((c) => c.proc.exitCode === null && c.proc.signalCode === null);
  let paused = 0;
  while (paused < pause.count && running()) {
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
    let pid: number | null = null;
    try {
      pid = (JSON.parse(await readFile(lockPath, 'utf8')) as { pid: number }).pid;
    } catch {
      continue; // Between two holders.
    }
    if (!pids.has(pid)) continue;
    const child = children.find((c) => c.pid === pid)!;
    child.proc.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, pause.ms));
    child.proc.kill('SIGCONT');
    paused += 1;
  }
  return paused;
}

async function runWriters(options: {
  writers: number;
  updatesEach: number;
  tasksInState: number;
  noLock: boolean;
  label: string;
  pause?: { count: number; ms: number };
}): Promise<LockRow> {
  const project = await tempProject('lock');
  const paths = resolveSessionPaths({ cwd: project.dir });
  const names = Array.from({ length: options.tasksInState }, (_, i) => `w${String(i + 1).padStart(2, '0')}`);
  try {
    await updateState(paths, (tx) => {
      const state = openSession(tx, { sessionId: 'lock-bench', maxWorkers: 1 });
      for (const name of names) {
        registerTask(tx, state, { name, goal: `lock writer ${name}`, runner: 'mock', pid: process.pid });
        setStatus(tx, state, name, 'waiting', { waiting_on: [] });
      }
    });
    const eventsBefore = (await readEvents(paths.eventsPath)).length;
    const children: Child[] = [];
    for (let i = 0; i < options.writers; i++) {
      const args = [
        '--import',
        TSX_LOADER,
        WRITER,
        paths.dir,
        names[i]!,
        String(options.updatesEach),
        ...(options.noLock ? ['--no-lock'] : []),
      ];
      children.push(startCommand(process.execPath, args, project.dir));
    }
    // Start everyone together once every process has loaded (startup is not what is measured here).
    const deadline = Date.now() + 5 * 60_000;
    while (!children.every((c) => c.stdout.includes('ready'))) {
      if (Date.now() > deadline || children.some((c) => c.proc.exitCode !== null))
        throw new Error(
          `writers did not start: ${children
            .map((c) => c.stderr)
            .join('')
            .slice(-500)}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const child of children) child.proc.stdin!.end('go\n');
    const paused = options.pause ? await pauseHolders(paths.lockPath, children, options.pause) : 0;
    const codes = await Promise.all(children.map((child) => waitFor(child, 10 * 60_000)));
    const reports = children.flatMap((child) => {
      try {
        return [JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { start: number; end: number; lockAttempts: number }];
      } catch {
        return [];
      }
    });
    if (reports.length === 0)
      throw new Error(
        `no writer finished: ${children
          .map((c) => c.stderr)
          .join('')
          .slice(-500)}`,
      );
    const seconds = (Math.max(...reports.map((r) => r.end)) - Math.min(...reports.map((r) => r.start))) / 1000;
    const state = (await readState(paths))!;
    const totalUpdates = options.writers * options.updatesEach;
    const counted = state.max_workers - 1;
    const ownCounts = names.slice(0, options.writers).map((name) => state.tasks[name]!.attempts);
    const events = (await readEvents(paths.eventsPath)).length - eventsBefore;
    const problems: string[] = [];
    const failed = codes.filter((code) => code !== 0).length;
    if (failed > 0)
      problems.push(
        `${failed} writer(s) failed: ${
          children
            .map((c) => c.stderr)
            .join('')
            .split('\n')
            .find((l) => l.startsWith('error:'))
            ?.slice(0, 200) ?? ''
        }`,
      );
    if (ownCounts.some((n) => n !== options.updatesEach))
      problems.push(`per-task counters ${Math.min(...ownCounts)}..${Math.max(...ownCounts)}, expected ${options.updatesEach}`);
    if (events !== totalUpdates) problems.push(`${events} events logged, expected ${totalUpdates}`);
    return {
      label: options.label,
      writers: options.writers,
      updatesEach: options.updatesEach,
      tasksInState: options.tasksInState,
      totalUpdates,
      seconds,
      updatesPerSecond: totalUpdates / seconds,
      lostUpdates: totalUpdates - counted,
      attemptsPerUpdate: options.noLock ? NaN : reports.reduce((sum, r) => sum + r.lockAttempts, 0) / totalUpdates,
      pausedHolders: paused,
      pauseMs: options.pause?.ms ?? 0,
      problems,
    };
  } finally {
    await project.remove();
  }
}

/**
 * For each writer count N: N processes making `updatesEach` updates at once, then the floor: one
 * process making the same N x updatesEach updates without the lock, and one with it, on a state
 * of the same size. With `pause`, one more run of the largest N during which `pause.count` lock
 * holders are stopped (SIGSTOP) for `pause.ms` each, longer than the 3 s after which the old
 * mtime-based lock robbed them: it must lose nothing (its seconds include the pauses).
 */
export async function benchLock(options: {
  writers: number[];
  updatesEach: number;
  pause?: { count: number; ms: number };
  log: (line: string) => void;
}): Promise<LockRow[]> {
  const rows: LockRow[] = [];
  if (options.pause) {
    const writers = Math.max(...options.writers);
    const { count, ms } = options.pause;
    options.log(`lock: ${writers} writers x ${options.updatesEach} updates, ${count} holders paused ${ms} ms each ...`);
    const row = await runWriters({
      writers,
      updatesEach: options.updatesEach,
      tasksInState: writers,
      noLock: false,
      label: `${writers} writers at once, holders paused (SIGSTOP) ${count} x ${(ms / 1000).toFixed(1)} s`,
      pause: options.pause,
    });
    if (row.pausedHolders < count) row.problems.push(`only ${row.pausedHolders} of ${count} pauses happened before the writers ended`);
    options.log(
      `  ${row.label}: ${row.updatesPerSecond.toFixed(0)} updates/s, ${row.lostUpdates} lost${row.problems.length ? `; ${row.problems.join('; ')}` : ''}`,
    );
    rows.push(row);
  }
  for (const writers of options.writers) {
    const total = writers * options.updatesEach;
    options.log(`lock: ${writers} writers x ${options.updatesEach} updates ...`);
    rows.push(
      await runWriters({
        writers,
        updatesEach: options.updatesEach,
        tasksInState: writers,
        noLock: false,
        label: `${writers} writers at once`,
      }),
    );
    rows.push(
      await runWriters({
        writers: 1,
        updatesEach: total,
        tasksInState: writers,
        noLock: true,
        label: `1 process, no lock (floor), ${total} updates`,
      }),
    );
    rows.push(
      await runWriters({
        writers: 1,
        updatesEach: total,
        tasksInState: writers,
        noLock: false,
        label: `1 process, with lock, ${total} updates`,
      }),
    );
    for (const row of rows.slice(-3)) {
      options.log(
        `  ${row.label}: ${row.updatesPerSecond.toFixed(0)} updates/s, ${row.lostUpdates} lost${row.problems.length ? `; ${row.problems.join('; ')}` : ''}`,
      );
    }
  }
  return rows;
}
