// The life of one background agent process: register, wait for dependencies and a worker slot, run, report.
import { OrchestratorError, errorMessage } from './errors.ts';
import type { AgentExecutor } from './agent-types.ts';
import { resultPathFor } from './result-file.ts';
import { checkDependencies, fileConflicts, runnableTasks } from './scheduling.ts';
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
/** Longest sleep between two looks at the state while waiting, when no file change wakes us (ms). */
const WAIT_POLL_MS = 1000;

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
 * The task is registered under the lock, waits (`waiting`) until its dependencies completed and a
 * worker slot is free for it (reading the state without the lock, woken by file changes), runs the
 * executor with a heartbeat, writes `<output_dir>/<task>.md` and records the outcome.
 * SIGTERM, SIGINT and SIGHUP abort the executor and mark the task failed (or leave it cancelled if
 * cancel-session got there first).
 *
 * @throws OrchestratorError before anything is written when the name conflicts or the state is corrupt.
 */
export async function runBackgroundTask(options: BackgroundTaskOptions): Promise<BackgroundTaskResult> {
  const { paths, task } = options;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const resultPath = resultPathFor(options.outputDir, task.name);

  // Fail before writing anything: a corrupt state file, or a name already in use.
  const before = await readState(paths);
  const joining = before && !options.session.newSession && (options.session.sessionId ?? before.session_id) === before.session_id;
  const early = joining ? registrationConflict(before, task.name) : null;
  if (early) throw new OrchestratorError('task_conflict', early);

  const registered = await updateState(paths, (tx) => {
    const state = openSession(tx, options.session);
    return { record: registerTask(tx, state, { ...task, pid: process.pid }), sessionId: state.session_id };
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
    for (const signal of signals) process.off(signal, onSignal);
  }
}

async function waitForTurn(
  options: BackgroundTaskOptions,
  signal: AbortSignal,
): Promise<{ status: TaskStatus; record: TaskRecord | null; state: SessionState }> {
  const { paths, task } = options;
  const depTimeoutMs = options.depTimeoutMs ?? 10 * 60_000;
  const watcher = watchState(paths);
  let missingSince: number | null = null;
  const aborted = abortPromise(signal);
  try {
    for (;;) {
      const state = await readState(paths);
      const record = state?.tasks[task.name];
      if (!state || !record || !ownsTask(record)) return { status: record?.status ?? 'cancelled', record: record ?? null, state: state! };
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
          s.tasks[task.name]!.status === 'pending'
            ? setStatus(tx, s, task.name, 'waiting', { waiting_on: waitingOn })
            : null,
        );
      }
      await Promise.race([watcher.next(WAIT_POLL_MS), aborted]);
    }
  } finally {
    watcher.close();
  }
}

function abortPromise(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

