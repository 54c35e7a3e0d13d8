// The BullMQ backend on Redis (the other engine BullMQ 6 runs on): a DAG on two workers, and a wrong password refused up front.
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, tempProject } from '../support/project.ts';
import { serverSkipReason, startRedis, type RedisServer } from '../support/servers.ts';
import { killWorkers, startWorkerProc, stopWorkers, type WorkerProc } from './worker-procs.ts';

const workers: WorkerProc[] = [];
const dirs: string[] = [];
let server: RedisServer | null = null;

describe.skipIf(serverSkipReason('redis') !== null)('BullMQ backend on Redis', () => {
  beforeAll(async () => {
    server = await startRedis();
  });

  afterAll(async () => {
    await killWorkers(workers);
    await server?.stop();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('runs a diamond on two workers in dependency order, recording each host, with the password nowhere', async () => {
    const group = await Promise.all(
      ['redis-a', 'redis-b'].map((name) => startWorkerProc({ name, queue: 'diamond', concurrency: 2, url: server!.url, dirs, workers })),
    );
    const project = await tempProject();
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      [
        'tasks:',
        '  - { id: A, goal: "do A", delay_ms: 200 }',
        '  - { id: B, goal: "do B", depends_on: [A], delay_ms: 200 }',
        '  - { id: C, goal: "do C", depends_on: [A], delay_ms: 200 }',
        '  - { id: D, goal: "do D", depends_on: [B, C], delay_ms: 200 }',
      ].join('\n'),
    );
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--queue', 'diamond'], project.dir, {
      DTO_BULLMQ_CONNECTION: server!.url,
    });
    await stopWorkers(group);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toContain(`Backend: BullMQ (redis) at redis://:***@127.0.0.1:${server!.port}/0`);
    const state = (await project.state())!;
    expect(Object.values(state.tasks).map((t) => t.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    expect(Date.parse(state.tasks.D!.started_at!)).toBeGreaterThanOrEqual(Date.parse(state.tasks.B!.ended_at!));
    for (const task of Object.values(state.tasks)) expect(['redis-a', 'redis-b']).toContain(task.attempt_hosts[0]?.host);
    expect(group.flatMap((w) => w.lines).filter((l) => l.event === 'completed').length).toBe(4);
    for (const text of [
      await readFile(project.paths.statePath, 'utf8'),
      await readFile(project.paths.eventsPath, 'utf8'),
      result.all ?? '',
    ])
      expect(text).not.toContain(server!.password);
  });

  it("refuses a wrong password with the server's reason, the connection masked, nothing registered", async () => {
    const project = await tempProject();
    await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - { id: A, goal: "do A", delay_ms: 10 }\n');
    const url = `redis://:not-${server!.password}@127.0.0.1:${server!.port}/0`;
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--connection', url], project.dir);
    expect(result.exitCode, result.all).toBe(2);
    expect(result.stderr).toContain(`Cannot reach the BullMQ backend (redis) at redis://:***@127.0.0.1:${server!.port}/0`);
    expect(result.stderr).toContain('WRONGPASS');
    expect(result.all).not.toContain(`not-${server!.password}`);
    expect(existsSync(project.paths.statePath)).toBe(false);
  });
});
