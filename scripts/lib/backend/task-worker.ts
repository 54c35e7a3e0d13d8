// The BullMQ backend on a worker host: pulls task jobs, runs their agent (mock or claude) in this host's checkout, reports progress and the result through the job.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import type { AgentContext, AgentExecutor, AgentOutcome } from '../agents/agent-types.ts';
import type { LiveProgress } from '../agents/claude-stream.ts';
import { createMockExecutor } from '../agents/mock-agent.ts';
import { errorMessage } from '../core/errors.ts';
import { resolveInside } from '../core/names.ts';
import type { RunnerKind } from '../state/model.ts';
import { openQueue, STALL_TIMING } from './bullmq-engine.ts';
import { CANCEL_POLL_MS } from './backend-names.ts';
import type { BackendConnection } from './connection.ts';
import { TaskJobDataSchema, type TaskJobData, type TaskJobProgress, type TaskJobResult } from './job-data.ts';
import { handInQueueName, HandInWriter } from './hand-in.ts';
import { bounded, OUTAGE_LIMIT_MS } from './server-calls.ts';

/** One look at a running job on the server: the orchestrator's cancel reason, and whether the job is gone (the server lost it). */
type JobLook = (jobId: string) => Promise<{ cancel: string | null; gone: boolean; answered: boolean }>;

/**
 * The look at a job whose agent just ended, waiting (every {@link CANCEL_POLL_MS}, up to
 * {@link OUTAGE_LIMIT_MS}) for a server that does not answer: only its answer tells whether the job
 * is still there to take the result, or was lost while the server was away.
 */
async function finalLook(lookAt: JobLook, jobId: string): Promise<{ gone: boolean }> {
  const deadline = Date.now() + OUTAGE_LIMIT_MS;
  for (;;) {
    const look = await lookAt(jobId);
    if (look.answered || Date.now() > deadline) return look;
    await delay(CANCEL_POLL_MS);
  }
}

/** One line of the worker's log (printed as JSON on stdout): a job started or ended on this worker. */
export interface WorkerLogLine {
  /** `handed_in`: its job was gone from the server, so the result went to the hand-in queue (hand-in.ts); `undelivered`: that failed too. */
  event: 'started' | 'completed' | 'failed' | 'refused' | 'handed_in' | 'undelivered';
  job: string;
  task: string;
  session_id: string;
  host: string;
  /** BullMQ's count of starts of the job (2 after a stalled job was taken over). */
  start: number;
  at: string;
  error?: string;
}

/** Options of {@link startTaskWorker}. */
export interface TaskWorkerOptions {
  connection: BackendConnection;
  queueName: string;
  /** Jobs this worker runs at once (the queue's global concurrency caps all workers together). */
  concurrency: number;
  /** The only agent kind this worker runs; a job asking for another fails with a clear error. */
  agent: RunnerKind;
  /** The claude executor (when `agent` is claude). */
  claudeExecutor?: AgentExecutor;
  /** The checkout agents work in (absolute). */
  cwd: string;
  /** This worker's name in the session's report (`attempt_hosts`). */
  name: string;
  log: (line: WorkerLogLine) => void;
  /** Stalled-job recovery timings (tests shorten them). @default {@link STALL_TIMING} */
  timing?: { lockDurationMs: number; stalledIntervalMs: number; maxStalledCount: number };
}

/**
 * Checks the server is reachable (a clear error naming the backend and the redacted connection
 * otherwise), then starts a BullMQ worker on the queue.
 * @returns the running worker; `worker.close()` lets running jobs finish, `close(true)` does not.
 * @throws OrchestratorError usage (exit 2) when the server cannot be reached.
 */
