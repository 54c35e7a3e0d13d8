import { readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKOFF_CAP_MS, backoffDelay } from '../../scripts/lib/agents/backoff.ts';
import { createClaudeExecutor } from '../../scripts/lib/agents/claude-agent.ts';
import { classifyClaudeRun, parseClaudeOutput, resultUsage, type ClaudeResult } from '../../scripts/lib/agents/claude-result.ts';
import { runClaude, type ClaudeRun } from '../../scripts/lib/agents/claude-runner.ts';
import { isProcessRunning } from '../../scripts/lib/process/tree.ts';
import { FAKE_CLAUDE_DIR, tempDir } from '../support/claude-fixtures.ts';
import { agentContext } from '../support/agent-context.ts';

/** What Claude Code 2.1.330 printed against the loopback Messages API stub (captured by hand, see references/cli-integration.md). */
const REAL = JSON.parse(readFileSync(path.join(import.meta.dirname, '../fixtures/claude-2.1.330-outputs.json'), 'utf8')) as Record<
  string,
  { exitCode: number | null; signal: string | null; stdout: string; stderr: string }
>;
const FAKE = path.join(FAKE_CLAUDE_DIR, 'claude');
const CONTEXT = { bin: 'claude', timeoutS: 60 };

function runOf(fields: Partial<ClaudeRun>): ClaudeRun {
  return {
    exitCode: 0,
    signal: null,
    stdout: '',
    stderr: '',
    durationMs: 1,
    timedOut: false,
    stalled: false,
    silenceMs: 0,
    aborted: false,
    abortReason: null,
    spawnError: null,
    pid: 1,
    ...fields,
  };
}

function verdictOf(name: string) {
  const real = REAL[name]!;
  const verdict = classifyClaudeRun(
    runOf({ exitCode: real.exitCode, signal: real.signal, stdout: real.stdout, stderr: real.stderr }),
    CONTEXT,
  );
  return verdict.ok ? { ok: true, text: verdict.text } : { ok: false, kind: verdict.kind, code: verdict.code, message: verdict.message };
}

describe('classifyClaudeRun on what the real CLI (2.1.330) printed', () => {
  it.each([
    ['success', { ok: true, text: 'Hello from the stub.' }],
    [
      'http_401',
      { ok: false, kind: 'permanent', code: 'auth', message: 'Invalid API key · Fix external API key (HTTP 401 authentication_error)' },
    ],
    [
      'http_403',
      {
        ok: false,
        kind: 'permanent',
        code: 'auth',
        message: 'Failed to authenticate. API Error: 403 forbidden (HTTP 403 permission_error)',
      },
    ],
    [
      'http_400',
      { ok: false, kind: 'permanent', code: 'api_error', message: 'API Error: 400 bad request (HTTP 400 invalid_request_error)' },
    ],
    [
      'http_429',
      {
        ok: false,
        kind: 'transient',
        code: 'rate_limited',
        message: 'API Error: Request rejected (429) · Number of requests has exceeded your rate limit (HTTP 429 rate_limit_error)',
      },
    ],
    ['not_logged_in', { ok: false, kind: 'permanent', code: 'auth', message: 'Not logged in · Please run /login' }],
    [
      'connection_refused',
      {
        ok: false,
        kind: 'transient',
        code: 'connection',
        message: 'API Error: Connection refused — a firewall or proxy may be blocking it (ECONNREFUSED) (connection_failed)',
      },
    ],
    [
      'max_turns',
      {
        ok: false,
        kind: 'permanent',
        code: 'max_turns',
        message: 'Reached maximum number of turns (1) (raise --max_turns or split the task)',
      },
    ],
    [
      'max_budget',
      { ok: false, kind: 'permanent', code: 'max_budget', message: 'Reached maximum budget ($0.0001) (raise --max_budget_usd)' },
    ],
    [
      'usage_error',
      {
        ok: false,
        kind: 'permanent',
        code: 'usage',
        message:
          "claude exited with code 1: error: option '--permission-mode <mode>' argument 'bogus' is invalid. Allowed choices are acceptEdits, auto, bypassPermissions, manual, dontAsk, plan.",
      },
    ],
    ['sigterm', { ok: false, kind: 'permanent', code: 'no_result', message: 'claude exited with code 143 without printing a result' }],
  ])('%s', (name, expected) => {
    expect(verdictOf(name)).toEqual(expected);
  });

  it.each([
    ['http_500', 'server_error'],
    ['http_529', 'overloaded'],
  ])('%s is transient (%s)', (name, code) => {
    expect(verdictOf(name)).toMatchObject({ ok: false, kind: 'transient', code });
  });

  it('reads cost, tokens, turns, session id and denials from a real result', () => {
    const result = (parseClaudeOutput(REAL.success!.stdout) as { result: ClaudeResult }).result;
    expect(resultUsage(result)).toEqual({
      cost_usd: 0.000144,
      input_tokens: 11,
      output_tokens: 5,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      num_turns: 1,
      claude_session_id: (JSON.parse(REAL.success!.stdout) as { session_id: string }).session_id,
      permission_denials: 0,
      denied_tools: [],
      models: ['claude-opus-5-5'],
    });
    const denied = (parseClaudeOutput(REAL.permission_denied!.stdout) as { result: ClaudeResult }).result;
    expect(resultUsage(denied)).toMatchObject({ permission_denials: 1, denied_tools: ['Bash'] });
  });
});

