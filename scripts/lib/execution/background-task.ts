// The life of one background task: register it and, in the same transaction, take the session's scheduling
// decision: run it in place if it may start, else leave it queued (no process of its own) and exit.
import { validateAgentLaunch, type AgentLaunch } from './agent-command.ts';
import { plainTaskLine, type BackgroundTaskOptions } from './background-options.ts';
import { errorMessage, OrchestratorError } from '../core/errors.ts';
import { checkOutputDir, resultPathFor } from './result-file.ts';
import { taskOf } from '../scheduling/scheduling.ts';
import { parseStateJson, TERMINAL_STATUSES, type SessionState, type TaskRecord, type TaskStatus } from '../state/model.ts';
import { executeClaimedTask, transitionOwnTask } from './task-execution.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { readState, updateState } from '../state/state-store.ts';
import { watchState } from '../state/state-watcher.ts';
import { applyDecision, launchAdoptions, passNeeded, schedulePass } from './task-queue.ts';
import { openSession, ownerFields, registerTask, registrationConflict, setStatus } from '../scheduling/transitions.ts';

export { DEFAULT_DEP_TIMEOUT_MS, type BackgroundTaskOptions } from './background-options.ts';

/**
 * How long a registration lets other waiters for the state lock go first after a release (ms,
 * see LockOptions.yieldMs): a few times the 4 ms jitter of the others, short next to a registration's
 * own work. Measured with 100 spawn-agent-mock starts at once (bench/RESULTS.md, "Start-up cost").
 */
export const REGISTRATION_YIELD_MS = 12;

/** The progress line of a task's status: the injected printer ({@link BackgroundTaskOptions.describe}), else `<name> <status>`. */
function describeOf(options: BackgroundTaskOptions): (state: SessionState, name: string) => string {
  return options.describe ?? plainTaskLine;
}

/** How often `--wait` looks at the state when no change wakes it (ms). */
const WAIT_POLL_MS = 1000;

/** How a background task ended, or that it is queued. */
export interface BackgroundTaskResult {
  /** The task's status when this process stopped following it: `waiting` when it was queued (and not `wait`). */
  status: TaskStatus;
  record: TaskRecord | null;
  sessionId: string;
  /** The task was left queued for another process to start, or (`detach`) handed to a process of its own: this one returns. */
  queued: boolean;
}

/**
 * Runs one task as `spawn-agent` and `spawn-agent-mock` do.
 *
 * The output folder is checked first (a file, or an unwritable place, is a usage error before
 * anything is written). Under the lock, in one transaction, the task is registered with this
 * process's identity (pid, start time, host) and the session's scheduling decision is taken and
 * recorded (task-queue.ts `applyDecision`): if the task may start now, this process claims it and
 * runs it in place (heartbeat, result file, outcome), then takes the decision again so the next
 * queued tasks start. Otherwise the task is left `waiting` with no owner (no pid, no lease), a
 * line says it is queued and who will start it, and this process returns at once: whoever frees
 * a slot or changes the picture starts its agent later (a new process of the same launch, with
 * `adoptToken`). With `wait`, a queued task is followed by reading the state until it ends.
 * SIGTERM, SIGINT and SIGHUP abort the executor and mark the task failed (or leave it cancelled if
 * cancel-session got there first).
 *
 * @throws OrchestratorError before anything is written when the name conflicts or the state is corrupt.
 */
