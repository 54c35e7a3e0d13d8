// Stall detection (no output line for --stall_timeout) and the stream-json runner, with the fake claude: the run is ended,
// recorded `stalled` (transient) and resumed with --resume; progress is reported throttled while a run goes on.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createClaudeExecutor } from '../../scripts/lib/agents/claude-agent.ts';
import { classifyClaudeRun } from '../../scripts/lib/agents/claude-result.ts';
import { runClaude } from '../../scripts/lib/agents/claude-runner.ts';
import type { LiveProgress } from '../../scripts/lib/agents/claude-stream.ts';
import { isProcessRunning } from '../../scripts/lib/process/tree.ts';
import { fakeCalls, fakeProject, FAKE_CLAUDE_DIR, tempDir } from '../support/claude-fixtures.ts';
import { writeFile } from 'node:fs/promises';
import { run as runScript, tempProject } from '../support/project.ts';
import { agentContext } from '../support/agent-context.ts';

const FAKE = path.join(FAKE_CLAUDE_DIR, 'claude');
const STREAM = ['-p', '--output-format', 'stream-json', '--verbose'];
const REAL = JSON.parse(readFileSync(path.join(import.meta.dirname, '../fixtures/claude-2.1.330-outputs.json'), 'utf8')) as Record<
  string,
  { exitCode: number | null; signal: string | null; stdout: string; stderr: string }
>;

/** An agent context whose calls are recorded; `progress` collects recordProgress reports. */
async function context() {
  const dir = await tempDir();
  const calls: string[] = [];
  const progress: LiveProgress[] = [];
  const ctx = agentContext(dir, {
    markRetrying: async (reason) => void calls.push(`retrying: ${reason}`),
    markRunning: async () => void calls.push('running'),
    recordProgress: async (p) => void progress.push(p),
  });
  return { dir, ctx, calls, progress };
}

describe('runClaude: output read line by line, silence ends the run', () => {
  it('a run silent for the stall limit is ended with its whole tree and reported stalled, naming the silence', async () => {
    const pidsFile = path.join(await tempDir(), 'pids.json');
    const lines: string[] = [];
    const run = await runClaude({
      bin: FAKE,
      args: STREAM,
      prompt: 'hello',
      cwd: process.cwd(),
      env: { FAKE_CLAUDE_SCENARIO: 'hang', FAKE_CLAUDE_PIDS: pidsFile },
      timeoutMs: 60_000,
      stallTimeoutMs: 1500,
      killGraceMs: 1000,
      onLine: (line) => lines.push(line),
    });
    expect(run).toMatchObject({ stalled: true, timedOut: false, aborted: false });
    expect(run.silenceMs).toBeGreaterThanOrEqual(1500);
    expect(run.silenceMs).toBeLessThan(1500 * 4);
    const pids = JSON.parse(readFileSync(pidsFile, 'utf8')) as { child: number; grandchild: number };
    expect([isProcessRunning(pids.child), isProcessRunning(pids.grandchild)]).toEqual([false, false]);
    expect(lines.map((line) => (JSON.parse(line) as { subtype: string }).subtype)).toEqual(['init']);
    expect(classifyClaudeRun(run, { bin: 'claude', timeoutS: 60, stallTimeoutS: 1.5 })).toMatchObject({
      ok: false,
      kind: 'transient',
      code: 'stalled',
      message: expect.stringMatching(/^stalled: no output for [1-5] s, the claude process tree was terminated \(--stall_timeout 1\.5\)$/),
    });
  });

  it('output that keeps coming is no stall even when the whole run lasts longer than the limit; every line is delivered in order', async () => {
    const lines: string[] = [];
    const run = await runClaude({
      bin: FAKE,
      args: STREAM,
      prompt: 'fake-scenario:turns',
      cwd: process.cwd(),
      env: { FAKE_CLAUDE_STEP_MS: '250' },
      timeoutMs: 60_000,
      stallTimeoutMs: 1500,
      onLine: (line) => lines.push(line),
    });
    expect(run.stalled).toBe(false);
    expect(lines.map((line) => (JSON.parse(line) as { type: string }).type)).toEqual([
      'system',
      'assistant',
      'assistant',
      'user',
      'system',
      'assistant',
      'user',
      'assistant',
      'result',
    ]);
    expect(classifyClaudeRun(run, { bin: 'claude', timeoutS: 60 })).toMatchObject({
      ok: true,
      text: expect.stringContaining('TURNS ANSWER'),
    });
  });
});

