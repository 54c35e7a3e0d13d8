// The life of one background agent process: register, wait for dependencies and a worker slot, run, report.
import { OrchestratorError, errorMessage } from './errors.ts';
import type { AgentExecutor } from './agent-types.ts';
import { openEventReader, type EventReader } from './event-reader.ts';
import type { SessionEvent } from './events.ts';
import { checkOutputDir, resultPathFor } from './result-file.ts';
import { busySlots, checkDependencies, compareForSlot, fileConflicts, runnableTasks, taskOf, type DependencyVerdict } from './scheduling.ts';
import type { SessionState, TaskRecord, TaskStatus } from './schema.ts';
import { executeClaimedTask, ownsTask, transitionOwnTask } from './task-execution.ts';
import type { SessionPaths } from './session-paths.ts';
import { readState, updateState } from './state-store.ts';
import { watchState } from './state-watcher.ts';
import {
  deathReason,
  openSession,
  reapDeadTasks,
  registerTask,
  registrationConflict,
  setStatus,
  type SessionChoice,
  type TaskRegistration,
} from './transitions.ts';

/** Default wait for a dependency that is not registered yet (ms): 10 minutes. */
export const DEFAULT_DEP_TIMEOUT_MS = 10 * 60_000;
/** How often a waiting agent checks, without reading the state, whether a task it knows of died (ms). */
const WAIT_POLL_MS = 1000;
/** A waiting agent reads the state at least every this many polls, whatever the events said. */
const FULL_LOOK_EVERY = 5;

/** Options of {@link runBackgroundTask}. */
export interface BackgroundTaskOptions {
  paths: SessionPaths;
  session: SessionChoice;
  task: Omit<TaskRegistration, 'pid'>;
  /** Absolute result folder. */
  outputDir: string;
  /** The directory the agent works in. */
  agentCwd: string;
  /** How long to wait for an unregistered dependency to appear (ms). */
  depTimeoutMs?: number;
  executor: AgentExecutor;
  /** Progress lines for the person who started the process (stdout by default). */
  log?: (line: string) => void;
}

/** How a background task ended. */
export interface BackgroundTaskResult {
  status: TaskStatus;
  record: TaskRecord | null;
  sessionId: string;
}

/**
 * Runs one task in this process, as `spawn-agent` and `spawn-agent-mock` do.
 *
 * The output folder is checked first (a file, or an unwritable place, is a usage error before
 * anything is written). The task is registered under the lock with this process's identity (pid,
 * start time, host), waits (`waiting`) until its dependencies completed and a worker slot is free
 * for it (reading the state without the lock, woken by file changes), runs the executor with a
 * heartbeat, writes `<output_dir>/<task>.md` and records the outcome. While it waits it renews
 * `heartbeat_at` every `lease_ms / 3` (one locked write per period), so a stopped or hung waiting
 * agent is marked dead after the lease and the queue passes over it.
 * SIGTERM, SIGINT and SIGHUP abort the executor and mark the task failed (or leave it cancelled if
 * cancel-session got there first).
 *
 * @throws OrchestratorError before anything is written when the name conflicts or the state is corrupt.
 */
export async function runBackgroundTask(options: BackgroundTaskOptions): Promise<BackgroundTaskResult> {
  const { paths, task } = options;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const resultPath = resultPathFor(options.outputDir, task.name);

  // Fail before writing anything: an output folder that cannot be one, a corrupt state file, or a name already in use.
  checkOutputDir(options.outputDir);
  const before = await readState(paths);
  const joining = before && !options.session.newSession && (options.session.sessionId ?? before.session_id) === before.session_id;
  const early = joining ? registrationConflict(before, task.name) : null;
  if (early) throw new OrchestratorError('task_conflict', early);

  const registered = await updateState(paths, (tx) => {
    const state = openSession(tx, options.session);
    return { record: registerTask(tx, state, { ...task, pid: process.pid, waitingLease: true }), sessionId: state.session_id };
  });
  const { sessionId } = registered;
  log(`[${registered.record.agent}] ${task.name}: registered in session ${sessionId}`);

  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => controller.abort(new Error(`agent process terminated by ${signal}`));
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);
  try {
    const turn = await waitForTurn(options, controller.signal);
    if (turn.status !== 'running') {
      log(`[${registered.record.agent}] ${task.name}: ${turn.status}${turn.record?.error ? ` (${turn.record.error})` : ''}`);
      return { status: turn.status, record: turn.record, sessionId };
    }
    log(`[${registered.record.agent}] ${task.name}: running`);
    const finished = await executeClaimedTask({
      paths: options.paths,
      name: task.name,
      state: turn.state,
      resultPath,
      agentCwd: options.agentCwd,
      executor: options.executor,
      controller,
    });
    log(`[${registered.record.agent}] ${task.name}: ${finished.status}${finished.record?.error ? ` (${finished.record.error})` : ''}`);
    return { ...finished, sessionId };
  } finally {
    // The task has ended; a SIGTERM still on its way (cancel-session signals right after writing the
    // cancel this process has just seen) must not turn the exit code into "killed by a signal".
    // Ignored for a moment (the process exits by then), without keeping the process alive.
    const late = () => {};
    for (const signal of signals) {
      process.off(signal, onSignal);
      process.on(signal, late);
    }
    setTimeout(() => {
      for (const signal of signals) process.off(signal, late);
    }, LATE_SIGNAL_MS).unref();
  }
}

