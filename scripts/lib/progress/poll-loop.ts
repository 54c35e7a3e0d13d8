// poll-session's loop: read the state without the lock, reap dead agents and start queued tasks, replace dead agents on request, follow events.jsonl, decide when to stop.
import { EXIT, OrchestratorError } from '../core/errors.ts';
import type { SessionEvent } from '../state/events.ts';
import { openEventReader, type EventPosition } from '../state/event-reader.ts';
import { isProcessAlive } from '../process/signals.ts';
import { RunTracker, type ProgressEvent } from './run-tracker.ts';
import { feed, readHistory } from './history.ts';
import { TimelineBuilder } from '../report/timeline.ts';
import { TERMINAL_STATUSES, type SessionState } from '../state/model.ts';
import { exitCodeFor, isReplacementPending, summarize, type PollOutcome } from '../report/session-figures.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { readState } from '../state/state-store.ts';
import { watchState } from '../state/state-watcher.ts';
import { passNeeded, schedulePass } from '../execution/task-queue.ts';
import { replaceDeadTasks, replacementCandidates } from '../execution/worker-replacement.ts';

/** How long a replacement agent may take to re-register its task before poll-session stops waiting for it (ms). */
export const REPLACEMENT_GRACE_MS = 60_000;

export type { PollOutcome } from '../report/session-figures.ts';

/** What the loop knows at the end of one pass, handed to the output. */
export interface PassInfo {
  state: SessionState;
  /** ms since the epoch. */
  now: number;
  /** Failed tasks whose replacement agent is on its way (treated as active). */
  replacing: ReadonlySet<string>;
  /** The current session's timeline, built from the events read so far. */
  timeline?: TimelineBuilder;
}

/** Where poll-session's output goes: event lines, the live board, or JSON lines (see poll-sinks.ts). */
export interface ProgressSink {
  /**
   * The events already in the log when the follow began (what a cursor showed before excepted), with derived batch
   * events, a batch at a time and oldest first, before {@link start}: a sink keeps what it shows of them in bounded memory.
   */
  history(events: readonly ProgressEvent[], pass: PassInfo): void;
  /** Once, after the history, with the first state. */
  start(pass: PassInfo): void;
  /** Each new event, in order. */
  event(event: ProgressEvent, pass: PassInfo): void;
  /** After every pass: time to refresh what depends on the clock. */
  tick(pass: PassInfo): void;
  /** Once, at the end; `pass` is null when the timeout elapsed before any session appeared. */
  finish(pass: PassInfo | null, outcome: PollOutcome, exitCode: number): void;
  /** How long the sink may go without a {@link tick} (ms), e.g. 1000 for a ticking clock. */
  readonly tickMs: number;
}

/** Options of {@link followSession}; flags are validated by the caller. */
export interface FollowOptions {
  paths: SessionPaths;
  sink: ProgressSink;
  /** Give up after this many seconds (exit 3); undefined waits forever. */
  timeoutS?: number;
  /** Longest wait between two reads (ms); file changes wake the loop sooner. */
  intervalMs: number;
  /** Do not judge the session finished before this many tasks are registered. */
  expect: number;
  /** Seconds to wait for a session to appear before `no_session`. */
  waitForSessionS: number;
  /** Restart the agent of a task whose process died, within its attempts budget. */
  replaceDead: boolean;
  /** One pass, then stop: exit 0/1 if every task ended, 3 if some are still active. */
  once: boolean;
  /** The clock (ms since the epoch); default `Date.now`. */
  clock?: () => number;
  /**
   * Where the previous call stopped reading this session's events (see poll-cursor.ts): events
   * before the loaded offset still feed the run tracker (batches) but are not handed to the sink;
   * at the end the position reached is saved. Absent: every event is shown and nothing is saved.
   */
  cursor?: PollCursor;
}