describe('classification parity: a stream-json run gets the verdict of the same json run', () => {
  it.each([
    'success',
    'empty',
    'denials',
    'auth_401',
    'not_logged_in',
    'rate_limit',
    'rate_limit_exit_0',
    'overloaded',
    'connection',
    'max_turns',
    'max_budget',
    'success_exit_1',
    'crash',
    'garbage',
  ])('fake scenario %s', async (scenario) => {
    const once = (args: string[]) =>
      runClaude({ bin: FAKE, args, prompt: 'x', cwd: process.cwd(), env: { FAKE_CLAUDE_SCENARIO: scenario }, timeoutMs: 20_000 });
    const verdict = async (args: string[]) => {
      const v = classifyClaudeRun(await once(args), { bin: 'claude', timeoutS: 20 });
      // The session id and the argv echoed in the answer differ between the two runs.
      return JSON.parse(
        JSON.stringify(v)
          .replace(/fake-session-\d+/g, 'S')
          .replace(/argv: \[[^\]]*\]/g, 'argv'),
      ) as unknown;
    };
    expect(await verdict(STREAM)).toEqual(await verdict(['-p', '--output-format', 'json']));
  });

  it.each(Object.keys(REAL))('captured real output %s, as stream-json lines after a system/init line', (name) => {
    const real = REAL[name]!;
    const base = {
      exitCode: real.exitCode,
      signal: real.signal,
      stderr: real.stderr,
      durationMs: 1,
      timedOut: false,
      stalled: false,
      silenceMs: 0,
      aborted: false,
      abortReason: null,
      spawnError: null,
      pid: 1,
    };
    const stream =
      real.stdout.trim() === ''
        ? ''
        : `${JSON.stringify({ type: 'system', subtype: 'init', session_id: 'x' })}\n${JSON.stringify(JSON.parse(real.stdout))}\n`;
    const context = { bin: 'claude', timeoutS: 60 };
    expect(classifyClaudeRun({ ...base, stdout: stream }, context)).toEqual(classifyClaudeRun({ ...base, stdout: real.stdout }, context));
  });
});

describe('the claude executor: stalls resumed, progress reported', () => {
  it('a stalled run is retried at once with --resume <its session id> and a prompt to continue, then completes', async () => {
    const { dir, ctx, calls } = await context();
    const log = path.join(dir, 'log');
    const executor = createClaudeExecutor({
      bin: FAKE,
      args: STREAM,
      timeoutS: 60,
      stallTimeoutS: 1,
      retries: 2,
      backoffMs: 60_000,
      killGraceMs: 1000,
      env: { FAKE_CLAUDE_SCENARIO: 'stall_then_success', FAKE_CLAUDE_COUNTER: path.join(dir, 'n'), FAKE_CLAUDE_LOG: log },
    });
    const outcome = await executor(ctx);
    expect(outcome).toMatchObject({ status: 'completed', frontmatter: { tries: 2 } });
    const runs = (await fakeCalls(log)).sort((a, b) => a.argv.length - b.argv.length);
    expect(runs).toHaveLength(2);
    const first = runs[0]! as (typeof runs)[0] & { session: string };
    expect(first.argv).toEqual(STREAM);
    expect(runs[1]!.argv).toEqual([...STREAM, '--resume', first.session]);
    expect(runs[1]!.stdin).toMatch(/^Your previous run of this task was interrupted \(stalled: no output for \d s/);
    expect(runs[1]!.stdin).not.toContain('## Goal');
    expect(outcome.record).toMatchObject({ claude_session_id: first.session });
    // No backoff for a stall (the 60 s base would show as "in 6.0 s" or more).
    expect(calls).toEqual([
      expect.stringMatching(
        new RegExp(`^retrying: stalled: no output for \\d s, .*; resuming Claude session ${first.session}, retry 1 of 2 in 0\\.0 s$`),
      ),
      'running',
    ]);
  });

  it('a stall before any session id was printed starts afresh; stalls use up the retries like other transient failures', async () => {
    const { dir, ctx, calls } = await context();
    const log = path.join(dir, 'log');
    const executor = createClaudeExecutor({
      bin: FAKE,
      args: STREAM,
      timeoutS: 60,
      stallTimeoutS: 1,
      retries: 1,
      backoffMs: 0,
      killGraceMs: 1000,
      env: { FAKE_CLAUDE_SCENARIO: 'stuck_at_start', FAKE_CLAUDE_LOG: log },
    });
    const outcome = await executor(ctx);
    expect(outcome).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^stalled: no output for \d s, .*; gave up after 2 tries \(--retries 1\)$/),
      frontmatter: { failure: 'stalled', failure_kind: 'transient' },
    });
    expect((await fakeCalls(log)).map((call) => call.argv)).toEqual([STREAM, STREAM]);
    expect(calls).toHaveLength(2);
  });

  it('a resume the CLI refuses (unknown session: usage error) is tried again afresh', async () => {
    const { dir, ctx } = await context();
    const log = path.join(dir, 'log');
    const executor = createClaudeExecutor({
      bin: FAKE,
      args: STREAM,
      timeoutS: 60,
      stallTimeoutS: 1,
      retries: 2,
      backoffMs: 0,
      killGraceMs: 1000,
      env: { FAKE_CLAUDE_SCENARIO: 'resume_refused', FAKE_CLAUDE_LOG: log },
    });
    const outcome = await executor(ctx);
    expect(outcome.status).toBe('failed');
    const argvs = (await fakeCalls(log)).map((call) => call.argv.includes('--resume'));
    expect(argvs.sort()).toEqual([false, false, true]);
  });

  it('progress is reported throttled while the run goes on (turns, tools, tokens, estimate growing), the result replacing the estimate at the end', async () => {
    const { ctx, progress } = await context();
    const executor = createClaudeExecutor({
      bin: FAKE,
      args: [...STREAM, '--model', 'claude-sonnet-4-5-20250929'],
      timeoutS: 60,
      retries: 0,
      backoffMs: 0,
      progressIntervalMs: 1000,
      env: { FAKE_CLAUDE_SCENARIO: 'turns', FAKE_CLAUDE_STEP_MS: '300' },
    });
    const outcome = await executor(ctx);
    expect(outcome.status).toBe('completed');
    // 9 lines 300 ms apart (about 2.7 s) at most one report per second: far fewer reports than lines, one at the end.
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.length).toBeLessThanOrEqual(6);
    const turns = progress.map((p) => p.turns);
    expect(turns).toEqual([...turns].sort((a, b) => a - b));
    expect(progress.at(-1)).toMatchObject({
      turns: 3,
      last_tool: 'Bash',
      input_tokens: 6000,
      output_tokens: 600,
      est_cost_usd: 0.5,
      api_retries: 1,
      last_api_error: '429 rate_limit',
    });
    // Before the result: the estimate from the price table (Sonnet 4.5: $3 in, $15 out per MTok), by message id.
    const estimates = progress.slice(0, -1).map((p) => p.est_cost_usd);
    expect(estimates.length).toBeGreaterThan(0);
    for (const estimate of estimates) expect(estimate).toBeLessThanOrEqual((6000 * 3 + 600 * 15) / 1e6);
    expect(estimates[0]).toBeGreaterThanOrEqual(0);
  });

  it('a failing recordProgress never fails the task', async () => {
    const { ctx } = await context();
    ctx.recordProgress = async () => {
      throw new Error('disk full');
    };
    const lines: string[] = [];
    const executor = createClaudeExecutor({
      bin: FAKE,
      args: STREAM,
      timeoutS: 60,
      retries: 0,
      backoffMs: 0,
      env: { FAKE_CLAUDE_SCENARIO: 'success' },
      log: (line) => lines.push(line),
    });
    expect((await executor(ctx)).status).toBe('completed');
    expect(lines.some((line) => line.includes('progress not recorded: disk full'))).toBe(true);
  });
});

