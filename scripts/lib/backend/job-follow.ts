// Following one task's job on the orchestrating side: its starts, live figures and result, through server outages and a server that lost the job.
import type { AgentContext, AgentOutcome } from '../agents/agent-types.ts';
import { errorMessage } from '../core/errors.ts';
import type { RunnerKind } from '../state/model.ts';
import { scrubSecrets, type BackendConnection } from './connection.ts';
import { LostJobWatch, type HandInQueue } from './hand-in.ts';
import { recordStart, type HostRecord, type TaskQueue } from './job-attempts.ts';
import { TaskJobResultSchema, readJobProgress, type TaskJobData, type TaskJobProgress, type TaskJobResult } from './job-data.ts';
import type { JobWakeups } from './job-wakeups.ts';
import { bounded, isConnectionError, ServerOutage, SHUTDOWN_CALL_TIMEOUT_MS } from './server-calls.ts';

/** Longest wait between two looks at a job when no queue event came (ms). */
export const JOB_POLL_MS = 1000;

/** A task's mock-agent knobs from the plan (`delay_ms`, `fail`), carried to the worker as data. */
export interface RemoteTaskKnobs {
  delayMs?: number;
  fail?: boolean;
}

/** Options of `runRemoteTask` (bullmq-backend.ts). */
export interface RemoteTaskOptions {
  queue: TaskQueue;
  /** Where workers hand in the results of jobs the server lost (hand-in.ts). */
  handIns: HandInQueue;
  ctx: AgentContext;
  knobs: RemoteTaskKnobs;
  runner: RunnerKind;
  /** The queue events of the jobs being followed: wakes a look at the job before the {@link JOB_POLL_MS} poll. */
  wakeups: JobWakeups;
  /** Longest wait between two looks (ms). @default {@link JOB_POLL_MS} */
  pollMs?: number;
  log: (line: string) => void;
  connection: BackendConnection;
  /** The server's state as every task of the run sees it. @default one of this task's own */
  outage?: ServerOutage;
}

/** The outcome of a job's result (a return value, or a result handed in after the server lost the job). */
function outcomeOf(result: TaskJobResult, hosts: HostRecord[]): AgentOutcome {
  return {
    status: result.status,
    body: result.body,
    error: result.error,
    frontmatter: { ...result.frontmatter, host: result.host, worker_started_at: result.started_at, worker_ended_at: result.ended_at },
    record: { ...result.record, attempt_hosts: hosts },
    ...(result.receipt ? { receipt: result.receipt } : {}),
  };
}

/**
 * Adds the job (again, while the server does not answer: an add under an existing id is ignored, so a
 * repeat is safe) and follows it to its end. Every server call is bounded (server-calls.ts): a server
 * that is away is told once and waited for up to the outage limit, and `ctx.signal` (SIGTERM, cancel)
 * is obeyed at once. A job the server lost is looked for among the hand-ins (hand-in.ts).
 */