describe('classifyClaudeRun rules', () => {
  const result = (fields: Record<string, unknown>) =>
    JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'ok', ...fields });

  it('needs all three: exit 0, a result object, is_error false', () => {
    expect(classifyClaudeRun(runOf({ stdout: result({}) }), CONTEXT)).toMatchObject({ ok: true, text: 'ok' });
    expect(classifyClaudeRun(runOf({ exitCode: 1, stdout: result({}) }), CONTEXT)).toMatchObject({
      ok: false,
      kind: 'permanent',
      code: 'exit_code',
    });
    expect(classifyClaudeRun(runOf({ stdout: result({ is_error: true, result: 'boom' }) }), CONTEXT)).toMatchObject({
      ok: false,
      kind: 'permanent',
      code: 'api_error',
      message: 'boom',
    });
    expect(classifyClaudeRun(runOf({ stdout: '' }), CONTEXT)).toMatchObject({ ok: false, code: 'no_result' });
  });

  it.each([
    [408, 'transient', 'server_error'],
    [429, 'transient', 'rate_limited'],
    [500, 'transient', 'server_error'],
    [503, 'transient', 'server_error'],
    [529, 'transient', 'overloaded'],
    [401, 'permanent', 'auth'],
    [403, 'permanent', 'auth'],
    [404, 'permanent', 'api_error'],
    [413, 'permanent', 'api_error'],
  ])('HTTP %i is %s (%s), whatever the exit code', (status, kind, code) => {
    for (const exitCode of [0, 1]) {
      const verdict = classifyClaudeRun(
        runOf({ exitCode, stdout: result({ is_error: true, result: 'x', api_error_status: status }) }),
        CONTEXT,
      );
      expect(verdict).toMatchObject({ ok: false, kind, code });
    }
  });

  it('timeouts, aborts and a CLI that cannot start are permanent, with what to do', () => {
    expect(classifyClaudeRun(runOf({ timedOut: true, exitCode: 143 }), { bin: 'claude', timeoutS: 90 })).toMatchObject({
      kind: 'permanent',
      code: 'timeout',
      message: 'timed out after 90 s: the claude process tree was terminated (raise --timeout)',
    });
    expect(classifyClaudeRun(runOf({ aborted: true, abortReason: 'cancelled' }), CONTEXT)).toMatchObject({
      code: 'aborted',
      message: 'stopped: cancelled',
    });
    const missing = classifyClaudeRun(runOf({ exitCode: null, spawnError: { code: 'ENOENT', message: 'spawn claude ENOENT' } }), CONTEXT);
    expect(missing).toMatchObject({ kind: 'permanent', code: 'cli_missing' });
    expect(missing.ok ? '' : missing.message).toContain('npm install -g @anthropic-ai/claude-code');
    expect(classifyClaudeRun(runOf({ exitCode: null, signal: 'SIGKILL' }), CONTEXT)).toMatchObject({
      code: 'killed',
      message: 'claude was killed by SIGKILL before printing a result',
    });
  });

  it('an error_during_execution result is permanent, with its reasons', () => {
    const verdict = classifyClaudeRun(
      runOf({
        exitCode: 1,
        stdout: result({ subtype: 'error_during_execution', is_error: true, result: undefined, errors: ['tool crashed'] }),
      }),
      CONTEXT,
    );
    expect(verdict).toMatchObject({ kind: 'permanent', code: 'execution_error', message: 'tool crashed (error_during_execution)' });
  });
});

