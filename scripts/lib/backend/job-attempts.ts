// The attempts of a task's BullMQ jobs: the starts a job went through (hosts, unreported ones), and an earlier attempt's
// job to take over (still alive, or completed while nobody recorded it).
import type { Queue } from 'bullmq';
import type { AgentContext } from '../agents/agent-types.ts';
import type { TaskRecord } from '../state/model.ts';
import { jobIdFor, TaskJobResultSchema, type TaskJobProgress } from './job-data.ts';
import { bounded } from './server-calls.ts';

/** The queue calls {@link runRemoteTask} makes (a BullMQ `Queue`). */
export type TaskQueue = Pick<Queue, 'add' | 'getJob' | 'getJobState' | 'remove'>;

/** One entry of the task field `attempt_hosts`. */
export type HostRecord = TaskRecord['attempt_hosts'][number];

/**
 * The host recorded for a start of a job whose worker died before it reported anything (killed between
 * taking the job and its first progress update): BullMQ counts the start, nobody can name its host.
 */
export const UNREPORTED_HOST = 'unknown (its worker died before reporting)';

/**
 * Records the starts of a job from `seenStarts + 1` to `progress.start`: another attempt for each
 * start after the first (`ctx.markRunning`), the host of the latest in `hosts`, and
 * {@link UNREPORTED_HOST} for each earlier start never seen (its worker died before its first
 * progress update), so a task's `attempts` and `attempt_hosts` always agree.
 */
export async function recordStart(
  ctx: Pick<AgentContext, 'taskName' | 'attempt' | 'markRunning'>,
  progress: Pick<TaskJobProgress, 'host' | 'start'>,
  seenStarts: number,
  hosts: HostRecord[],
  log: (line: string) => void,
): Promise<void> {
  for (let start = seenStarts + 1; start <= progress.start; start++) {
    const latest = start === progress.start;
    if (start > 1) {
      log(`${ctx.taskName}: its worker stopped answering (stalled job); started again${latest ? ` on ${progress.host}` : ''}`);
      await ctx.markRunning({ started: true });
    }
    const entry = { attempt: ctx.attempt, host: latest ? progress.host : UNREPORTED_HOST };
    const index = hosts.findIndex((h) => h.attempt === entry.attempt);
    if (index === -1) hosts.push(entry);
    else hosts[index] = entry;
  }
}

/** BullMQ job states of a job that has not ended: it will run, or runs now. */
const LIVE_JOB_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

/** An earlier attempt's job that this attempt takes instead of adding another (see {@link earlierJobToFollow}). */
export interface EarlierJob {
  jobId: string;
  attempt: number;
  /** The job's BullMQ state: one of `LIVE_JOB_STATES`, or `completed`. */
  state: string;
}

/**
 * The newest job of an earlier attempt of `ctx`'s task in this session that this attempt should take over instead of
 * adding a job of its own, or null:
 *
 * - one still queued or running (`LIVE_JOB_STATES`): its orchestrator was killed, then `--resume`; following it keeps
 *   one agent per task;
 * - one that completed with a completed task result while nobody recorded it (its orchestrator was killed, or gave
 *   up following it: the task would be `completed` otherwise, and would not run again): its result is taken rather
 *   than paying for the same work twice.
 *
 * A job that failed, or whose agent failed, is left alone: that attempt failed, and this one starts afresh.
 */
export async function earlierJobToFollow(
  queue: TaskQueue,
  ctx: Pick<AgentContext, 'session_id' | 'taskName' | 'attempt' | 'session_created_at'>,
  signal?: AbortSignal,
): Promise<EarlierJob | null> {
  for (let attempt = ctx.attempt - 1; attempt >= 1; attempt--) {
    const jobId = jobIdFor(ctx.session_id, ctx.taskName, attempt, ctx.session_created_at);
    const state = await bounded(() => queue.getJobState(jobId), signal).catch(() => 'unknown');
    if (LIVE_JOB_STATES.has(state)) return { jobId, attempt, state };
    if (state !== 'completed') continue;
    const job = await bounded(() => queue.getJob(jobId), signal).catch(() => undefined);
    if (TaskJobResultSchema.safeParse(job?.returnvalue).data?.status === 'completed') return { jobId, attempt, state };
  }
  return null;
}