export async function followJob(
  options: RemoteTaskOptions,
  jobId: string,
  data: TaskJobData,
  hosts: HostRecord[],
  fail: (error: string) => AgentOutcome,
): Promise<AgentOutcome> {
  const { queue, ctx, wakeups, log, connection } = options;
  const pollMs = options.pollMs ?? JOB_POLL_MS;
  const outage = options.outage ?? new ServerOutage(connection, log);
  const lost = new LostJobWatch(options.handIns, connection.redacted, log);
  let added = false;
  const seen = { starts: 0, rateLimits: 0 };
  /** A job's result, returned or handed in: a start not seen yet is recorded first (a job that ended between two looks). */
  const finish = async (result: TaskJobResult): Promise<AgentOutcome> => {
    if (result.start > seen.starts) await recordStart(ctx, { host: result.host, start: result.start }, seen.starts, hosts, log);
    return outcomeOf(result, hosts);
  };
  for (;;) {
    if (ctx.signal.aborted) {
      await cancelJob(queue, jobId, data, ctx.signal.reason);
      throw ctx.signal.reason;
    }
    const mark = wakeups.mark(jobId);
    let job, state, verdict;
    try {
      // Adding an id that exists is a no-op in BullMQ: an adopted earlier job keeps its data.
      if (!added)
        await bounded(
          () => queue.add(ctx.taskName, data, { jobId, attempts: 1, removeOnComplete: false, removeOnFail: false }),
          ctx.signal,
        );
      added = true;
      // The state first, then the job: a job read before it completed has no return value yet.
      state = await bounded(() => queue.getJobState(jobId), ctx.signal);
      job = await bounded(() => queue.getJob(jobId), ctx.signal);
      if (!job || state === 'unknown') verdict = await lost.look(ctx.taskName, jobId, ctx.signal);
      else lost.reset();
      outage.answered();
    } catch (error) {
      if (ctx.signal.aborted) continue;
      if (!added && !isConnectionError(error))
        return fail(
          `could not add job ${jobId} to the BullMQ queue at ${connection.redacted}: ${scrubSecrets(errorMessage(error), connection)}`,
        );
      outage.failed(error);
      const exceeded = outage.exceeded();
      if (exceeded) return fail(added ? exceeded : `could not add job ${jobId}: ${exceeded}`);
      await wakeups.next(jobId, mark, ctx.signal, pollMs); // The server may be back at the next look.
      continue;
    }
    if (verdict && 'result' in verdict) return finish(verdict.result);
    if (verdict) return fail(verdict.failure);
    if (!job) {
      await wakeups.next(jobId, mark, ctx.signal, pollMs);
      continue;
    }
    await takeProgress(options, readJobProgress(job.progress), seen, hosts);
    if (state === 'completed') {
      const parsed = TaskJobResultSchema.safeParse(job.returnvalue);
      if (!parsed.success) return fail(`job ${jobId} returned something that is not a task result: ${parsed.error.issues[0]?.message}`);
      return finish(parsed.data);
    }
    if (state === 'failed') return fail(`job ${jobId} failed on the worker: ${job.failedReason || 'no reason given'}`);
    await wakeups.next(jobId, mark, ctx.signal, pollMs);
  }
}

/**
 * Takes what a job's progress says: a new start (another attempt, with its host), a claude agent's
 * live figures, and a rate limit the remote agent hit (it acts on this session's adaptive limit, as a
 * local agent's does). `seen` counts what was taken already; rate limits are counted per start.
 */
async function takeProgress(
  options: RemoteTaskOptions,
  progress: TaskJobProgress | null,
  seen: { starts: number; rateLimits: number },
  hosts: HostRecord[],
): Promise<void> {
  const { ctx, log } = options;
  if (!progress) return;
  if (progress.start > seen.starts) {
    await recordStart(ctx, progress, seen.starts, hosts, log);
    seen.starts = progress.start;
    seen.rateLimits = 0;
  }
  if (progress.live && ctx.recordProgress) await ctx.recordProgress(progress.live).catch(() => undefined);
  if (progress.start === seen.starts && progress.rate_limits > seen.rateLimits && progress.last_rate_limit) {
    seen.rateLimits = progress.rate_limits;
    const last = progress.last_rate_limit;
    await ctx
      .reportRateLimit?.({ status: last.status, error: last.error, resetAt: last.reset_at ? new Date(last.reset_at) : null })
      .catch(() => undefined);
  }
}

/**
 * Stops a job of a cancelled or stopped task: removed when no worker has taken it yet, else marked
 * (`cancel` in its data) so the worker running it stops the agent at its next look (every
 * `CANCEL_POLL_MS` on the worker, backend-names.ts). Best effort and bounded: a server that does not
 * answer leaves the job to finish, and the run still stops.
 */
async function cancelJob(queue: TaskQueue, jobId: string, data: TaskJobData, reason: unknown): Promise<void> {
  const ms = SHUTDOWN_CALL_TIMEOUT_MS;
  const removed = await bounded(() => queue.remove(jobId), undefined, ms).catch(() => null);
  if (removed !== 0) return; // Removed (1), or no answer (null): nothing more to do here.
  const job = await bounded(() => queue.getJob(jobId), undefined, ms).catch(() => undefined);
  if (!job || job.finishedOn) return;
  await bounded(() => job.updateData({ ...data, cancel: errorMessage(reason) }), undefined, ms).catch(() => undefined);
}
