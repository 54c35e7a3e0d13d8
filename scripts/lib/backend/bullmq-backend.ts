// The BullMQ backend on the orchestrating side: an AgentExecutor that runs a task by adding a job and following it until a worker on any host finished it.
import type { QueueEvents } from 'bullmq';
import type { AgentContext, AgentExecutor, AgentOutcome } from '../agents/agent-types.ts';
import { errorMessage } from '../cli/errors.ts';
import { readResultFile } from '../execution/result-file.ts';
import type { RunnerKind } from '../state/model.ts';
import { DEFAULT_QUEUE } from './backend-names.ts';
import { openQueue, unreachableError } from './bullmq-engine.ts';
import { scrubSecrets, type BackendConnection } from './connection.ts';
import { JobWakeups } from './job-wakeups.ts';
import { liveEarlierJob, recordStart, type HostRecord, type TaskQueue } from './job-attempts.ts';
import { JOB_VERSION, MAX_DEPENDENCY_BODY, TaskJobResultSchema, jobIdFor, readJobProgress, type TaskJobData } from './job-data.ts';

export { UNREPORTED_HOST, type TaskQueue } from './job-attempts.ts';

/** Longest wait between two looks at a job when no queue event about it arrives (ms). Events wake it sooner. */
export const JOB_POLL_MS = 1000;

/** Options of {@link openBullmqBackend}. */
export interface BullmqBackendOptions {
  connection: BackendConnection;
  /** @default {@link DEFAULT_QUEUE} */
  queueName?: string;
  /** The session's worker limit, set as the queue's global concurrency (it holds across every worker on every host). */
  maxWorkers: number;
  /** Reachability check timeout (ms). */
  connectTimeoutMs?: number;
  /** Progress lines (a task taken over after its host died, ...). */
  log?: (line: string) => void;
}

/** A task's mock-agent knobs from the plan (`delay_ms`, `fail`), carried to the worker as data. */
export interface RemoteTaskKnobs {
  delayMs?: number;
  fail?: boolean;
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
  for (const name of ['active', 'progress', 'completed', 'failed', 'stalled', 'removed'] as const)
    events.on(name, ({ jobId }: { jobId: string }) => wakeups.notify(jobId));

  return {
    redacted: connection.redacted,
    queueName,
    executorFor: (task, runner) => (ctx) => runRemoteTask({ queue, ctx, knobs: task, runner, wakeups, log, connection }),
    setConcurrency: async (limit) => {
      await queue.setGlobalConcurrency(limit);
      current = limit;
    },
    syncConcurrency: async (limit) => {
      if (limit === current) return;
      current = limit;
      await queue.setGlobalConcurrency(limit).catch(() => undefined);
    },
    close: async () => {
      await events?.close().catch(() => undefined);
      await queue.close().catch(() => undefined);
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

/** Options of {@link runRemoteTask}. */
export interface RemoteTaskOptions {
  queue: TaskQueue;
  ctx: AgentContext;
  knobs: RemoteTaskKnobs;
  runner: RunnerKind;
  /** The queue events of the jobs being followed: wakes a look at the job before the {@link JOB_POLL_MS} poll. */
  wakeups: JobWakeups;
  /** Longest wait between two looks (ms). @default {@link JOB_POLL_MS} */
  pollMs?: number;
  log: (line: string) => void;
  connection: BackendConnection;
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
  // followed instead of adding another: one task never has two agents.
  const earlier = await liveEarlierJob(options.queue, ctx);
  if (earlier)
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

async function followJob(
  options: RemoteTaskOptions,
  jobId: string,
  data: TaskJobData,
  hosts: HostRecord[],
  fail: (error: string) => AgentOutcome,
): Promise<AgentOutcome> {
  const { queue, ctx, wakeups, log, connection } = options;
  const pollMs = options.pollMs ?? JOB_POLL_MS;
  try {
    // Adding an id that exists is a no-op in BullMQ: an adopted earlier job keeps its data.
    await queue.add(ctx.taskName, data, { jobId, attempts: 1, removeOnComplete: false, removeOnFail: false });
  } catch (error) {
    return fail(
      `could not add job ${jobId} to the BullMQ queue at ${connection.redacted}: ${scrubSecrets(errorMessage(error), connection)}`,
    );
  }
  let seenStarts = 0;
  let seenRateLimits = 0;
  for (;;) {
    if (ctx.signal.aborted) {
      await cancelJob(queue, jobId, data, ctx.signal.reason);
      throw ctx.signal.reason;
    }
    const mark = wakeups.mark(jobId);
    // The state first, then the job: a job read before it completed has no return value yet.
    let job, state;
    try {
      state = await queue.getJobState(jobId);
      job = await queue.getJob(jobId);
    } catch {
      await wakeups.next(jobId, mark, ctx.signal, pollMs); // The server may be back at the next look.
      continue;
    }
    if (!job || state === 'unknown') return fail(`job ${jobId} is no longer in the queue (removed by someone else)`);
    const progress = readJobProgress(job.progress);
    if (progress && progress.start > seenStarts) {
      await recordStart(ctx, progress, seenStarts, hosts, log);
      seenStarts = progress.start;
      seenRateLimits = 0; // Counted per start of the job.
    }
    if (progress?.live && ctx.recordProgress) await ctx.recordProgress(progress.live).catch(() => undefined);
    // A rate limit the remote agent hit acts on this session's adaptive limit, as a local agent's does.
    if (progress && progress.start === seenStarts && progress.rate_limits > seenRateLimits && progress.last_rate_limit) {
      seenRateLimits = progress.rate_limits;
      const last = progress.last_rate_limit;
      await ctx
        .reportRateLimit?.({ status: last.status, error: last.error, resetAt: last.reset_at ? new Date(last.reset_at) : null })
        .catch(() => undefined);
    }
    if (state === 'completed') {
      const parsed = TaskJobResultSchema.safeParse(job.returnvalue);
      if (!parsed.success) return fail(`job ${jobId} returned something that is not a task result: ${parsed.error.issues[0]?.message}`);
      const result = parsed.data;
      if (result.start > seenStarts) await recordStart(ctx, { host: result.host, start: result.start }, seenStarts, hosts, log);
      return {
        status: result.status,
        body: result.body,
        error: result.error,
        frontmatter: { ...result.frontmatter, host: result.host, worker_started_at: result.started_at, worker_ended_at: result.ended_at },
        record: { ...result.record, attempt_hosts: hosts },
      };
    }
    if (state === 'failed') return fail(`job ${jobId} failed on the worker: ${job.failedReason || 'no reason given'}`);
    await wakeups.next(jobId, mark, ctx.signal, pollMs);
  }
}

/**
 * Stops a job of a cancelled or stopped task: removed when no worker has taken it yet, else marked
 * (`cancel` in its data) so the worker running it stops the agent at its next look (every
 * `CANCEL_POLL_MS` on the worker, backend-names.ts). Best effort: an unreachable server leaves the job to finish.
 */
async function cancelJob(queue: TaskQueue, jobId: string, data: TaskJobData, reason: unknown): Promise<void> {
  const removed = await queue.remove(jobId).catch(() => 0);
  if (removed) return;
  const job = await queue.getJob(jobId).catch(() => undefined);
  if (!job || job.finishedOn) return;
  await job.updateData({ ...data, cancel: errorMessage(reason) }).catch(() => undefined);
}
