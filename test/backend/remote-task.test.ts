// runRemoteTask against a scripted queue (no server): how a job's states, starts and result become the task's outcome, attempts and hosts.
import { describe, expect, it } from 'vitest';
import { runRemoteTask, UNREPORTED_HOST, type BullmqBackend, type TaskQueue } from '../../scripts/lib/backend/bullmq-backend.ts';
import { remoteExecutorFor } from '../../scripts/lib/backend/backend-options.ts';
import { openSession } from '../../scripts/lib/scheduling/transitions.ts';
import { updateState } from '../../scripts/lib/state/state-store.ts';
import { tempProject } from '../support/project.ts';
import { parseConnection } from '../../scripts/lib/backend/connection.ts';
import { JobWakeups } from '../../scripts/lib/backend/job-wakeups.ts';
import { TaskJobDataSchema } from '../../scripts/lib/backend/job-data.ts';
import type { AgentContext } from '../../scripts/lib/agents/agent-types.ts';
import type { HandInQueue } from '../../scripts/lib/backend/hand-in.ts';
import type { TaskJobProgress, TaskJobResult } from '../../scripts/lib/backend/job-data.ts';
import { agentContext } from '../support/agent-context.ts';

/** One step of the scripted job: its state, progress and return value at that moment. */
interface Moment {
  state: 'waiting' | 'active' | 'completed' | 'failed';
  progress?: TaskJobProgress;
  returnvalue?: TaskJobResult | null;
  failedReason?: string;
}

const progress = (host: string, start: number): TaskJobProgress => ({
  host,
  start,
  started_at: '2026-01-01T00:00:00.000Z',
  rate_limits: 0,
  last_rate_limit: null,
  live: null,
});
const result = (host: string, start: number): TaskJobResult => ({
  status: 'completed',
  body: '# done\n',
  error: null,
  frontmatter: {},
  record: {},
  host,
  start,
  started_at: '2026-01-01T00:00:00.000Z',
  ended_at: '2026-01-01T00:00:01.000Z',
});

/**
 * A queue whose job moves one moment further on every read (getJob or getJobState), as a job on a
 * live server moves on between two round trips. Records the jobs added.
 */
function scriptedQueue(moments: Moment[]) {
  let tick = 0;
  const added: Array<{ name: string; data: unknown; opts: unknown }> = [];
  const now = () => moments[Math.min(tick++, moments.length - 1)]!;
  const queue = {
    add: async (name: string, data: unknown, opts: unknown) => {
      added.push({ name, data, opts });
      return {};
    },
    getJobState: async () => now().state,
    getJob: async () => {
      const moment = now();
      return { progress: moment.progress ?? 0, returnvalue: moment.returnvalue ?? null, failedReason: moment.failedReason };
    },
    remove: async () => 1,
  } as unknown as TaskQueue;
  return { queue, added };
}

function fakeContext() {
  const calls: string[] = [];
  const ctx: AgentContext = agentContext('/tmp', { taskName: 'T1', goal: 'do T1', session_id: 'S1' });
  ctx.markRunning = async () => {
    calls.push('markRunning');
    ctx.attempt += 1;
  };
  return { ctx, calls };
}

const connection = parseConnection('postgres://dto:pw@127.0.0.1:5432/postgres');
/** A hand-in queue with nothing handed in. */
const noHandIns = { getJob: async () => undefined, add: async () => ({}), remove: async () => 1 } as unknown as HandInQueue;
const run = (queue: TaskQueue, ctx: AgentContext) =>
  runRemoteTask({
    queue,
    handIns: noHandIns,
    ctx,
    knobs: { delayMs: 5 },
    runner: 'mock',
    wakeups: new JobWakeups(),
    pollMs: 0,
    log: () => {},
    connection,
  });

