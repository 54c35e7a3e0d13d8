// The BullMQ backend on the orchestrating side: an AgentExecutor that runs a task by adding a job and following it until a worker on any host finished it.
import type { QueueEvents } from 'bullmq';
import type { AgentContext, AgentExecutor, AgentOutcome } from '../agents/agent-types.ts';
import { readResultFile } from '../execution/result-file.ts';
import type { RunnerKind } from '../state/model.ts';
import { DEFAULT_QUEUE } from './backend-names.ts';
import { openQueue, unreachableError } from './bullmq-engine.ts';
import type { BackendConnection } from './connection.ts';
import { JobWakeups } from './job-wakeups.ts';
import { earlierJobToFollow, type HostRecord } from './job-attempts.ts';
import { followJob, type RemoteTaskKnobs, type RemoteTaskOptions } from './job-follow.ts';
import { handInQueueName } from './hand-in.ts';
import { bounded, OUTAGE_LIMIT_MS, ServerOutage, SHUTDOWN_CALL_TIMEOUT_MS } from './server-calls.ts';
import { JOB_VERSION, MAX_DEPENDENCY_BODY, jobIdFor, type TaskJobData } from './job-data.ts';

export { UNREPORTED_HOST, type TaskQueue } from './job-attempts.ts';
export { JOB_POLL_MS, type RemoteTaskKnobs, type RemoteTaskOptions } from './job-follow.ts';

/** Options of {@link openBullmqBackend}. */
export interface BullmqBackendOptions {
  connection: BackendConnection;
  /** @default {@link DEFAULT_QUEUE} */
  queueName?: string;
  /** The session's worker limit, set as the queue's global concurrency (it holds across every worker on every host). */
  maxWorkers: number;
  /** Reachability check timeout (ms). */
  connectTimeoutMs?: number;
  /** Progress lines (a task taken over after its host died, the server away, ...). */
  log?: (line: string) => void;
  /** How long tasks wait for a server that does not answer (ms). @default {@link OUTAGE_LIMIT_MS} */
  outageLimitMs?: number;
}