describe('spawn-agent --stall_timeout', () => {
  it('a stalled agent is recorded retrying with the silence named, resumed with --resume, and completes', async () => {
    const p = await fakeProject('stall_then_success');
    const counter = path.join(p.logDir, '..', `${path.basename(p.logDir)}.n`);
    const result = await runScript('spawn-agent', ['--task_name', 'slow', '--goal', 'g', '--stall_timeout', '1', '--retries', '2'], p.dir, {
      ...p.env,
      FAKE_CLAUDE_COUNTER: counter,
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(
      /slow: retrying: stalled: no output for \d s, the claude process tree was terminated \(--stall_timeout 1\); resuming Claude session fake-session-\d+, retry 1 of 2/,
    );
    const record = (await p.state())!.tasks.slow!;
    expect(record).toMatchObject({ status: 'completed', attempts: 2, error: null });
    const events = (await p.events()).filter((e) => e.task === 'slow').map((e) => e.type);
    expect(events).toEqual(['registered', 'started', 'retrying', 'started', 'completed']);
    const calls = await p.calls();
    expect(calls.filter((call) => call.argv.includes('--resume'))).toHaveLength(1);
  });
});

describe('orchestrate --agent claude --stall_timeout', () => {
  it('the plan runner resumes a stalled agent the same way; the other task is unaffected', async () => {
    const project = await tempProject();
    const log = await tempDir('dto-orch-log-');
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      ['tasks:', '  - { id: slow, goal: "fake-scenario:stall_then_success" }', '  - { id: quick, goal: "answer quick" }'].join('\n'),
    );
    const result = await runScript(
      'orchestrate',
      ['plan.yaml', '--agent', 'claude', '--claude_bin', FAKE, '--skip_preflight', '--stall_timeout', '1', '--retries', '2'],
      project.dir,
      {
        FAKE_CLAUDE_LOG: log,
        FAKE_CLAUDE_COUNTER: path.join(log, '..', `${path.basename(log)}.n`),
      },
    );
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    const state = (await project.state())!;
    expect(state.tasks.slow).toMatchObject({ status: 'completed', attempts: 2 });
    expect(state.tasks.quick).toMatchObject({ status: 'completed', attempts: 1 });
    const resumed = (await fakeCalls(log)).filter((call) => call.argv.includes('--resume'));
    expect(resumed).toHaveLength(1);
    expect(resumed[0]!.argv.at(-1)).toBe(state.tasks.slow!.claude_session_id);
  });
});