describe('parseClaudeOutput', () => {
  const obj = { type: 'result', subtype: 'success', is_error: false, result: 'R' };
  it.each([
    ['one object', JSON.stringify(obj)],
    ['an array of messages (--verbose)', JSON.stringify([{ type: 'system' }, { type: 'assistant' }, obj])],
    ['JSON lines (stream-json)', [{ type: 'system' }, { type: 'assistant' }, obj].map((m) => JSON.stringify(m)).join('\n')],
    ['a warning line before the object', `warning: something\n${JSON.stringify(obj)}`],
  ])('finds the result in %s', (_label, stdout) => {
    expect(parseClaudeOutput(stdout)).toMatchObject({ result: { result: 'R' } });
  });

  it.each([
    ['', 'empty'],
    ['  \n', 'empty'],
    ['<html>502</html>', 'not_json'],
    ['{"type":"assistant"}', 'no_result'],
    ['{"type":"result","subtype":"success"}', 'no_result'],
  ])('%j: %s', (stdout, problem) => {
    expect(parseClaudeOutput(stdout)).toEqual({ problem });
  });
});

describe('backoffDelay (full jitter)', () => {
  it('doubles the window each retry, up to the cap, and scales it by the random draw', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, 1000, BACKOFF_CAP_MS, () => 0.999999))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffDelay(3, 1000, BACKOFF_CAP_MS, () => 0.5)).toBe(2000);
    expect(backoffDelay(3, 1000, BACKOFF_CAP_MS, () => 0)).toBe(0);
    expect(backoffDelay(30, 1000, 60_000, () => 0.999999)).toBe(60_000);
    expect(backoffDelay(1, 0)).toBe(0);
  });

  it('stays within [0, window] with Math.random', () => {
    for (let i = 0; i < 200; i++) {
      const value = backoffDelay(2, 500);
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThanOrEqual(1000);
    }
  });
});