export async function runBackgroundTask(options: BackgroundTaskOptions): Promise<BackgroundTaskResult> {
  const { paths, task } = options;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  checkOutputDir(options.outputDir);
  if (options.adoptToken !== undefined) return adoptTask(options, options.adoptToken, log);

  // Fail before writing anything: a corrupt state file, or a name already in use.
  const before = await readState(paths);
  const joining = before && !options.session.newSession && (options.session.sessionId ?? before.session_id) === before.session_id;
  const early = joining ? registrationConflict(before, task.name) : null;
  if (early) throw new OrchestratorError('task_conflict', early);

  const registered = await updateState(
    paths,
    (tx) => {
      const state = openSession(tx, options.session);
      registerTask(tx, state, { ...task, pid: options.detach ? null : process.pid, depTimeoutMs: options.depTimeoutMs });
      const applied = applyDecision(tx, state, process.pid, paths.statePath);
      const own = taskOf(state, task.name)!;
      const queued = own.status === 'pending' || own.status === 'waiting';
      if (queued || (options.detach && own.status === 'running')) refuseUnreplayable(task, paths.statePath);
      if (queued) {
        // Queued: nobody owns it until the process that starts it; no pid, so no lease to renew.
        Object.assign(own, ownerFields(null), { heartbeat_at: null });
      }
      return { adoptions: applied.adoptions, state: parseStateJson(JSON.stringify(state)) };
    },
    // Agents recording an end (and handing their slot on) go first: with dozens of starts at once,
    // a registration that found the lock busy would otherwise hold up the tasks that run.
    { yieldMs: REGISTRATION_YIELD_MS },
  );
  await launchAdoptions(paths, registered.adoptions);
  const { state } = registered;
  const sessionId = state.session_id;
  const record = taskOf(state, task.name)!;
  if (record.status === 'running' && !options.detach) return runClaimed(options, state, log);
  log(describeOf(options)(state, task.name));
  if (options.detach && record.status === 'running') {
    log(`${task.name} runs in the background (${record.agent}, session ${sessionId}), in a process of its own.`);
    return { status: record.status, record, sessionId, queued: true };
  }
  if (TERMINAL_STATUSES.has(record.status)) return { status: record.status, record, sessionId, queued: false };
  log(
    `${task.name} is queued (${record.agent}, session ${sessionId}): no process waits for it; the agent that frees a slot, ` +
      'a running agent, poll-session or orchestrate starts it.',
  );
  if (!options.wait) return { status: record.status, record, sessionId, queued: true };
  const ended = await waitForEnd(paths, task.name, sessionId);
  if (ended.state) log(describeOf(options)(ended.state, task.name));
  return { status: ended.record?.status ?? 'cancelled', record: ended.record, sessionId, queued: true };
}

/**
 * A task about to be left to another process (queued, or `--detach`) is started later from its
 * recorded launch, which never names an executable, lifts permissions or passes claude options
 * other than a few (agent-command.ts `validateAgentLaunch`): one that could not be replayed is
 * refused now, inside the registering transaction, so nothing is written.
 * @throws OrchestratorError `usage` naming the flag and what to do instead.
 */
function refuseUnreplayable(task: BackgroundTaskOptions['task'], statePath: string): void {
  if (!task.launch) return;
  try {
    validateAgentLaunch(task.launch, task.name, statePath);
  } catch (error) {
    throw new OrchestratorError(
      'usage',
      `${task.name} would have to wait for a slot (or run detached), and such a task is started later from its recorded flags, ` +
        `which are refused: ${errorMessage(error)}. Set CLAUDE_BIN in the environment instead of --claude_bin, ` +
        'choose another --permission_mode, or start it when a slot is free (poll-session shows the running tasks).',
      { cause: error },
    );
  }
}

/** Takes over a task claimed for a launch with `token`, then runs it; a claim that is gone (cancelled, timed out) is left alone. */
async function adoptTask(options: BackgroundTaskOptions, token: string, log: (line: string) => void): Promise<BackgroundTaskResult> {
  const { paths, task } = options;
  const taken = await updateState(paths, (tx) => {
    const state = tx.state;
    const record = state ? taskOf(state, task.name) : undefined;
    if (!state || !record || record.status !== 'running' || record.adoption_token !== token || record.pid !== null) {
      return { ok: false as const, record: record ?? null, sessionId: state?.session_id ?? '' };
    }
    Object.assign(record, ownerFields(process.pid), { adoption_token: null, launched: null, heartbeat_at: tx.now.toISOString() });
    return { ok: true as const, state: parseStateJson(JSON.stringify(state)) };
  });
  if (!taken.ok) {
    log(`${task.name}: nothing to take over (the launch claim is gone; status ${taken.record?.status ?? 'unknown'})`);
    return { status: taken.record?.status ?? 'cancelled', record: taken.record, sessionId: taken.sessionId, queued: false };
  }
  return runClaimed(options, taken.state, log);
}

