// The BullMQ server gone mid-run, end to end on a real Redis (issue 21, item 16): stopped while agents run on a worker
// (told, redacted, and SIGTERM still stops the run), and restarted without persistence (the finished agents' results are
// handed in and kept, nobody is blamed).
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { start, tempProject } from '../support/project.ts';
import { serverSkipReason, startRedis, type RedisServer } from '../support/servers.ts';
import { killWorkers, startWorkerProc, stopWorkers, type WorkerProc } from './worker-procs.ts';

const workers: WorkerProc[] = [];
const dirs: string[] = [];
const servers: RedisServer[] = [];

const uniqueQueue = (label: string) => `${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

async function until(what: string, check: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.skipIf(serverSkipReason('redis') !== null)('BullMQ: the server gone mid-run', () => {
  afterAll(async () => {
    await killWorkers(workers);
    for (const server of servers) await server.stop();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  /** Redis, a worker and `orchestrate` of two tasks of `delayMs` each, once both run on the worker. */
  async function twoRunningTasks(delayMs: number) {
    const server = await startRedis();
    servers.push(server);
    const queue = uniqueQueue('outage');
    const worker = await startWorkerProc({ name: 'host-r', queue, concurrency: 2, url: server.url, dirs, workers });
    const project = await tempProject();
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      ['tasks:', ...['A', 'B'].map((id) => `  - { id: ${id}, goal: "do ${id}", delay_ms: ${delayMs} }`)].join('\n'),
    );
    const orchestration = start('orchestrate', ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--queue', queue], project.dir, {
      DTO_BULLMQ_CONNECTION: server.url,
    });
    let output = '';
    orchestration.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await until('both tasks to start on the worker', () => worker.lines.filter((l) => l.event === 'started').length === 2);
    return { server, worker, project, orchestration, output: () => output };
  }

  it('stopped: orchestrate says the server does not answer (redacted), and SIGTERM still stops it, its tasks ended', async () => {
    const { server, worker, project, orchestration, output } = await twoRunningTasks(60_000);
    await server.stop();
    await until('the warning about the server', () => output().includes('does not answer'), 30_000);
    orchestration.kill('SIGTERM');
    const result = await orchestration;
    await killWorkers([worker]);
    // Ended by its own SIGTERM handling, not by the SIGKILL that follows 5 s later.
    expect(result.signal, result.all).toBeUndefined();
    expect(result.exitCode, result.all).not.toBe(0);
    expect(result.all).toContain(`The BullMQ server at redis://:***@127.0.0.1:${server.port}/0 does not answer`);
    expect(result.all).not.toContain(server.password);
    const state = (await project.state())!;
    for (const name of ['A', 'B']) {
      expect(state.tasks[name]!.status, name).not.toBe('running');
      expect(state.tasks[name]!.error, name).toContain('SIGTERM');
    }
  }, 180_000);

  it('restarted without persistence: the agents that finished meanwhile hand their results in; the run completes, nobody blamed', async () => {
    const { server, worker, project, orchestration } = await twoRunningTasks(6_000);
    await server.stop();
    await sleep(1000);
    servers.push(await startRedis({ port: server.port }));
    const result = await orchestration;
    await stopWorkers([worker]);
    expect(result.exitCode, `${result.all}\n${JSON.stringify(worker.lines)}\n${worker.stderr.join('')}`).toBe(0);
    expect(result.all).not.toMatch(/someone/);
    expect(result.all).toMatch(/A: job \S+ vanished from the queue at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0 \(the server lost it/);
    expect(result.all).toContain('its worker host-r handed the result in');
    expect(
      worker.lines
        .filter((l) => l.event === 'handed_in')
        .map((l) => l.task)
        .sort(),
    ).toEqual(['A', 'B']);
    const state = (await project.state())!;
    for (const name of ['A', 'B']) {
      expect(state.tasks[name]!.status, name).toBe('completed');
      expect(state.tasks[name]!.attempts, name).toBe(1);
      expect(await readFile(path.join(project.dir, '.agent/results', `${name}.md`), 'utf8')).toContain('SIMULATED');
    }
  }, 180_000);
});