describe('runClaude and the executor, with the fake claude', () => {
  const run = (scenario: string, extra: Partial<Parameters<typeof runClaude>[0]> = {}) =>
    runClaude({
      bin: FAKE,
      args: ['-p', '--output-format', 'json'],
      prompt: 'hello',
      cwd: process.cwd(),
      env: { FAKE_CLAUDE_SCENARIO: scenario },
      timeoutMs: 20_000,
      ...extra,
    });

  it.each([
    ['crash', { ok: false, kind: 'permanent', code: 'usage', message: "claude exited with code 1: error: unknown option '--bogus'" }],
    [
      'success_exit_1',
      { ok: false, kind: 'permanent', code: 'exit_code', message: 'claude exited with code 1 although its result reported success' },
    ],
    ['rate_limit_exit_0', { ok: false, kind: 'transient', code: 'rate_limited' }],
    ['not_logged_in', { ok: false, kind: 'permanent', code: 'auth', message: 'Not logged in · Please run /login' }],
    ['connection', { ok: false, kind: 'transient', code: 'connection' }],
    ['overloaded', { ok: false, kind: 'transient', code: 'overloaded' }],
  ])('%s', async (scenario, expected) => {
    expect(classifyClaudeRun(await run(scenario), CONTEXT)).toMatchObject(expected);
  });

  it('reports a file that is not executable as EACCES', async () => {
    const bin = path.join(await tempDir(), 'claude');
    await writeFile(bin, '#!/bin/sh\necho hi\n');
    await chmod(bin, 0o644);
    const result = await runClaude({ bin, args: [], prompt: '', cwd: process.cwd(), timeoutMs: 5000 });
    expect(result.spawnError).toEqual({ code: 'EACCES', message: `spawn ${bin} EACCES` });
    expect(classifyClaudeRun(result, { bin, timeoutS: 5 })).toMatchObject({
      code: 'cli_missing',
      message: expect.stringContaining(`\`${bin}\` is not executable (EACCES)`),
    });
  });

  it('a process left holding stdout after the CLI exited is ended, and the result kept', async () => {
    const pidsFile = path.join(await tempDir(), 'pids.json');
    const began = Date.now();
    const result = await runClaude({
      bin: FAKE,
      args: [],
      prompt: '## Goal\nstay\n',
      cwd: process.cwd(),
      env: { FAKE_CLAUDE_SCENARIO: 'orphan', FAKE_CLAUDE_PIDS: pidsFile },
      timeoutMs: 60_000,
    });
    expect(Date.now() - began).toBeLessThan(30_000);
    expect(classifyClaudeRun(result, CONTEXT)).toMatchObject({ ok: true, text: expect.stringContaining('FAKE ANSWER to: stay') });
    expect(result.timedOut).toBe(false);
    const pids = JSON.parse(readFileSync(pidsFile, 'utf8')) as { grandchild: number };
    expect(isProcessRunning(pids.grandchild)).toBe(false);
  });

  it('aborting ends the run and says why', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('cancelled')), 300);
    const result = await run('hang', { signal: controller.signal, killGraceMs: 1000 });
    expect(result).toMatchObject({ aborted: true, abortReason: 'cancelled', timedOut: false });
  });

  it('retries transient failures with the backoff delays, marking retrying then running, and sums the cost', async () => {
    const dir = await tempDir();
    const calls: string[] = [];
    const ctx = agentContext(dir, {
      markRetrying: async (reason, delayMs) => void calls.push(`retrying ${delayMs} ${reason.replace(/ \(429\).*; /, ' … ')}`),
      markRunning: async () => void calls.push('running'),
    });
    const executor = createClaudeExecutor({
      bin: FAKE,
      args: ['-p', '--output-format', 'json'],
      timeoutS: 20,
      retries: 3,
      backoffMs: 10,
      random: () => 0.999999,
      env: { FAKE_CLAUDE_SCENARIO: 'rate_limit_then_success', FAKE_CLAUDE_COUNTER: path.join(dir, 'n'), FAKE_CLAUDE_FAILURES: '3' },
    });
    const outcome = await executor(ctx);
    expect(calls).toEqual([
      'retrying 10 API Error: Request rejected … retry 1 of 3 in 0.0 s',
      'running',
      'retrying 20 API Error: Request rejected … retry 2 of 3 in 0.0 s',
      'running',
      'retrying 40 API Error: Request rejected … retry 3 of 3 in 0.0 s',
      'running',
    ]);
    expect(outcome).toMatchObject({
      status: 'completed',
      record: { cost_usd: 0.0123, input_tokens: 100, output_tokens: 20, num_turns: 1, permission_denials: 0 },
      frontmatter: { tries: 4, cost_usd: 0.0123 },
    });
  });
});
