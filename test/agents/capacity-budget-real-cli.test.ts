// The real Claude Code CLI (the pinned devDependency) against a loopback Messages API stub that rate-limits by concurrency
// or prices each turn: the session's adaptive limit (AIMD) cuts the 429s, and the session budget stops new starts.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { REAL_CLAUDE, claudeProject, tempDir } from '../support/claude-fixtures.ts';
import { markerReplies, startMessagesApiStub, stubEnv, type MessagesApiStub } from '../support/messages-api-stub.ts';
import { run, start } from '../support/project.ts';

/** A YAML plan of `count` independent tasks whose prompts carry `marker(i)`. */
async function plan(dir: string, count: number, marker: (i: number) => string): Promise<string> {
  const file = path.join(dir, 'plan.yaml');
  const tasks = Array.from(
    { length: count },
    (_, i) => `  - id: t${String(i + 1).padStart(2, '0')}\n    goal: "Reply. ${marker(i + 1)}"\n`,
  );
  await writeFile(file, `tasks:\n${tasks.join('')}`);
  return file;
}

/** Runs a plan with real claude agents against `stub`; returns the exit code, output, final state and events. */
async function orchestrate(
  stub: MessagesApiStub,
  marker: (i: number) => string,
  count: number,
  flags: string[],
  env: Record<string, string> = {},
) {
  const project = await claudeProject('dto-aimd-');
  const home = await tempDir('dto-aimd-home-');
  const file = await plan(project.dir, count, marker);
  const result = await run('orchestrate', [file, '--agent', 'claude', '--skip_preflight', ...flags], project.dir, {
    ...stubEnv(stub, home),
    CLAUDE_BIN: REAL_CLAUDE,
    ...env,
  });
  const state = (await project.state())!;
  const events = await readEvents(project.paths.eventsPath);
  return { result, state, events };
}

describe('rate-limit-adaptive concurrency with the real claude CLI', () => {
  let stub: MessagesApiStub;
  beforeAll(async () => {
    // More than 3 requests in flight: HTTP 429 with retry-after: 1. An accepted `contended` answer is held until 12
    // requests were refused meanwhile, or 5 s pass with none refused: each answer costs the agents that push in 12 429s
    // however fast or slow they retry, so the two runs compare by contention, not by the machine's speed.
    stub = await startMessagesApiStub(markerReplies(), { maxInFlight: 3, retryAfterS: 1, hold: { refusals: 12, quietMs: 5000 } });
  });
  afterAll(async () => {
    await stub.close();
  });

  it('12 tasks with --max_workers 8 all complete; the limit drops and recovers; at least 3x fewer 429s than with --adaptive off', async () => {
    // Quick recovery for the test: grow after 2 s without a rate limit; one halving per 1.5 s burst.
    const env = { DTO_CAPACITY_QUIET_MS: '8000', DTO_CAPACITY_WINDOW_MS: '500' };
    // Room for every refusal a task may meet with adaptation off (each 429 ends a try: CLAUDE_CODE_MAX_RETRIES=0).
    const flags = ['--workers', '8', '--retries', '20', '--backoff_ms', '0'];
    const before = stub.rateLimited;
    const adaptive = await orchestrate(stub, (i) => `[[stub:contended:a${i}]]`, 12, flags, env);
    const adaptive429 = stub.rateLimited - before;
    const off = await orchestrate(stub, (i) => `[[stub:contended:o${i}]]`, 12, [...flags, '--adaptive', 'off'], env);
    const off429 = stub.rateLimited - before - adaptive429;

    const statuses = (state: typeof adaptive.state) => Object.values(state.tasks).map((task) => task.status);
    expect(adaptive.result.exitCode, adaptive.result.all).toBe(0);
    expect(statuses(adaptive.state)).toEqual(Array(12).fill('completed'));
    const changes = adaptive.events.filter((e) => e.type === 'capacity');
    const drops = changes.filter((e) => (e.new_limit as number) < (e.old_limit as number));
    const rises = changes.filter((e) => (e.new_limit as number) > (e.old_limit as number));
    expect(drops.length).toBeGreaterThanOrEqual(1);
    expect(drops[0]).toMatchObject({
      old_limit: 8,
      new_limit: 4,
      why: expect.stringMatching(/HTTP 429 rate_limit seen by t\d\d: limit halved/),
    });
    expect(rises.length).toBeGreaterThanOrEqual(1);
    expect(adaptive.state.capacity.hits).toBe(adaptive429);
    // With adaptation off every task still completes or runs out of retries, but many more requests are refused.
    expect(off.state.capacity).toMatchObject({ adaptive: false, limit: null });
    expect(off.events.filter((e) => e.type === 'capacity')).toEqual([]);
    expect(adaptive429).toBeGreaterThan(0);
    if (process.env.DTO_E2E_FIGURES) console.log(`429s: adaptive ${adaptive429}, off ${off429}`);
    expect(off429, `429s: adaptive ${adaptive429}, off ${off429}`).toBeGreaterThanOrEqual(3 * adaptive429);
  }, 240_000);
});

