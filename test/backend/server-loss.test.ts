// The BullMQ server away or back without its data, against scripted queues (no server): told once and redacted, bounded
// by the outage limit, deaf to nothing (abort), and a lost job's result taken from its worker's hand-in (issue 21, item 16).
import { describe, expect, it } from 'vitest';
import { runRemoteTask, type TaskQueue } from '../../scripts/lib/backend/bullmq-backend.ts';
import { parseConnection } from '../../scripts/lib/backend/connection.ts';
import { HandInWriter, LOST_JOB_GRACE_MS, LostJobWatch, type HandIn, type HandInQueue } from '../../scripts/lib/backend/hand-in.ts';
import { JobWakeups } from '../../scripts/lib/backend/job-wakeups.ts';
import type { TaskJobResult } from '../../scripts/lib/backend/job-data.ts';
import { bounded, ServerOutage, ServerTimeoutError } from '../../scripts/lib/backend/server-calls.ts';
import { agentContext } from '../support/agent-context.ts';

const connection = parseConnection('redis://:hunter2-secret@127.0.0.1:6390/0');
const result: TaskJobResult = {
  status: 'completed',
  body: '# done on w1\n',
  error: null,
  frontmatter: {},
  record: {},
  host: 'w1',
  start: 1,
  started_at: '2026-01-01T00:00:00.000Z',
  ended_at: '2026-01-01T00:00:01.000Z',
};

/** A hand-in queue in memory, as the worker's HandInWriter and the orchestrator's LostJobWatch use it. */
function memoryHandIns() {
  const entries = new Map<string, { data: HandIn }>();
  const queue = {
    getJob: async (id: string) => {
      const entry = entries.get(id);
      return entry && { data: entry.data, updateData: async (data: HandIn) => void (entry.data = data) };
    },
    add: async (_name: string, data: HandIn, opts: { jobId: string }) => {
      if (!entries.has(opts.jobId)) entries.set(opts.jobId, { data });
      return {};
    },
    remove: async (id: string) => (entries.delete(id) ? 1 : 0),
  } as unknown as HandInQueue;
  return { queue, entries };
}

/** A queue whose every call fails as a refused connection does (Redis stopped). */
const refusing = {
  add: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6390'), { code: 'ECONNREFUSED' })),
  getJobState: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6390'), { code: 'ECONNREFUSED' })),
  getJob: async () => Promise.reject(new Error('Connection is closed.')),
  remove: async () => Promise.reject(new Error('Connection is closed.')),
} as unknown as TaskQueue;

/** A queue whose calls never answer (a Redis client queueing commands while its server is away). */
const silent = {
  add: () => new Promise(() => {}),
  getJobState: () => new Promise(() => {}),
  getJob: () => new Promise(() => {}),
  remove: () => new Promise(() => {}),
} as unknown as TaskQueue;

function follow(queue: TaskQueue, outage: ServerOutage, log: string[], signal?: AbortSignal) {
  const ctx = agentContext('/tmp', { taskName: 'T1', goal: 'do T1', session_id: 'S1' });
  if (signal) ctx.signal = signal;
  return runRemoteTask({
    queue,
    handIns: memoryHandIns().queue,
    ctx,
    knobs: {},
    runner: 'mock',
    wakeups: new JobWakeups(),
    pollMs: 5,
    log: (line) => log.push(line),
    connection,
    outage,
  });
}