/** How long an agent whose task has ended ignores a termination signal that was already on its way (ms). */
const LATE_SIGNAL_MS = 2000;

async function waitForTurn(
  options: BackgroundTaskOptions,
  signal: AbortSignal,
): Promise<{ status: TaskStatus; record: TaskRecord | null; state: SessionState }> {
  const { paths, task } = options;
  const depTimeoutMs = options.depTimeoutMs ?? 10 * 60_000;
  // Woken by appended events only (each change's event follows it); the poll timer covers the rest.
  const watcher = watchState(paths, { state: false });
  const log = openEventReader(paths.eventsPath);
  let missingSince: number | null = null;
  // The lease covers waiting too: renew heartbeat_at every lease / 3 (one locked write per period,
  // not per wake-up), so a stopped agent loses its place in the queue after the lease.
  let lastBeat = Date.now();
  let beatEveryMs = 10_000;
  const heartbeatDue = () => Date.now() - lastBeat >= beatEveryMs;
  const aborted = abortPromise(signal);
  try {
    await log.read(); // The events so far are in the state read next; only later ones can wake us.
    for (;;) {
      const state = await readState(paths);
      const record = state ? taskOf(state, task.name) : undefined;
      if (!state || !record || !ownsTask(record)) return { status: record?.status ?? 'cancelled', record: record ?? null, state: state! };
      beatEveryMs = Math.max(250, Math.floor(state.lease_ms / 3));
      if (heartbeatDue()) {
        lastBeat = Date.now();
        await transitionOwnTask(paths, task.name, (tx, s) => {
          const own = taskOf(s, task.name)!;
          if (own.status === 'pending' || own.status === 'waiting') own.heartbeat_at = tx.now.toISOString();
          return own;
        });
      }
      if (signal.aborted) {
        const reason = errorMessage(signal.reason);
        const failed = await transitionOwnTask(paths, task.name, (tx, s) => setStatus(tx, s, task.name, 'failed', { reason }));
        return { status: 'failed', record: failed, state };
      }
      const now = new Date();
      if (Object.values(state.tasks).some((other) => deathReason(state, other, now) !== null)) {
        await updateState(paths, (tx) => tx.state && reapDeadTasks(tx, tx.state));
        continue;
      }
      const verdict = checkDependencies(state, task.name);
      if (verdict.kind === 'dependency_failed') {
        const reason = `dependency ${verdict.dependency} ${verdict.status === 'cancelled' ? 'was cancelled' : verdict.status}`;
        const skipped = await transitionOwnTask(paths, task.name, (tx, s) => {
          const again = checkDependencies(s, task.name);
          return again.kind === 'dependency_failed' ? setStatus(tx, s, task.name, 'skipped', { reason }) : null;
        });
        if (skipped) return { status: 'skipped', record: skipped, state };
        continue;
      }
      if (verdict.kind === 'missing') {
        missingSince ??= Date.now();
        if (Date.now() - missingSince > depTimeoutMs) {
          const reason = `dependency ${verdict.names.join(', ')} never appeared in the session (waited ${Math.round(depTimeoutMs / 1000)} s)`;
          const failed = await transitionOwnTask(paths, task.name, (tx, s) => setStatus(tx, s, task.name, 'failed', { reason }));
          return { status: 'failed', record: failed, state };
        }
      } else {
        missingSince = null;
      }
      const mine = new Set([task.name]);
      if (verdict.kind === 'ready' && runnableTasks(state, mine).length === 1) {
        const claimed = await transitionOwnTask(paths, task.name, (tx, s) =>
          runnableTasks(s, mine).length === 1 ? setStatus(tx, s, task.name, 'running') : null,
        );
        if (claimed) return { status: 'running', record: claimed, state: (await readState(paths))! };
        continue;
      }
      if (record.status === 'pending') {
        const waitingOn = verdict.kind === 'blocked' ? verdict.on : verdict.kind === 'missing' ? verdict.names : fileConflicts(state, task.name);
        await transitionOwnTask(paths, task.name, (tx, s) =>
          taskOf(s, task.name)!.status === 'pending'
            ? setStatus(tx, s, task.name, 'waiting', { waiting_on: waitingOn })
            : null,
        );
      }
      const needed = verdict.kind === 'ready' ? releasesNeeded(state, task.name) : 1;
      const since = missingSince;
      const mustLook = () => {
        const at = new Date();
        return (
          heartbeatDue() ||
          Object.values(state.tasks).some((other) => deathReason(state, other, at) !== null) ||
          (since !== null && Date.now() - since > depTimeoutMs)
        );
      };
      await nextRelevantChange(watcher, log, (event) => classifyEvent(event, task.name, verdict, state), needed, mustLook, aborted, signal);
    }
  } finally {
    watcher.close();
    await log.close();
  }
}