describe('rate-limit-adaptive concurrency in background mode with the real claude CLI', () => {
  let stub: MessagesApiStub;
  beforeAll(async () => {
    stub = await startMessagesApiStub(markerReplies(), { maxInFlight: 3, retryAfterS: 1 });
  });
  afterAll(async () => {
    await stub.close();
  });

  it('12 spawn-agent processes started at once with --max_workers 8 all complete; the shared limit drops and recovers', async () => {
    const project = await claudeProject('dto-aimd-bg-');
    const home = await tempDir('dto-aimd-bg-home-');
    const env = { ...stubEnv(stub, home), CLAUDE_BIN: REAL_CLAUDE, DTO_CAPACITY_QUIET_MS: '8000', DTO_CAPACITY_WINDOW_MS: '500' };
    const names = Array.from({ length: 12 }, (_, i) => `b${String(i + 1).padStart(2, '0')}`);
    const starts = await Promise.all(
      names.map((name) =>
        start(
          'spawn-agent',
          [
            '--task_name',
            name,
            '--goal',
            `Reply. [[stub:slow:${name}]]`,
            '--session_id',
            'bg',
            '--max_workers',
            '8',
            '--retries',
            '20',
            '--backoff_ms',
            '0',
          ],
          project.dir,
          env,
        ),
      ),
    );
    expect(starts.map((r) => r.exitCode)).toEqual(names.map(() => 0));
    // Queued tasks are started by the agents that free slots; wait for the session to end.
    const poll = await run('poll-session', ['--timeout', '150'], project.dir, env);
    expect(poll.exitCode, poll.all).toBe(0);
    const state = (await project.state())!;
    expect(Object.values(state.tasks).map((task) => task.status)).toEqual(names.map(() => 'completed'));
    const changes = (await readEvents(project.paths.eventsPath)).filter((e) => e.type === 'capacity');
    expect(changes[0]).toMatchObject({ old_limit: 8, new_limit: 4 });
    expect(changes.some((e) => (e.new_limit as number) > (e.old_limit as number))).toBe(true);
    expect(state.capacity.hits).toBeGreaterThan(0);
  }, 240_000);
});

describe('the session budget with the real claude CLI', () => {
  let stub: MessagesApiStub;
  beforeAll(async () => {
    stub = await startMessagesApiStub(markerReplies());
  });
  afterAll(async () => {
    await stub.close();
  });

  it('with a budget for about half the tasks: spent <= budget + one turn, the rest skipped for the budget, exit 1', async () => {
    // One turn of claude-haiku-4-5 with 10,000 input and 1,000 output tokens: $0.015 (the CLI's own total_cost_usd).
    const turn = 0.015;
    const budget = 0.09;
    const { result, state, events } = await orchestrate(stub, (i) => `[[stub:priced:b${i}]]`, 12, [
      '--workers',
      '2',
      '--model',
      'claude-haiku-4-5',
      '--budget_usd',
      String(budget),
    ]);
    expect(result.exitCode, result.all).toBe(1);
    const tasks = Object.values(state.tasks);
    const completed = tasks.filter((task) => task.status === 'completed');
    const skipped = tasks.filter((task) => task.status === 'skipped');
    expect(completed.length + skipped.length).toBe(12);
    expect(completed.length).toBeGreaterThanOrEqual(4);
    expect(completed.length).toBeLessThanOrEqual(6);
    for (const task of completed) expect(task.cost_usd).toBeCloseTo(turn, 9);
    const spent = tasks.reduce((sum, task) => sum + (task.cost_usd ?? 0), 0);
    expect(spent).toBeLessThanOrEqual(budget + turn + 1e-9);
    for (const task of skipped) expect(task.error).toMatch(/^budget: \$0\.0\d{3} of \$0\.0900 spent/);
    expect(events.filter((e) => e.type === 'budget')).toHaveLength(1);
    expect(state.budget).toMatchObject({ usd: budget, on_budget: 'finish' });
    expect(result.all).toMatch(/Budget: \$0\.0900, spent \$0\.0\d{3}, overshoot \$0\.0\d{3} \(--on_budget finish; reached/);
  }, 180_000);

  it('background mode: spawn-agent processes share the budget the first one set; the rest are skipped for the budget', async () => {
    const project = await claudeProject('dto-budget-bg-');
    const home = await tempDir('dto-budget-bg-home-');
    const env = { ...stubEnv(stub, home), CLAUDE_BIN: REAL_CLAUDE };
    const spawn = (name: string, extra: string[] = []) =>
      start(
        'spawn-agent',
        ['--task_name', name, '--goal', `Reply. [[stub:priced:${name}]]`, '--session_id', 'money', '--model', 'claude-haiku-4-5', ...extra],
        project.dir,
        env,
      );
    // The first agent sets the budget ($0.045: room for two $0.015 turns) and the worker limit; the others only join.
    const first = await spawn('m01', ['--budget_usd', '0.045', '--max_workers', '1']);
    expect(first.exitCode, first.all).toBe(0);
    const rest = await Promise.all(['m02', 'm03', 'm04', 'm05'].map((name) => spawn(name)));
    expect(rest.map((r) => r.exitCode)).toEqual([0, 0, 0, 0]);
    const poll = await run('poll-session', ['--timeout', '120'], project.dir, env);
    expect(poll.exitCode, poll.all).toBe(1);
    const state = (await project.state())!;
    const tasks = Object.values(state.tasks);
    expect(tasks.filter((task) => task.status === 'completed')).toHaveLength(2);
    const skipped = tasks.filter((task) => task.status === 'skipped');
    expect(skipped).toHaveLength(3);
    for (const task of skipped) expect(task.error).toMatch(/^budget: \$0\.0300 of \$0\.0450 spent/);
    expect(tasks.reduce((sum, task) => sum + (task.cost_usd ?? 0), 0)).toBeCloseTo(0.03, 9);
  }, 180_000);
});