export async function startTaskWorker(options: TaskWorkerOptions): Promise<Worker> {
  // The queue stays open to look for cancellations of running jobs; closed with the worker.
  const { queue, engine } = await openQueue(options.connection, options.queueName);
  const handIns = new engine.classes.Queue(handInQueueName(options.queueName), { connection: engine.connection() });
  handIns.on('error', () => {
    // Best effort (hand-in.ts): a server that does not answer loses only the job it already lost.
  });
  const writer = new HandInWriter(handIns, options.name);
  const lookAt: JobLook = async (jobId) => {
    let fresh;
    try {
      fresh = await bounded(() => queue.getJob(jobId));
    } catch {
      return { cancel: null, gone: false, answered: false }; // No answer: nothing is known.
    }
    const parsed = TaskJobDataSchema.safeParse(fresh?.data);
    return { cancel: parsed.success ? parsed.data.cancel : null, gone: !fresh, answered: true };
  };
  const timing = options.timing ?? STALL_TIMING;
  const worker = new engine.classes.Worker(
    options.queueName,
    (job: Job, _token?: string, signal?: AbortSignal) => runJob(job, options, { lookAt, writer }, signal),
    {
      connection: engine.connection(),
      concurrency: options.concurrency,
      lockDuration: timing.lockDurationMs,
      stalledInterval: timing.stalledIntervalMs,
      maxStalledCount: timing.maxStalledCount,
      name: options.name,
    },
  );
  worker.on('error', () => {
    // Connection hiccups: BullMQ retries; a job's own failure is reported through the job.
  });
  worker.on(
    'closed',
    () => void Promise.all([queue, handIns].map((q) => bounded(() => q.close()).catch(() => undefined))).then(() => engine.close()),
  );
  await worker.waitUntilReady();
  return worker;
}

/** Writes the dependencies' result bodies under `<cwd>/.agent/remote-results/<session>/`, for the agent's prompt; returns their paths by task name. */
async function writeDependencyResults(cwd: string, data: TaskJobData): Promise<Record<string, string>> {
  const paths: Record<string, string> = Object.create(null) as Record<string, string>;
  if (data.dependency_results.length === 0) return paths;
  const dir = resolveInside(path.join(cwd, '.agent', 'remote-results'), data.session_id);
  await mkdir(dir, { recursive: true });
  for (const { task, body } of data.dependency_results) {
    const file = resolveInside(dir, `${task}.md`);
    await writeFile(file, body);
    // defineProperty: `__proto__` is a valid task name and must stay an own key.
    Object.defineProperty(paths, task, { value: file, enumerable: true, writable: true, configurable: true });
  }
  return paths;
}

/** The worker's log line maker for one start of a job (the job's task and session read defensively: its data is not validated yet). */
function jobLogger(job: Job, options: TaskWorkerOptions, start: number) {
  const field = (key: string) =>
    typeof job.data === 'object' && job.data && key in job.data ? String((job.data as Record<string, unknown>)[key]) : '?';
  return (event: WorkerLogLine['event'], extra: Partial<WorkerLogLine> = {}) =>
    options.log({
      event,
      job: job.id ?? '?',
      task: field('task'),
      session_id: field('session_id'),
      host: options.name,
      start,
      at: new Date().toISOString(),
      ...extra,
    });
}

/** A job's return value from the agent's outcome: scalar frontmatter only, the spending fields the orchestrator records, where and when it ran. */
function jobResult(
  outcome: AgentOutcome,
  status: TaskJobResult['status'],
  where: Pick<TaskJobResult, 'host' | 'start' | 'started_at'>,
): TaskJobResult {
  const frontmatter = Object.fromEntries(
    Object.entries(outcome.frontmatter ?? {}).filter(
      ([, value]) => value === null || ['string', 'number', 'boolean'].includes(typeof value),
    ),
  ) as Record<string, string | number | boolean | null>;
  const record = outcome.record ?? {};
  return {
    status,
    body: outcome.body,
    error: status === 'failed' ? (outcome.error ?? 'agent failed') : null,
    frontmatter,
    record: {
      cost_usd: record.cost_usd,
      input_tokens: record.input_tokens,
      output_tokens: record.output_tokens,
      num_turns: record.num_turns,
      permission_denials: record.permission_denials,
      claude_session_id: record.claude_session_id,
    },
    ...where,
    ended_at: new Date().toISOString(),
    ...(outcome.receipt ? { receipt: outcome.receipt } : {}),
  };
}

/**
 * Looks at a running job every {@link CANCEL_POLL_MS}: a cancel the orchestrator marked aborts the
 * agent; a job the server lost leaves the agent running and says so in the hand-in queue (hand-in.ts).
 */