/** Loads and saves poll-session's read position per session. */
export interface PollCursor {
  /** The byte offset of events.jsonl already shown for this session, or null. */
  load(sessionId: string): Promise<number | null>;
  save(sessionId: string, position: EventPosition): Promise<void>;
  /**
   * Also save after every pass whose events moved the position, not only at the end (`--attention`):
   * a watch that is killed (a Monitor watch stopped) then does not print its lines again when re-armed.
   */
  eager?: boolean;
}

/**
 * Follows the session until every task has ended (and at least `expect` are registered), the
 * timeout elapses, or after one pass with `once`.
 *
 * Each pass: read `latest.yaml` without the lock; when the session's scheduling decision would
 * change something (a task whose agent process is gone or whose lease expired, a queued task that
 * may start, be skipped or fail), take it under the lock and start the agents of the queued tasks
 * it selects (task-queue.ts `schedulePass`); with `replaceDead`, start replacement agents; read the
 * events appended to events.jsonl since the last pass; hand them to the sink. A task whose
 * replacement was started but has not re-registered counts as active, for at most
 * {@link REPLACEMENT_GRACE_MS} or until the replacement process is gone.
 *
 * @returns the exit code: 0 all completed, 1 any failed/skipped/cancelled, 3 timeout (or still active with `once`).
 * @throws OrchestratorError `no_session` (exit 2) when no session appears in time, `corrupt_state` for an unusable state file.
 */
export async function followSession(options: FollowOptions): Promise<number> {
  const { paths, sink } = options;
  const clock = options.clock ?? Date.now;
  const began = clock();
  const deadline = options.timeoutS === undefined ? Infinity : began + options.timeoutS * 1000;
  const watcher = watchState(paths);
  const reader = openEventReader(paths.eventsPath);
  const tracker = new RunTracker();
  const replacements = new Map<string, { pid: number | undefined; since: number }>();
  /** The current session's timeline, from the events read so far (for the summary). */
  const timeline = new TimelineBuilder();
  let started = false;
  let sessionId: string | null = null;
  const saveCursor = cursorSaver(options.cursor, reader, tracker, () => sessionId);
  const passOf = (state: SessionState): PassInfo => ({
    state,
    now: clock(),
    replacing: pendingReplacements(state, replacements, clock()),
    timeline,
  });
  try {
    for (;;) {
      let state = await readState(paths);
      if (!state) {
        if (options.once || clock() - began >= options.waitForSessionS * 1000) throw noSessionError(options);
      } else {
        if (sessionId !== null && state.session_id !== sessionId) replacements.clear();
        sessionId = state.session_id;
        let held: ReadonlySet<string> = new Set();
        const derived = (events: readonly SessionEvent[]) => feed(events, tracker, timeline, held);
        if (!started) {
          // Events a previous call already showed: known to the tracker, not shown again.
          const shown = options.cursor ? await options.cursor.load(state.session_id) : null;
          if (shown !== null) await readHistory(reader, shown, (events) => void derived(events));
          // What happened before this poller came (or since the previous call): the sink shows it as history.
          const first = passOf(state);
          held = heldTasks(first, options.replaceDead);
          await readHistory(reader, Infinity, (events) => sink.history(derived(events), first));
          sink.start(first);
          started = true;
        }
        // The session's scheduling decision, taken only when it would change something: deaths to record,
        // queued tasks to start (their agents are launched from here), skip or fail.
        if (passNeeded(state, new Date(clock()))) await schedulePass(paths);
        if (options.replaceDead) {
          for (const { task, pid } of await replaceDeadTasks(paths)) replacements.set(task, { pid, since: clock() });
        }
        const batch = await reader.read();
        state = (await readState(paths)) ?? state;
        const pass = passOf(state);
        held = heldTasks(pass, options.replaceDead);
        for (const event of derived(batch.events)) sink.event(event, pass);
        if (options.cursor?.eager) await saveCursor();
        const summary = summarize(state, { replacing: pass.replacing });
        if (summary.finished && summary.total >= options.expect) {
          for (const event of await settle(reader, tracker, state, derived)) sink.event(event, pass);
          const code = exitCodeFor(summary);
          sink.finish(pass, code === EXIT.ok ? 'completed' : 'failed', code);
          return code;
        }
        if (options.once) {
          sink.finish(pass, 'active', EXIT.timeout);
          return EXIT.timeout;
        }
        sink.tick(pass);
      }
      if (clock() >= deadline) {
        // The slice ended as the session wait did (the wait is no longer than the slice by default): no session is exit 2.
        if (!state && sessionId === null && clock() - began >= options.waitForSessionS * 1000) throw noSessionError(options);
        sink.finish(state ? passOf(state) : null, 'timeout', EXIT.timeout);
        return EXIT.timeout;
      }
      await watcher.next(Math.max(0, Math.min(options.intervalMs, sink.tickMs, deadline - clock())));
    }
  } finally {
    watcher.close();
    await saveCursor();
    await reader.close();
  }
}

