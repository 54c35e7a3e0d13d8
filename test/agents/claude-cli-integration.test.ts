// The real Claude Code CLI (the pinned devDependency) against a loopback stub of the Messages API: no network, no account.
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REAL_CLAUDE, claudeProject, tempDir, useMarkerStub } from '../support/claude-fixtures.ts';
import { stubEnv } from '../support/messages-api-stub.ts';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { readResultFile } from '../../scripts/lib/execution/result-file.ts';
import { start } from '../support/project.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const { stub, requestsWith } = useMarkerStub();

/** Live processes whose environment has HOME=home (what a claude run left behind); Linux only. */
function processesWithHome(home: string): number[] {
  if (!existsSync('/proc/self/environ')) return [];
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`HOME=${home}`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** A project and a HOME for the real CLI, and a way to start spawn-agent there. */
async function setup() {
  const project = await claudeProject('dto-real-');
  const home = await tempDir('dto-real-home-');
  const env = { ...stubEnv(stub(), home), CLAUDE_BIN: REAL_CLAUDE };
  const spawn = (args: string[], extraEnv: Record<string, string> = {}) => start('spawn-agent', args, project.dir, { ...env, ...extraEnv });
  return { ...project, home, env, spawn };
}

describe('spawn-agent with the real claude CLI against a loopback Messages API', () => {
  it('the pinned CLI is installed (npm ci with install scripts puts the native binary in place)', async () => {
    const version = await execa(REAL_CLAUDE, ['--version'], { reject: false });
    expect(version.stdout, `node_modules/.bin/claude --version failed: ${version.stderr}`).toBe('2.1.330 (Claude Code)');
  });

  it('three agents at once: each result file holds its own answer; cost, tokens and session ids recorded', async () => {
    const p = await setup();
    const names = ['alpha', 'beta', 'gamma'];
    const results = await Promise.all(
      names.map((name) =>
        p.spawn([
          '--task_name',
          name,
          '--goal',
          `Reply with your code word. [[stub:answer:${name}]]`,
          '--session_id',
          'real',
          '--model',
          `stub-model-${name}`,
        ]),
      ),
    );
    expect(results.map((r) => [r.exitCode, r.stderr])).toEqual(names.map(() => [0, '']));
    const state = await p.state();
    const sessionIds = new Set<string>();
    for (const name of names) {
      const record = state!.tasks[name]!;
      const file = (await readResultFile(record.result_path!))!;
      expect(file.body).toBe(`Answer for ${name}.\n`);
      expect(record).toMatchObject({
        status: 'completed',
        runner: 'claude',
        attempts: 1,
        error: null,
        num_turns: 1,
        input_tokens: 100 + name.length,
        output_tokens: 7,
        permission_denials: 0,
      });
      expect(record.cost_usd).toBeGreaterThan(0);
      expect(record.claude_session_id).toMatch(UUID);
      expect(file.data).toMatchObject({
        task: name,
        agent: record.agent,
        status: 'completed',
        cost_usd: record.cost_usd,
        input_tokens: record.input_tokens,
        output_tokens: 7,
        num_turns: 1,
        claude_session_id: record.claude_session_id,
        models: [`stub-model-${name}`],
        duration_ms: record.duration_ms,
      });
      sessionIds.add(record.claude_session_id!);
      const requests = requestsWith(`[[stub:answer:${name}]]`);
      expect(requests.map((r) => [r.model, r.apiKey])).toEqual([[`stub-model-${name}`, 'dummy']]);
      // The goal reached the API inside the prompt (sent on stdin), with the result path.
      expect(requests[0]!.body).toContain(`.agent/results/${name}.md`);
    }
    expect(sessionIds.size).toBe(3);
  });

  it('HTTP 401: fails after one attempt with the CLI message', async () => {
    const p = await setup();
    const result = await p.spawn(['--task_name', 'auth', '--goal', 'Anything. [[stub:auth]]', '--backoff_ms', '0']);
    expect(result.exitCode).toBe(1);
    const error = 'Invalid API key · Fix external API key (HTTP 401 authentication_error)';
    expect(result.stderr).toBe(`error: auth: ${error}`);
    expect((await p.state())!.tasks.auth).toMatchObject({ status: 'failed', attempts: 1, error, cost_usd: 0 });
    expect(requestsWith('[[stub:auth]]')).toHaveLength(1);
  });

  it('HTTP 429 once: retried with backoff, then completed', async () => {
    const p = await setup();
    const result = await p.spawn(['--task_name', 'busy', '--goal', 'Reply. [[stub:rate_once:delta]]', '--backoff_ms', '10']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/busy: retrying: API Error: Request rejected \(429\)/);
    const record = (await p.state())!.tasks.busy!;
    expect(record).toMatchObject({ status: 'completed', attempts: 2, error: null, output_tokens: 7 });
    expect((await readResultFile(record.result_path!))!.body).toBe('Answer for delta.\n');
    const events = (await readEvents(p.paths.eventsPath)).filter((e) => e.task === 'busy').map((e) => [e.type, e.attempt ?? null]);
    expect(events).toEqual([
      ['registered', null],
      ['started', 1],
      // The 429 halves the session's worker limit (scheduling/capacity.ts).
      ['capacity', null],
      ['retrying', 1],
      ['started', 2],
      ['completed', 2],
    ]);
    expect(requestsWith('[[stub:rate_once:delta]]')).toHaveLength(2);
  });

  it('a max-turns stop fails at once, naming the turn limit', async () => {
    const p = await setup();
    const result = await p.spawn(['--task_name', 'loop', '--goal', 'Keep looking. [[stub:tool_loop]]', '--max_turns', '1']);
    expect(result.exitCode).toBe(1);
    const record = (await p.state())!.tasks.loop!;
    expect(record).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: 'Reached maximum number of turns (1) (raise --max_turns or split the task)',
      num_turns: 2,
    });
    expect(record.cost_usd).toBeGreaterThan(0);
    expect(record.claude_session_id).toMatch(UUID);
  });

  it('not logged in: the CLI message is the error, no retry, no request', async () => {
    const p = await setup();
    const result = await p.spawn(['--task_name', 'nokey', '--goal', 'Reply. [[stub:answer:nokey]]'], { ANTHROPIC_API_KEY: '' });
    expect(result.exitCode).toBe(1);
    expect((await p.state())!.tasks.nokey).toMatchObject({ status: 'failed', attempts: 1, error: 'Not logged in · Please run /login' });
    expect(requestsWith('[[stub:answer:nokey]]')).toHaveLength(0);
  });

  it('an API that never answers: --timeout ends the CLI and leaves no process behind', async () => {
    const p = await setup();
    const result = await p.spawn(['--task_name', 'stuck', '--goal', 'Wait. [[stub:hang]]', '--timeout', '3']);
    expect(result.exitCode).toBe(1);
    expect((await p.state())!.tasks.stuck).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: 'timed out after 3 s: the claude process tree was terminated (raise --timeout)',
    });
    // (On a loaded machine the CLI may not have reached the API within 3 s; either way it is gone.)
    expect(processesWithHome(p.home)).toEqual([]);
  });
});