/**
 * Runs a task this process owns (status running), then takes the scheduling decision again so the
 * next tasks start. With `continueWith`, the first queued task it selects whose launch is of this
 * agent's kind (same script, same directory) is run next in this process, and so on: an agent whose
 * task ended takes the next one without a new process start; the others get agents of their own.
 * The result is the first task's.
 */
async function runClaimed(options: BackgroundTaskOptions, state: SessionState, log: (line: string) => void): Promise<BackgroundTaskResult> {
  const { paths } = options;
  const next = options.continueWith;
  const keep = next ? (launch: AgentLaunch) => launch.script === next.script && launch.cwd === next.cwd : undefined;
  let controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => controller.abort(new Error(`agent process terminated by ${signal}`));
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);
  let current: BackgroundTaskOptions = options;
  let currentState = state;
  let currentLog = log;
  // The first task's printer serves the tasks this process runs after it too (their options are rebuilt from launches).
  const describe = describeOf(options);
  let first: BackgroundTaskResult | null = null;
  try {
    for (;;) {
      const name = current.task.name;
      currentLog(describe(currentState, name));
      const finished = await executeClaimedTask({
        paths,
        name,
        state: currentState,
        resultPath: resultPathFor(current.outputDir, name),
        agentCwd: current.agentCwd,
        executor: current.executor,
        controller,
        schedule: true,
        keep,
      });
      // The slot was given on in the commit that ended the task (its launches are on their way); when that
      // commit was not ours to write (cancelled, reaped), a pass of our own. A cancelled task's process keeps no next
      // task: cancel-session signals it (same pid and start time) right after marking the cancel, and would stop
      // the next task instead; the queue gives that task a process of its own.
      const aborted = controller.signal.aborted;
      const passKeep = finished.status === 'cancelled' ? undefined : keep;
      const applied = aborted ? null : (finished.applied ?? (await schedulePass(paths, { keep: passKeep }).catch(() => null)));
      const after = await readState(paths).catch(() => null);
      currentLog(after && taskOf(after, name) ? describe(after, name) : `${name} ${finished.status}`);
      first ??= { ...finished, sessionId: state.session_id, queued: false };
      const kept = applied?.kept;
      if (!kept || !next || !after) return first;
      try {
        current = { ...(await next.build(kept.launch)), continueWith: next };
      } catch (error) {
        // Validated when it was claimed; should its flags no longer build (e.g. a task file removed), say so on the task.
        await transitionOwnTask(paths, kept.name, (tx, s) =>
          setStatus(tx, s, kept.name, 'failed', { reason: `could not be started: ${errorMessage(error)}` }),
        );
        return first;
      }
      currentState = after;
      currentLog = current.log ?? log;
      controller = new AbortController();
    }
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

/**
 * `--wait`: follows a queued task by reading the state (no lock, no slot) until it ends, the session
 * is replaced or the task is gone. Where nobody else would (a death to record, a queued task that may
 * start), it takes the scheduling decision itself, so a crashed agent never stalls the queue.
 */
async function waitForEnd(
  paths: SessionPaths,
  name: string,
  sessionId: string,
): Promise<{ record: TaskRecord | null; state: SessionState | null }> {
  const watcher = watchState(paths, { events: false });
  try {
    for (;;) {
      const state = await readState(paths).catch(() => null);
      const record = state && state.session_id === sessionId ? (taskOf(state, name) ?? null) : null;
      if (!state || !record || TERMINAL_STATUSES.has(record.status)) return { record, state };
      if (passNeeded(state, new Date())) await schedulePass(paths).catch(() => null);
      await watcher.next(WAIT_POLL_MS);
    }
  } finally {
    watcher.close();
  }
}