function watchJob(jobId: string, server: { lookAt: JobLook; writer: HandInWriter }, controller: AbortController) {
  let orphaned = false;
  const timer = setInterval(() => {
    void server.lookAt(jobId).then(({ cancel, gone }) => {
      if (cancel !== null && !controller.signal.aborted) controller.abort(new Error(`cancelled by the orchestrator: ${cancel}`));
      if (gone && !controller.signal.aborted) {
        orphaned = true;
        void server.writer.alive(jobId);
      }
    });
  }, CANCEL_POLL_MS);
  return { stop: () => clearInterval(timer), orphaned: () => orphaned };
}

/** Runs one job: validates its data, runs the agent, returns the result (an agent failure is a result, not a job failure). */
async function runJob(
  job: Job,
  options: TaskWorkerOptions,
  server: { lookAt: JobLook; writer: HandInWriter },
  signal?: AbortSignal,
): Promise<TaskJobResult> {
  const start = Math.max(1, job.attemptsStarted);
  const line = jobLogger(job, options, start);
  const parsed = TaskJobDataSchema.safeParse(job.data);
  if (!parsed.success) {
    const error = `job ${job.id} is not a task of this orchestrator's version: ${parsed.error.issues[0]?.message}`;
    line('refused', { error });
    throw new UnrecoverableError(error);
  }
  const data = parsed.data;
  if (data.runner !== options.agent) {
    const error =
      `task ${data.task} needs a ${data.runner} agent but worker ${options.name} runs ${options.agent} agents ` +
      `(start a worker with --agent ${data.runner})`;
    line('refused', { error });
    throw new UnrecoverableError(error);
  }
  const startedAt = new Date().toISOString();
  let progress: TaskJobProgress = { host: options.name, start, started_at: startedAt, rate_limits: 0, last_rate_limit: null, live: null };
  await job.updateProgress(progress);
  line('started');
  const controller = new AbortController();
  signal?.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
  const executor =
    options.agent === 'mock'
      ? createMockExecutor({ delayMs: data.mock.delay_ms ?? undefined, fail: data.mock.fail })
      : options.claudeExecutor!;
  const ctx: AgentContext = {
    taskName: data.task,
    agent: data.agent,
    goal: data.goal,
    dependsOn: data.depends_on,
    files: data.files,
    attempt: data.attempt + start - 1,
    session_id: data.session_id,
    cwd: options.cwd,
    // The orchestrating host writes the result file; this path only names it in the agent's prompt.
    resultPath: path.join(options.cwd, '.agent', 'results', `${data.task}.md`),
    dependencyResults: await writeDependencyResults(options.cwd, data),
    signal: controller.signal,
    markRetrying: async () => {},
    markRunning: async () => {},
    budgetShareUsd: data.budget_share_usd,
    reportRateLimit: async (signal) => {
      const last = { status: signal.status, error: signal.error, reset_at: signal.resetAt?.toISOString() ?? null };
      progress = { ...progress, rate_limits: progress.rate_limits + 1, last_rate_limit: last };
      await job.updateProgress(progress);
    },
    recordProgress: async (live: LiveProgress) => {
      progress = { ...progress, live };
      await job.updateProgress(progress);
    },
  };
  // The orchestrator marks a job it no longer wants (its task was cancelled): stop the agent. A job the
  // server lost (restarted without persistence): the agent goes on, and says so where the orchestrator looks (hand-in.ts).
  const watch = watchJob(job.id!, server, controller);
  let outcome;
  try {
    outcome = await executor(ctx);
  } catch (error) {
    outcome = { status: 'failed' as const, body: '', error: errorMessage(controller.signal.aborted ? controller.signal.reason : error) };
  } finally {
    watch.stop();
  }
  const status = outcome.status === 'completed' ? 'completed' : 'failed';
  line(status, status === 'failed' ? { error: outcome.error ?? 'agent failed' } : {});
  const result = jobResult(outcome, status, { host: options.name, start, started_at: startedAt });
  // Its job gone from the server, the result is handed in beside the queue instead of lost with it.
  if (watch.orphaned() || (await finalLook(server.lookAt, job.id!)).gone) {
    const handedIn = await server.writer.deliver(job.id!, result);
    line(handedIn ? 'handed_in' : 'undelivered');
  }
  return result;
}