/** The error when no session appeared in time (exit 2), with what to do. */
function noSessionError(options: FollowOptions): OrchestratorError {
  return new OrchestratorError(
    'no_session',
    `No session found at ${options.paths.statePath}${options.once ? '' : ` after ${options.waitForSessionS} s`}. ` +
      'Start agents first, run this from the project directory they ran in, or pass the same --session_dir.',
  );
}

/**
 * A function that saves the read position as the cursor of the current session (`session()`), when
 * there is a cursor, the reader is still on that session and the position moved since its last
 * save; a cursor not saved only means a longer next call.
 */
function cursorSaver(
  cursor: PollCursor | undefined,
  reader: ReturnType<typeof openEventReader>,
  tracker: RunTracker,
  session: () => string | null,
): () => Promise<void> {
  let last = '';
  return async () => {
    const sessionId = session();
    const position = reader.position();
    if (!cursor || !position || sessionId === null || (tracker.sessionId !== null && tracker.sessionId !== sessionId)) return;
    const key = `${sessionId}:${position.ino}:${position.offset}`;
    if (key === last) return;
    await cursor.save(sessionId, position).then(
      () => void (last = key),
      () => {},
    );
  };
}

/**
 * Failed tasks whose replacement agent has been started and has not re-registered them yet, and
 * that are still worth waiting for: within the grace period and with the replacement process alive
 * (when this poller started it and knows its pid).
 */
export function pendingReplacements(
  state: SessionState,
  started: Map<string, { pid: number | undefined; since: number }>,
  now: number,
  alive = isProcessAlive,
): Set<string> {
  const pending = new Set<string>();
  for (const [name, task] of Object.entries(state.tasks)) {
    if (!isReplacementPending(task)) {
      started.delete(name);
      continue;
    }
    let entry = started.get(name);
    if (!entry) {
      entry = { pid: undefined, since: now };
      started.set(name, entry);
    }
    const young = now - entry.since < REPLACEMENT_GRACE_MS;
    if (young && (entry.pid === undefined || alive(entry.pid))) pending.add(name);
  }
  return pending;
}

/** Tasks whose batch is not over yet although their last event ended them: replacements pending or about to start. */
function heldTasks(pass: PassInfo, replaceDead: boolean): Set<string> {
  const held = new Set(pass.replacing);
  if (replaceDead) for (const name of replacementCandidates(pass.state)) held.add(name);
  return held;
}

/**
 * The events were read just before the state, so a commit that landed in between can be in the
 * state that says the session is over and not yet in what was read of the log: read for up to a
 * second until the events agree with the state.
 */
async function settle(
  reader: ReturnType<typeof openEventReader>,
  tracker: RunTracker,
  state: SessionState,
  derived: (events: readonly SessionEvent[]) => ProgressEvent[],
): Promise<ProgressEvent[]> {
  const out: ProgressEvent[] = [];
  const agrees = () =>
    tracker.sessionId === null ||
    Object.entries(state.tasks).every(
      ([name, task]) => !TERMINAL_STATUSES.has(task.status) || tracker.tasks.get(name)?.status === task.status,
    );
  for (let i = 0; i < 40 && !agrees(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    out.push(...derived((await reader.read()).events));
  }
  return out;
}
