// Results that outlive their job: a worker whose job vanished from the server (restarted without persistence, queue emptied) hands its agent's result in beside the queue, and the orchestrator takes it from there.
import type { Queue } from 'bullmq';
import { z } from 'zod';
import { TaskJobResultSchema, type TaskJobResult } from './job-data.ts';
import { bounded } from './server-calls.ts';

/**
 * The queue results are handed in to: `<queue>.handin`. No worker pulls from it (workers take only
 * their own queue's name), so a job added there only holds data: it stays `waiting` until the
 * orchestrator that follows the task takes it and removes it.
 */
export function handInQueueName(queueName: string): string {
  return `${queueName}.handin`;
}

/**
 * What a worker hands in for a job that vanished, under the job's own id: `running` with a counter
 * that goes up at each look (so the orchestrator knows the agent is alive without comparing two
 * hosts' clocks), then `done` with the job's result.
 */
export const HandInSchema = z.discriminatedUnion('state', [
  z.object({ v: z.literal(1), state: z.literal('running'), host: z.string().min(1).max(200), seq: z.number().int().nonnegative() }),
  z.object({ v: z.literal(1), state: z.literal('done'), host: z.string().min(1).max(200), result: TaskJobResultSchema }),
]);
export type HandIn = z.infer<typeof HandInSchema>;

/** The calls a hand-in queue needs (a BullMQ `Queue`). */
export type HandInQueue = Pick<Queue, 'add' | 'getJob' | 'remove'>;

/** Writes a hand-in: updates the entry of `jobId` in place, or adds it (an add under an existing id is ignored by BullMQ). */
async function writeHandIn(queue: HandInQueue, jobId: string, payload: HandIn): Promise<void> {
  const existing = await bounded(() => queue.getJob(jobId));
  if (existing) await bounded(() => existing.updateData(payload));
  else await bounded(() => queue.add('handin', payload, { jobId }));
}

/**
 * The worker's side: once a look finds its job gone while the agent runs, {@link HandInWriter.alive}
 * at each later look and {@link HandInWriter.deliver} when the agent ended. Best effort: a server
 * that does not answer loses nothing more than the job it already lost.
 */
export class HandInWriter {
  private readonly seqs = new Map<string, number>();
  /** The last write of each job: writes of one job are made in order, so a late "running" never covers its "done". */
  private readonly writes = new Map<string, Promise<unknown>>();
  private readonly delivered = new Set<string>();

  constructor(
    private readonly queue: HandInQueue,
    private readonly host: string,
  ) {}

  /** Tells the orchestrator the agent of `jobId` still runs here (ignored once its result was handed in). */
  async alive(jobId: string): Promise<void> {
    if (this.delivered.has(jobId)) return;
    const seq = (this.seqs.get(jobId) ?? 0) + 1;
    this.seqs.set(jobId, seq);
    await this.inOrder(jobId, { v: 1, state: 'running', host: this.host, seq }).catch(() => undefined);
  }

  /** Hands in the result of `jobId`, after any write of it still under way. @returns whether the server took it. */
  async deliver(jobId: string, result: TaskJobResult): Promise<boolean> {
    this.delivered.add(jobId);
    this.seqs.delete(jobId);
    return this.inOrder(jobId, { v: 1, state: 'done', host: this.host, result }).then(
      () => true,
      () => false,
    );
  }

  private inOrder(jobId: string, payload: HandIn): Promise<void> {
    const write = (this.writes.get(jobId) ?? Promise.resolve()).catch(() => undefined).then(() => writeHandIn(this.queue, jobId, payload));
    this.writes.set(jobId, write);
    void write
      .finally(() => {
        if (this.writes.get(jobId) === write) this.writes.delete(jobId);
      })
      .catch(() => undefined);
    return write;
  }
}

/**
 * How long the orchestrator waits, once a job is gone, for its worker to say it still runs the agent,
 * and after its last sign of life (ms): a worker looks at its jobs every 2 s (`CANCEL_POLL_MS`), and
 * reconnects within a few seconds of the server's return.
 */
export const LOST_JOB_GRACE_MS = 15_000;

/** What {@link LostJobWatch.look} found: the handed-in result, the reason to give up, or neither (wait on). */
export type LostJobVerdict = { result: TaskJobResult } | { failure: string } | null;

/**
 * The orchestrator's side, one per followed job: while the job is missing from the queue, looks for
 * its hand-in. A `done` hand-in is the job's result (taken, then removed); a `running` one whose
 * counter moves keeps the task waiting (told once: where it runs); no sign of life for
 * {@link LOST_JOB_GRACE_MS} fails the attempt with what happened (never "removed by someone").
 */
export class LostJobWatch {
  private missingSince: number | null = null;
  private lastSeq = -1;
  private lastLifeAt = 0;
  private host: string | null = null;

  constructor(
    private readonly queue: HandInQueue,
    private readonly where: string,
    private readonly log: (line: string) => void,
    private readonly graceMs = LOST_JOB_GRACE_MS,
  ) {}

  /** The job is in the queue again (or never left it): forget the watch. */
  reset(): void {
    this.missingSince = null;
    this.lastSeq = -1;
    this.host = null;
  }

  /** One look while `jobId` (of task `task`) is missing. Throws when the server does not answer (an outage, not a loss). */
  async look(task: string, jobId: string, signal: AbortSignal, now = Date.now()): Promise<LostJobVerdict> {
    this.missingSince ??= now;
    const entry = await bounded(() => this.queue.getJob(jobId), signal);
    const parsed = HandInSchema.safeParse(entry?.data);
    const handIn = parsed.success ? parsed.data : null;
    const vanished = `job ${jobId} vanished from the queue at ${this.where} (the server lost it: restarted without persistence, or the queue was emptied)`;
    if (handIn?.state === 'done') {
      await bounded(() => this.queue.remove(jobId), signal).catch(() => undefined);
      this.log(`${task}: ${vanished}; its worker ${handIn.host} handed the result in`);
      return { result: handIn.result };
    }
    if (handIn?.state === 'running' && handIn.seq !== this.lastSeq) {
      if (this.host === null) this.log(`${task}: ${vanished}; its worker ${handIn.host} still runs the agent and will hand the result in`);
      this.lastSeq = handIn.seq;
      this.lastLifeAt = now;
      this.host = handIn.host;
    }
    const quietSince = this.host === null ? this.missingSince : this.lastLifeAt;
    if (now - quietSince < this.graceMs) return null;
    const seconds = Math.round((now - quietSince) / 1000);
    return {
      failure:
        this.host === null
          ? `${vanished}, and no worker said it runs the agent within ${seconds} s: this attempt's work is lost`
          : `${vanished}; its worker ${this.host} stopped reporting ${seconds} s ago: this attempt's work is lost`,
    };
  }
}