/** An open BullMQ backend: builds executors, changes the limit, and closes its connections. */
export interface BullmqBackend {
  /** The connection as it may be shown (`postgres://user:***@host:port/db`). */
  readonly redacted: string;
  readonly queueName: string;
  /** An executor that runs a task on a worker (any host) through the queue. */
  executorFor(task: RemoteTaskKnobs, runner: RunnerKind): AgentExecutor;
  /** Sets the queue's global concurrency (most jobs active at once over all workers). */
  setConcurrency(limit: number): Promise<void>;
  /** {@link BullmqBackend.setConcurrency} when `limit` differs from the last one set (the session's adaptive limit moved). */
  syncConcurrency(limit: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Connects to the queue (failing with a clear error, before anything is registered, when the server
 * cannot be reached), sets its global concurrency to `maxWorkers`, and listens to its events.
 *
 * @throws OrchestratorError usage (exit 2) naming the backend and the redacted connection.
 */
export async function openBullmqBackend(options: BullmqBackendOptions): Promise<BullmqBackend> {
  const { connection } = options;
  const queueName = options.queueName ?? DEFAULT_QUEUE;
  const log = options.log ?? (() => {});
  const { queue, engine } = await openQueue(connection, queueName, options.connectTimeoutMs);
  let events: QueueEvents | null = null;
  try {
    await queue.setGlobalConcurrency(options.maxWorkers);
    events = new engine.classes.QueueEvents(queueName, { connection: engine.connection() });
    events.on('error', () => {
      // Events only wake waiters early; the poll every JOB_POLL_MS carries on without them.
    });
    await events.waitUntilReady();
  } catch (error) {
    await events?.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    await engine.close();
    throw unreachableError(connection, queueName, error);
  }
  const wakeups = new JobWakeups();
  let current = options.maxWorkers;
  // Where workers hand in results of jobs the server lost; only read and written, never pulled from.
  const handIns = new engine.classes.Queue(handInQueueName(queueName), { connection: engine.connection() });
  handIns.on('error', () => {
    // Reported by the bounded calls that need the server (job-follow.ts).
  });
  // A server back without its data has lost the queue's global concurrency too: set again on recovery.
  const outage = new ServerOutage(connection, log, options.outageLimitMs ?? OUTAGE_LIMIT_MS, () => {
    void bounded(() => queue.setGlobalConcurrency(current)).catch(() => undefined);
  });
  for (const name of ['active', 'progress', 'completed', 'failed', 'stalled', 'removed'] as const)
    events.on(name, ({ jobId }: { jobId: string }) => wakeups.notify(jobId));

  return {
    redacted: connection.redacted,
    queueName,
    executorFor: (task, runner) => (ctx) => runRemoteTask({ queue, handIns, ctx, knobs: task, runner, wakeups, log, connection, outage }),
    setConcurrency: async (limit) => {
      await queue.setGlobalConcurrency(limit);
      current = limit;
    },
    syncConcurrency: async (limit) => {
      if (limit === current) return;
      current = limit;
      await bounded(() => queue.setGlobalConcurrency(limit)).catch(() => undefined);
    },
    // Bounded: a server that went away must not keep the run from ending.
    close: async () => {
      const ms = SHUTDOWN_CALL_TIMEOUT_MS;
      await Promise.all([events, queue, handIns].map((instance) => bounded(() => instance.close(), undefined, ms).catch(() => undefined)));
      await engine.close();
    },
  };
}

/** Reads the completed dependencies' result bodies (the worker's host cannot read these files). */
async function dependencyBodies(ctx: AgentContext): Promise<TaskJobData['dependency_results']> {
  const bodies: TaskJobData['dependency_results'] = [];
  for (const [dep, file] of Object.entries(ctx.dependencyResults)) {
    const result = await readResultFile(file).catch(() => null);
    if (!result) continue;
    const body =
      result.body.length > MAX_DEPENDENCY_BODY
        ? `${result.body.slice(0, MAX_DEPENDENCY_BODY)}\n\n[cut at ${MAX_DEPENDENCY_BODY} characters; the whole result is on the orchestrating host]\n`
        : result.body;
    bodies.push({ task: dep, body });
  }
  return bodies;
}

/**
 * Runs one attempt of a task as the job `<session>@<opened>@<task>@<attempt>` (job-data.ts `jobIdFor`) and follows it: a start after
 * the first (the job stalled because its host died and another worker took it) counts as another
 * attempt (`ctx.markRunning`); a claude agent's live figures are passed on (`ctx.recordProgress`).
 * The job's return value becomes the outcome, whose body the lifecycle writes to the result file;
 * the host of each attempt goes into the outcome's `record.attempt_hosts`, written with the final
 * status. Aborting `ctx.signal` removes the job when no worker has taken it yet, else marks it
 * cancelled so its worker stops the agent (see cancelJob).
 */
export async function runRemoteTask(options: RemoteTaskOptions): Promise<AgentOutcome> {
  const { ctx, knobs, runner, wakeups } = options;
  // A job of an earlier attempt still queued or running (its orchestrator was killed, then --resume) is
  // followed instead of adding another: one task never has two agents. One that completed while nobody
  // recorded it gives its result: the work is not paid for twice.
  const earlier = await earlierJobToFollow(options.queue, ctx, ctx.signal);
  if (earlier?.state === 'completed')
    options.log(
      `${ctx.taskName}: the job of its attempt ${earlier.attempt} completed while no orchestrator followed it; taking its result`,
    );
  else if (earlier)
    options.log(
      `${ctx.taskName}: the job of its attempt ${earlier.attempt} is still ${earlier.state}; following it instead of starting another`,
    );
  const jobId = earlier?.jobId ?? jobIdFor(ctx.session_id, ctx.taskName, ctx.attempt, ctx.session_created_at);
  const data: TaskJobData = {
    v: JOB_VERSION,
    session_id: ctx.session_id,
    task: ctx.taskName,
    attempt: ctx.attempt,
    agent: ctx.agent,
    runner,
    goal: ctx.goal,
    depends_on: ctx.dependsOn,
    files: ctx.files,
    mock: { delay_ms: knobs.delayMs ?? null, fail: knobs.fail ?? false },
    dependency_results: await dependencyBodies(ctx),
    budget_share_usd: ctx.budgetShareUsd ?? null,
    cancel: null,
  };
  // Where each attempt ran: recorded with the final status, in the same commit (a write per start
  // would cost a locked state write per task; measured: 5.5 against 24 tasks/s, bench/bullmq.ts).
  const hosts: HostRecord[] = [];
  const fail = (error: string): AgentOutcome => ({ status: 'failed', error, body: '', record: { attempt_hosts: hosts } });
  wakeups.follow(jobId);
  try {
    return await followJob(options, jobId, data, hosts, fail);
  } finally {
    wakeups.unfollow(jobId);
  }
}