describe('runRemoteTask (the BullMQ executor) against a scripted queue', () => {
  it('takes the result of a job that completes between reading its state and reading the job, instead of failing on its empty return value', async () => {
    // The job is active at the first read and completed from the second on: a job read first, then
    // its state, would pair "completed" with the active job's empty return value.
    const { queue } = scriptedQueue([
      { state: 'active', progress: progress('w1', 1) },
      { state: 'completed', progress: progress('w1', 1), returnvalue: result('w1', 1) },
    ]);
    const { ctx } = fakeContext();
    const outcome = await run(queue, ctx);
    expect(outcome.status).toBe('completed');
    expect(outcome.body).toBe('# done\n');
    expect(outcome.frontmatter).toMatchObject({ host: 'w1' });
  });

  it('adds the job once under <session>@<opened>@<task>@<attempt> with the task as data, never a command', async () => {
    const { queue, added } = scriptedQueue([{ state: 'completed', progress: progress('w1', 1), returnvalue: result('w1', 1) }]);
    const { ctx } = fakeContext();
    await run(queue, { ...ctx, session_created_at: '2026-12-06T03:17:47.123Z' });
    expect(added.length).toBe(1);
    expect(added[0]!.opts).toMatchObject({ jobId: 'S1@20261206031747123@T1@1', attempts: 1 });
    expect(added[0]!.data).toMatchObject({
      v: 1,
      session_id: 'S1',
      task: 'T1',
      runner: 'mock',
      goal: 'do T1',
      mock: { delay_ms: 5, fail: false },
    });
  });

  it('counts a second start of the job (a stalled job taken over by another worker) as another attempt, with its host', async () => {
    const { queue } = scriptedQueue([
      { state: 'active', progress: progress('w1', 1) },
      { state: 'active', progress: progress('w1', 1) },
      { state: 'active', progress: progress('w2', 2) },
      { state: 'active', progress: progress('w2', 2) },
      { state: 'completed', progress: progress('w2', 2), returnvalue: result('w2', 2) },
    ]);
    const { ctx, calls } = fakeContext();
    const outcome = await run(queue, ctx);
    expect(outcome.status).toBe('completed');
    expect(calls).toEqual(['markRunning']);
    expect(outcome.record?.attempt_hosts).toEqual([
      { attempt: 1, host: 'w1' },
      { attempt: 2, host: 'w2' },
    ]);
  });

  it('records a start whose worker died before reporting (seen only as the next start) on an unknown host, so attempts and hosts agree', async () => {
    // The first worker took the job and was killed before its first progress update: the first start ever seen is the second.
    const { queue } = scriptedQueue([
      { state: 'active', progress: progress('w2', 2) },
      { state: 'completed', progress: progress('w2', 2), returnvalue: result('w2', 2) },
    ]);
    const { ctx, calls } = fakeContext();
    const outcome = await run(queue, ctx);
    expect(outcome.status).toBe('completed');
    expect(calls).toEqual(['markRunning']);
    expect(outcome.record?.attempt_hosts).toEqual([
      { attempt: 1, host: UNREPORTED_HOST },
      { attempt: 2, host: 'w2' },
    ]);
  });

  it('reports a job failed on the worker (refused, or stalled too often) as a failed outcome with its reason', async () => {
    const { queue } = scriptedQueue([{ state: 'failed', failedReason: 'task T1 needs a mock agent but worker w1 runs claude agents' }]);
    const { ctx } = fakeContext();
    const outcome = await run(queue, ctx);
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toContain('needs a mock agent');
  });

  it('fails a task whose job returned something that is not a task result (data from the network is checked)', async () => {
    const { queue } = scriptedQueue([{ state: 'completed', returnvalue: { status: 'completed', body: 42 } as unknown as TaskJobResult }]);
    const { ctx } = fakeContext();
    const outcome = await run(queue, ctx);
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toContain('not a task result');
  });
});

describe('the BullMQ executor and the session limits', () => {
  it("passes a rate limit the remote agent hit on to the session (once per report), like a local agent's", async () => {
    const limited = { ...progress('w1', 1), rate_limits: 1, last_rate_limit: { status: 429, error: 'rate_limit', reset_at: null } };
    const { queue } = scriptedQueue([
      { state: 'active', progress: progress('w1', 1) },
      { state: 'active', progress: limited },
      { state: 'active', progress: limited },
      { state: 'active', progress: limited },
      { state: 'completed', progress: limited, returnvalue: result('w1', 1) },
    ]);
    const { ctx } = fakeContext();
    const reports: unknown[] = [];
    ctx.reportRateLimit = async (signal) => {
      reports.push(signal);
    };
    await run(queue, ctx);
    expect(reports).toEqual([{ status: 429, error: 'rate_limit', resetAt: null }]);
  });

  it("sets the queue's global concurrency to the session's effective limit (lowered by the adaptive limit) before adding a job", async () => {
    const project = await tempProject();
    await updateState(project.paths, (tx) => {
      const state = openSession(tx, { sessionId: 'S1', maxWorkers: 8 });
      state.capacity.limit = 2;
    });
    const limits: number[] = [];
    const backend = {
      executorFor: () => async () => ({ status: 'completed' as const, body: '' }),
      syncConcurrency: async (limit: number) => {
        limits.push(limit);
      },
    } as unknown as BullmqBackend;
    const { ctx } = fakeContext();
    await remoteExecutorFor(backend, project.paths, 'mock')({})(ctx);
    expect(limits).toEqual([2]);
  });
});

describe('task job data', () => {
  it('carries the result of a dependency named __proto__ (a valid task name) instead of dropping it', () => {
    const data = TaskJobDataSchema.parse(
      JSON.parse(
        JSON.stringify({
          v: 1,
          session_id: 'S1',
          task: 'T1',
          attempt: 1,
          agent: 'Agent-01',
          runner: 'mock',
          goal: 'g',
          dependency_results: [{ task: '__proto__', body: 'proto result' }],
        }),
      ),
    );
    expect(data.dependency_results).toEqual([{ task: '__proto__', body: 'proto result' }]);
  });
});

describe('JobWakeups', () => {
  const raceWithTimer = (wait: Promise<void>) =>
    Promise.race([wait.then(() => 'woken'), new Promise((resolve) => setTimeout(resolve, 50, 'still waiting'))]);

  it('wakes a follower at once for an event that came while it was looking at the job, instead of sleeping a whole poll', async () => {
    const wakeups = new JobWakeups();
    wakeups.follow('j1');
    const mark = wakeups.mark('j1');
    wakeups.notify('j1'); // Arrives between the look and the wait.
    expect(await raceWithTimer(wakeups.next('j1', mark, new AbortController().signal, 60_000))).toBe('woken');
  });

  it('waits for the next event of its own job only', async () => {
    const wakeups = new JobWakeups();
    wakeups.follow('j1');
    wakeups.follow('j2');
    const wait = wakeups.next('j1', wakeups.mark('j1'), new AbortController().signal, 60_000);
    wakeups.notify('j2');
    wakeups.notify('unfollowed');
    expect(await raceWithTimer(wait)).toBe('still waiting');
    wakeups.notify('j1');
    expect(await raceWithTimer(wait)).toBe('woken');
    expect(wakeups.mark('j1')).toBe(1);
    expect(wakeups.mark('unfollowed')).toBe(0);
  });
});