/** Events that never change what a waiting task may do, unless they concern it or its dependencies. */
const NEVER_UNBLOCKS: ReadonlySet<string> = new Set(['waiting', 'started', 'retrying', 'registered']);
/** Events that end a task: each frees a worker slot, or removes a task from the queue. */
const ENDS_A_TASK: ReadonlySet<string> = new Set(['completed', 'failed', 'skipped', 'cancelled']);
const KNOWN_EVENTS: ReadonlySet<string> = new Set([
  'session_started', 'session_archived', 'registered', 'waiting', 'started', 'retrying',
  'completed', 'failed', 'skipped', 'cancelled', 'replaced',
]);

/** What an event means to a waiting task: look at the state now, count it as one task ended, or ignore it. */
export type Wakeup = 'now' | 'ended' | 'ignore';

/**
 * Tells what an event may change for a waiting task. Every state change wakes every waiting agent;
 * re-reading the state for each, in each of dozens of processes, cost more CPU than the agents'
 * work (see bench/). An event about the task itself or one of its dependencies, a session event
 * and an event of an unknown kind count at once; a task blocked on its dependencies ignores
 * everything else; a ready task waiting for a slot counts the tasks that end (see
 * {@link releasesNeeded}) and ignores the rest: waiting, started and retrying change neither the
 * free slots nor its place among the tasks that may take one, and a registration can only put a
 * task ahead of it (or raise max_workers, which the next full look, within
 * WAIT_POLL_MS x FULL_LOOK_EVERY, picks up).
 */
export function classifyEvent(event: SessionEvent, name: string, verdict: DependencyVerdict, state: SessionState): Wakeup {
  if (event.task === name || !KNOWN_EVENTS.has(event.type) || event.type.startsWith('session_')) return 'now';
  if (event.task !== undefined && taskOf(state, name)?.depends_on.includes(event.task)) return 'now';
  if (verdict.kind === 'blocked' || verdict.kind === 'missing') return 'ignore';
  if (ENDS_A_TASK.has(event.type)) return 'ended';
  return NEVER_UNBLOCKS.has(event.type) ? 'ignore' : 'now';
}

/**
 * How many tasks must end before a ready task can take a slot: one more than its place in the
 * queue (the ready tasks in slot order, as runnableTasks sorts them) minus the free slots, at
 * least 1. Each ended task frees one slot or removes one task from the queue, never both, and
 * nothing else brings the task closer, so it cannot be its turn sooner; the state is read again
 * then (or at the poll timer) and the count is taken afresh.
 */
export function releasesNeeded(state: SessionState, name: string): number {
  const free = state.max_workers - busySlots(state);
  const queue = Object.entries(state.tasks)
    .filter(([, task]) => task.status === 'pending' || task.status === 'waiting')
    .filter(([other]) => checkDependencies(state, other).kind === 'ready' && fileConflicts(state, other).length === 0)
    .sort(([, a], [, b]) => compareForSlot(a, b))
    .map(([other]) => other);
  const place = queue.indexOf(name);
  return place === -1 ? 1 : Math.max(1, place - free + 1);
}

/**
 * Waits until an event classified `now` is appended to the log, `needed` tasks have ended, the log
 * is rotated or the signal aborted; every {@link WAIT_POLL_MS}, until `mustLook()` (a task of the
 * last state read has died, or a dependency timed out); and at most {@link FULL_LOOK_EVERY} polls.
 * Then the caller reads the state again.
 */
async function nextRelevantChange(
  watcher: ReturnType<typeof watchState>,
  log: EventReader,
  classify: (event: SessionEvent) => Wakeup,
  needed: number,
  mustLook: () => boolean,
  aborted: Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  let deadline = Date.now() + WAIT_POLL_MS;
  let polls = 0;
  let ended = 0;
  for (;;) {
    if (signal.aborted) return;
    const left = deadline - Date.now();
    if (left <= 0) {
      if (++polls >= FULL_LOOK_EVERY || mustLook()) return;
      deadline = Date.now() + WAIT_POLL_MS;
      continue;
    }
    await Promise.race([watcher.next(left), aborted]);
    if (signal.aborted) return;
    const batch = await log.read().catch(() => ({ events: [], rotated: true }));
    if (batch.rotated) return;
    for (const event of batch.events) {
      const kind = classify(event);
      if (kind === 'now' || (kind === 'ended' && ++ended >= needed)) return;
    }
  }
}

function abortPromise(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

