// The real Claude Code CLI (the pinned devDependency) against the loopback Messages API stub: a stalled agent is detected,
// resumed with --resume and completes while the others are unaffected; live progress grows while a slow agent runs.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createClaudeExecutor } from '../../scripts/lib/agents/claude-agent.ts';
import type { LiveProgress } from '../../scripts/lib/agents/claude-stream.ts';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { readResultFile } from '../../scripts/lib/execution/result-file.ts';
import { REAL_CLAUDE, argLoggingClaude, claudeProject, loggedArgs, tempDir, useMarkerStub } from '../support/claude-fixtures.ts';
import { stubEnv } from '../support/messages-api-stub.ts';
import { start } from '../support/project.ts';
import { agentContext } from '../support/agent-context.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const STREAM = ['-p', '--output-format', 'stream-json', '--verbose'];

const { stub, requestsWith } = useMarkerStub();

describe('stall detection with the real claude CLI', () => {
  it('the API never answers one agent: it is recorded stalled, resumed with --resume of its own session, and completes; the others are unaffected', async () => {
    const project = await claudeProject('dto-stall-real-');
    const home = await tempDir('dto-stall-home-');
    const bin = await argLoggingClaude();
    const env = { ...stubEnv(stub(), home), CLAUDE_BIN: bin };
    const names = ['stuck', 'calm1', 'calm2'];
    const logs = Object.fromEntries(await Promise.all(names.map(async (name) => [name, await tempDir(`dto-args-${name}-`)] as const)));
    const marker = (name: string) => (name === 'stuck' ? '[[stub:hang_once:stuck]]' : `[[stub:answer:${name}]]`);
    const results = await Promise.all(
      names.map((name) =>
        start(
          'spawn-agent',
          ['--task_name', name, '--goal', `Reply. ${marker(name)}`, '--session_id', 'stall', '--stall_timeout', '5', '--retries', '2'],
          project.dir,
          {
            ...env,
            ARGS_LOG: logs[name]!,
          },
        ),
      ),
    );
    expect(results.map((r) => [r.exitCode, r.stderr])).toEqual(names.map(() => [0, '']));
    const state = (await project.state())!;
    const stuck = state.tasks.stuck!;
    expect(stuck).toMatchObject({ status: 'completed', attempts: 2, error: null });
    expect(stuck.claude_session_id).toMatch(UUID);
    expect((await readResultFile(stuck.result_path!))!.body).toBe('Answer for stuck.\n');
    const stuckEvents = (await readEvents(project.paths.eventsPath)).filter((e) => e.task === 'stuck');
    expect(stuckEvents.map((e) => e.type)).toEqual(['registered', 'started', 'retrying', 'started', 'completed']);
    expect(JSON.stringify(stuckEvents[2])).toMatch(/stalled: no output for [5-9] s/);
    // The second run resumed the first one's own Claude session; the resumed conversation reached the API.
    const runs = await loggedArgs(logs.stuck!);
    expect(runs).toEqual([STREAM, [...STREAM, '--resume', stuck.claude_session_id!]]);
    expect(requestsWith('[[stub:hang_once:stuck]]').length).toBeGreaterThanOrEqual(2);
    for (const name of ['calm1', 'calm2']) {
      expect(state.tasks[name]).toMatchObject({ status: 'completed', attempts: 1, error: null });
      expect(await loggedArgs(logs[name]!)).toEqual([STREAM]);
    }
  });
});

describe('live progress with the real claude CLI', () => {
  it('while a slow agent runs, the reported turns, tokens and estimated cost grow; the final report carries the CLI cost', async () => {
    const dir = await tempDir('dto-live-real-');
    const home = await tempDir('dto-live-home-');
    await mkdir(path.join(dir, 'work'));
    const progress: Array<LiveProgress & { at: number }> = [];
    const ctx = agentContext(path.join(dir, 'work'), {
      taskName: 'live',
      goal: 'Look around, then reply. [[stub:slow_tools:live]]',
      resultPath: path.join(dir, 'live.md'),
      recordProgress: async (p) => void progress.push({ ...p, at: Date.now() }),
    });
    const executor = createClaudeExecutor({
      bin: REAL_CLAUDE,
      args: [...STREAM, '--model', 'claude-sonnet-4-5-20250929'],
      env: stubEnv(stub(), home),
      timeoutS: 120,
      retries: 0,
      backoffMs: 0,
      progressIntervalMs: 500,
    });
    const outcome = await executor(ctx);
    expect(outcome).toMatchObject({ status: 'completed', body: 'Answer for live.' });
    // Four answers 1.5 s apart (three tool calls, then the text): reports while it ran, then the final one.
    const during = progress.slice(0, -1);
    expect(during.length).toBeGreaterThanOrEqual(3);
    const turns = during.map((p) => p.turns);
    expect(turns).toEqual([...turns].sort((a, b) => a - b));
    expect(new Set(turns).size).toBeGreaterThanOrEqual(3);
    expect(during.map((p) => p.last_tool)).toContain('Glob');
    const estimates = during.map((p) => p.est_cost_usd!);
    expect(estimates.every((e) => typeof e === 'number')).toBe(true);
    expect(estimates).toEqual([...estimates].sort((a, b) => a - b));
    expect(estimates.at(-1)!).toBeGreaterThan(estimates[0]!);
    const inputs = during.map((p) => p.input_tokens);
    expect(inputs.at(-1)!).toBeGreaterThan(inputs[0]!);
    const last = progress.at(-1)!;
    expect(last.turns).toBe(outcome.record!.num_turns);
    expect(last.est_cost_usd!).toBeCloseTo(outcome.record!.cost_usd!, 9);
    expect(last.est_cost_usd!).toBeGreaterThanOrEqual(estimates.at(-1)!);
  });
});