describe('a server that does not answer', () => {
  it('is told once (redacted), and the task fails after the outage limit saying so, instead of waiting forever', async () => {
    const log: string[] = [];
    const outage = new ServerOutage(connection, (line) => log.push(line), 200);
    const outcome = await follow(refusing, outage, log);
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toMatch(
      /the BullMQ server at redis:\/\/:\*\*\*@127\.0\.0\.1:6390\/0 has not answered for \d+ s \(last error: connect ECONNREFUSED/,
    );
    expect(log.filter((line) => line.includes('does not answer')).length).toBe(1);
    expect(log[0]).toContain('redis://:***@127.0.0.1:6390/0');
    expect(JSON.stringify([log, outcome])).not.toContain('hunter2-secret');
  });

  it("a call that never answers does not hold the run: an abort (SIGTERM, cancel) ends the task within the cancel's bound", async () => {
    const controller = new AbortController();
    const outage = new ServerOutage(connection, () => {}, 60_000);
    const started = Date.now();
    const following = follow(silent, outage, [], controller.signal);
    setTimeout(() => controller.abort(new Error('orchestrator terminated by SIGTERM')), 100);
    await expect(following).rejects.toThrow('orchestrator terminated by SIGTERM');
    // The cancel's calls are bounded too (SHUTDOWN_CALL_TIMEOUT_MS each), far under the outage limit.
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it('bounded: a timeout error after its bound, the abort reason on abort', async () => {
    await expect(bounded(() => new Promise(() => {}), undefined, 20)).rejects.toBeInstanceOf(ServerTimeoutError);
    const controller = new AbortController();
    const pending = bounded(() => new Promise(() => {}), controller.signal, 60_000);
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
  });

  it('tells the end of an outage once, with its length', () => {
    const log: string[] = [];
    const outage = new ServerOutage(connection, (line) => log.push(line), 60_000);
    outage.failed(new Error('connect ECONNREFUSED'), 1_000);
    outage.failed(new Error('connect ECONNREFUSED'), 2_000);
    outage.answered(9_000);
    outage.answered(10_000);
    expect(log).toEqual([
      expect.stringContaining('does not answer (connect ECONNREFUSED)'),
      'The BullMQ server at redis://:***@127.0.0.1:6390/0 answers again after 8 s.',
    ]);
  });
});

describe('a job the server lost (restarted without persistence)', () => {
  const signal = new AbortController().signal;

  it('takes the result its worker handed in, after the worker said it still runs the agent; nobody is blamed', async () => {
    const { queue, entries } = memoryHandIns();
    const writer = new HandInWriter(queue, 'w1');
    const log: string[] = [];
    const watch = new LostJobWatch(queue, connection.redacted, (line) => log.push(line));
    expect(await watch.look('T1', 'j1', signal, 0)).toBeNull();
    await writer.alive('j1');
    expect(await watch.look('T1', 'j1', signal, 10_000)).toBeNull();
    await writer.alive('j1');
    // Alive past the grace counted from the loss: the counter moved, so it waits on.
    expect(await watch.look('T1', 'j1', signal, LOST_JOB_GRACE_MS + 5_000)).toBeNull();
    expect(await writer.deliver('j1', result)).toBe(true);
    expect(await watch.look('T1', 'j1', signal, LOST_JOB_GRACE_MS + 6_000)).toEqual({ result });
    expect(entries.has('j1')).toBe(false); // Taken, then removed.
    expect(log).toEqual([
      expect.stringMatching(
        /^T1: job j1 vanished from the queue at redis:\/\/:\*\*\*@127\.0\.0\.1:6390\/0 \(the server lost it: restarted without persistence, or the queue was emptied\); its worker w1 still runs the agent/,
      ),
      expect.stringContaining('its worker w1 handed the result in'),
    ]);
    expect(log.join('\n')).not.toMatch(/someone/);
  });

  it('a "still running" write under way when the result is handed in never covers the result', async () => {
    const { queue, entries } = memoryHandIns();
    // The second look is slow: without writes in order, its "running" would land after the "done".
    const delays = [0, 100, 0];
    const slow = {
      ...queue,
      getJob: async (id: string) => {
        await new Promise((resolve) => setTimeout(resolve, delays.shift() ?? 0));
        return queue.getJob(id);
      },
    };
    const writer = new HandInWriter(slow, 'w1');
    await writer.alive('j1');
    const late = writer.alive('j1');
    expect(await writer.deliver('j1', result)).toBe(true);
    await late;
    await writer.alive('j1'); // After the result: ignored.
    expect(entries.get('j1')!.data).toEqual({ v: 1, state: 'done', host: 'w1', result });
  });

  it('fails the attempt when no worker says it runs the agent within the grace, or its worker stops saying so', async () => {
    const none = new LostJobWatch(memoryHandIns().queue, connection.redacted, () => {});
    expect(await none.look('T1', 'j1', signal, 0)).toBeNull();
    const verdict = await none.look('T1', 'j1', signal, LOST_JOB_GRACE_MS);
    expect(verdict).toEqual({
      failure: expect.stringContaining("no worker said it runs the agent within 15 s: this attempt's work is lost"),
    });
    expect(JSON.stringify(verdict)).not.toMatch(/someone/);

    const { queue } = memoryHandIns();
    const writer = new HandInWriter(queue, 'w2');
    const quiet = new LostJobWatch(queue, connection.redacted, () => {});
    await writer.alive('j2');
    expect(await quiet.look('T1', 'j2', signal, 0)).toBeNull();
    expect(await quiet.look('T1', 'j2', signal, LOST_JOB_GRACE_MS + 1)).toEqual({
      failure: expect.stringContaining('its worker w2 stopped reporting 15 s ago'),
    });
  });
});
