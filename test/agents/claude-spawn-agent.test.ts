import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { isProcessRunning } from '../../scripts/lib/process/tree.ts';
import { fakePath, fakeProject } from '../support/claude-fixtures.ts';
import { listFiles, run, start } from '../support/project.ts';

const UNTOUCHED = {
  cost_usd: null,
  input_tokens: null,
  output_tokens: null,
  num_turns: null,
  claude_session_id: null,
  permission_denials: null,
};

/** The usage the fake reports for one call (see test/support/fake-claude/claude). */
function fakeUsage(pid: number) {
  return { cost_usd: 0.0123, input_tokens: 100, output_tokens: 20, claude_session_id: `fake-session-${pid}`, permission_denials: 0 };
}

describe('spawn-agent with a fake claude on PATH', () => {
  it('success: the answer, cost, tokens and session id land in the result file and the state', async () => {
    const p = await fakeProject('success');
    const result = await run(
      'spawn-agent',
      ['--task_name', 'scan', '--goal', 'List the TODO comments; rm -rf / $(whoami) `id`'],
      p.dir,
      p.env,
    );
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/\] ✅ scan completed by Agent-01 in /);
    const [call] = await p.calls();
    // The prompt arrives on stdin, never in argv; argv is exactly the default invocation.
    expect(call!.argv).toEqual(['-p', '--output-format', 'stream-json', '--verbose']);
    expect(call!.cwd).toBe(p.dir);
    expect(call!.stdin).toContain('## Goal\nList the TODO comments; rm -rf / $(whoami) `id`\n');
    expect(call!.stdin).toContain(`You are Agent-01, a sub-agent running one task ("scan")`);
    expect(call!.stdin).toContain(`body of ${path.join(p.dir, '.agent/results/scan.md')}`);
    const pid = Number(/fake-session-(\d+)/.exec(JSON.stringify(await p.state()))![1]);
    const state = await p.state();
    expect(state!.tasks.scan).toMatchObject({
      status: 'completed',
      runner: 'claude',
      agent: 'Agent-01',
      attempts: 1,
      max_attempts: 4,
      error: null,
      num_turns: 1,
      ...fakeUsage(pid),
    });
    const file = await p.result('scan');
    expect(file.data).toMatchObject({
      task: 'scan',
      agent: 'Agent-01',
      status: 'completed',
      runner: 'claude',
      attempt: 1,
      session_id: state!.session_id,
      num_turns: 1,
      cache_creation_input_tokens: 5,
      cache_read_input_tokens: 7,
      models: ['claude-fake-1'],
      tries: 1,
      ...fakeUsage(pid),
    });
    expect(file.data.duration_ms).toBe(state!.tasks.scan!.duration_ms);
    expect(file.body).toMatch(/^FAKE ANSWER to: List the TODO comments; rm -rf \/ \$\(whoami\) `id`\n/);
    expect((await p.events()).map((e) => e.type)).toEqual(['session_started', 'registered', 'started', 'completed']);
  });

  it('passes the claude flags through, and everything after -- verbatim', async () => {
    const p = await fakeProject('success');
    await mkdir(path.join(p.dir, 'extra'));
    const args = [
      '--task_name',
      'flags',
      '--goal',
      'g',
      '--model',
      'sonnet',
      '--max_turns',
      '3',
      '--max_budget_usd',
      '0.5',
      '--permission_mode',
      'plan',
      '--append_system_prompt',
      'Be brief.',
      '--allowed_tools',
      'Read,Grep',
      '--allowed_tools',
      'Bash(git *)',
      '--disallowed_tools',
      'WebFetch',
      '--add_dir',
      'extra',
      '--',
      '--effort',
      'high',
      '--fallback-model',
      'haiku',
    ];
    expect((await run('spawn-agent', args, p.dir, p.env)).exitCode).toBe(0);
    const [call] = await p.calls();
    expect(call!.argv).toEqual([
      '-p',
      '--output-format',
      'stream-json',
      '--verbose',
      '--model',
      'sonnet',
      '--max-turns',
      '3',
      '--max-budget-usd',
      '0.5',
      '--permission-mode',
      'plan',
      '--append-system-prompt',
      'Be brief.',
      '--allowedTools',
      'Read,Grep',
      'Bash(git *)',
      '--disallowedTools',
      'WebFetch',
      '--add-dir',
      path.join(p.dir, 'extra'),
      '--effort',
      'high',
      '--fallback-model',
      'haiku',
    ]);
    expect(call!.stdin).not.toContain('--');
    expect((await p.result('flags')).data.models).toEqual(['sonnet']);
  });

  it('is_error with api_error_status 401: fails at once with the CLI message, no retry', async () => {
    const p = await fakeProject('auth_401');
    const result = await run('spawn-agent', ['--task_name', 'a', '--goal', 'g', '--backoff_ms', '0'], p.dir, p.env);
    expect(result.exitCode).toBe(1);
    const error = 'Invalid API key · Fix external API key (HTTP 401 authentication_error)';
    expect(result.stderr).toBe(`error: a: ${error}`);
    expect(await p.calls()).toHaveLength(1);
    expect((await p.state())!.tasks.a).toMatchObject({
      status: 'failed',
      attempts: 1,
      error,
      cost_usd: 0,
      input_tokens: 0,
      output_tokens: 0,
    });
    const file = await p.result('a');
    expect(file.data).toMatchObject({ status: 'failed', error, failure: 'auth', failure_kind: 'permanent', tries: 1 });
    expect(file.body).toContain('Failure: permanent (auth), after 1 try.');
    expect((await p.events()).map((e) => e.type)).toEqual(['session_started', 'registered', 'started', 'failed']);
  });

  it('429 then success: retrying with backoff, attempts counted, then completed; cost summed over tries', async () => {
    const p = await fakeProject('rate_limit_then_success');
    const counter = path.join(p.logDir, 'counter');
    const env = { ...p.env, FAKE_CLAUDE_COUNTER: counter, FAKE_CLAUDE_FAILURES: '2' };
    const result = await run('spawn-agent', ['--task_name', 'r', '--goal', 'g', '--backoff_ms', '20'], p.dir, env);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(
      /\[Agent-01\] r: retrying: API Error: Request rejected \(429\).*\(HTTP 429 rate_limit_error\); retry 1 of 3 in \d\.\d s/,
    );
    expect(await readFile(counter, 'utf8')).toBe('3');
    const task = (await p.state())!.tasks.r!;
    expect(task).toMatchObject({ status: 'completed', attempts: 3, error: null, next_retry_at: null, cost_usd: 0.0123, num_turns: 1 });
    const events = await p.events();
    expect(events.map((e) => [e.type, e.attempt ?? null])).toEqual([
      ['session_started', null],
      ['registered', null],
      ['started', 1],
      // The first 429 halves the session's worker limit; the second, within the decrease window, does not (scheduling/capacity.ts).
      ['capacity', null],
      ['retrying', 1],
      ['started', 2],
      ['retrying', 2],
      ['started', 3],
      ['completed', 3],
    ]);
    expect(events.find((e) => e.type === 'retrying')!.error).toMatch(/^API Error: Request rejected \(429\).*; retry 1 of 3 in \d\.\d s$/);
    expect((await p.result('r')).data).toMatchObject({ status: 'completed', tries: 3, attempt: 3 });
  });

  it('transient failures past --retries: failed, saying how many tries', async () => {
    const p = await fakeProject('overloaded');
    const result = await run('spawn-agent', ['--task_name', 'o', '--goal', 'g', '--retries', '2', '--backoff_ms', '1'], p.dir, p.env);
    expect(result.exitCode).toBe(1);
    const task = (await p.state())!.tasks.o!;
    expect(task.status).toBe('failed');
    expect(task.attempts).toBe(3);
    expect(task.error).toMatch(/^API Error: 529 Overloaded\..* \(HTTP 529 overloaded_error\); gave up after 3 tries \(--retries 2\)$/);
    expect((await p.events()).filter((e) => e.type === 'retrying')).toHaveLength(2);
    expect(await p.calls()).toHaveLength(3);
  });

  it('max turns: fails at once naming the turn limit, cost and turns recorded', async () => {
    const p = await fakeProject('max_turns');
    const result = await run('spawn-agent', ['--task_name', 'm', '--goal', 'g', '--max_turns', '3'], p.dir, p.env);
    expect(result.exitCode).toBe(1);
    const error = 'Reached maximum number of turns (3) (raise --max_turns or split the task)';
    expect((await p.state())!.tasks.m).toMatchObject({ status: 'failed', attempts: 1, error, num_turns: 4, cost_usd: 0.0123 });
    expect((await p.result('m')).data).toMatchObject({ status: 'failed', failure: 'max_turns', failure_kind: 'permanent', num_turns: 4 });
    expect(await p.calls()).toHaveLength(1);
  });

  it.each([
    ['silent', 'claude exited with code 0 without printing a result'],
    [
      'garbage',
      'claude exited with code 0 and printed no JSON result object; its output began: "<html><body>502 Bad Gateway</body></html>"',
    ],
  ])('%s: failed, no retry, with a clear error', async (scenario, error) => {
    const p = await fakeProject(scenario);
    const result = await run('spawn-agent', ['--task_name', 'x', '--goal', 'g', '--backoff_ms', '0'], p.dir, p.env);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(`error: x: ${error}`);
    expect((await p.state())!.tasks.x).toMatchObject({ status: 'failed', attempts: 1, error });
    expect(await p.calls()).toHaveLength(1);
  });

  it('a hang: --timeout terminates the whole tree (SIGTERM, then SIGKILL for what ignores it)', async () => {
    const p = await fakeProject('hang', { FAKE_CLAUDE_IGNORE_TERM: '1' });
    const pidsFile = path.join(p.logDir, 'pids.json');
    // 3 s leaves the fake time to start its grandchild even on a loaded machine.
    const result = await run('spawn-agent', ['--task_name', 'h', '--goal', 'g', '--timeout', '3'], p.dir, {
      ...p.env,
      FAKE_CLAUDE_PIDS: pidsFile,
    });
    expect(result.exitCode).toBe(1);
    const error = 'timed out after 3 s: the claude process tree was terminated (raise --timeout)';
    expect(result.stderr).toBe(`error: h: ${error}`);
    expect((await p.state())!.tasks.h).toMatchObject({ status: 'failed', attempts: 1, error, ...UNTOUCHED });
    const pids = JSON.parse(await readFile(pidsFile, 'utf8')) as { child: number; grandchild: number };
    expect([isProcessRunning(pids.child), isProcessRunning(pids.grandchild)]).toEqual([false, false]);
    // 3 s timeout, then 5 s of grace after SIGTERM before the SIGKILL.
    const duration = (await p.state())!.tasks.h!.duration_ms!;
    expect(duration).toBeGreaterThanOrEqual(8000);
    expect(duration).toBeLessThan(30_000);
  });

  it('a hang that obeys SIGTERM ends within the grace period, grandchild included', async () => {
    const p = await fakeProject('hang');
    const pidsFile = path.join(p.logDir, 'pids.json');
    const result = await run('spawn-agent', ['--task_name', 'h', '--goal', 'g', '--timeout', '2.5'], p.dir, {
      ...p.env,
      FAKE_CLAUDE_PIDS: pidsFile,
    });
    expect(result.exitCode).toBe(1);
    // Under 2.5 s + the 5 s grace: SIGTERM was enough, no SIGKILL wait.
    expect((await p.state())!.tasks.h!.duration_ms).toBeLessThan(7000);
    expect((await p.state())!.tasks.h!.error).toMatch(/^timed out after 2.5 s: /);
    const pids = JSON.parse(await readFile(pidsFile, 'utf8')) as { child: number; grandchild: number };
    expect([isProcessRunning(pids.child), isProcessRunning(pids.grandchild)]).toEqual([false, false]);
  });

  it('SIGTERM to spawn-agent (cancel) ends the claude tree too, and the task is failed', async () => {
    const p = await fakeProject('hang');
    const pidsFile = path.join(p.logDir, 'pids.json');
    const child = start('spawn-agent', ['--task_name', 'c', '--goal', 'g'], p.dir, { ...p.env, FAKE_CLAUDE_PIDS: pidsFile });
    let pids: { child: number; grandchild: number } | null = null;
    for (let i = 0; i < 200 && !pids; i++) {
      await delay(50);
      pids = await readFile(pidsFile, 'utf8').then(
        (t) => JSON.parse(t) as { child: number; grandchild: number },
        () => null,
      );
    }
    expect(pids).not.toBeNull();
    child.kill('SIGTERM');
    const result = await child;
    expect(result.exitCode).toBe(1);
    expect((await p.state())!.tasks.c).toMatchObject({ status: 'failed', error: 'agent process terminated by SIGTERM' });
    expect([isProcessRunning(pids!.child), isProcessRunning(pids!.grandchild)]).toEqual([false, false]);
  });

  it.each([
    ['missing on PATH', [], { PATH: fakePath(false) }, '`claude` was not found (ENOENT)'],
    ['a missing --claude_bin', ['--claude_bin', '/nonexistent/claude'], {}, '`/nonexistent/claude` was not found (ENOENT)'],
  ])('claude %s: a clear error with the install command, task failed, exit 1', async (_label, args, env, what) => {
    const p = await fakeProject('success');
    const result = await run('spawn-agent', ['--task_name', 'n', '--goal', 'g', ...args], p.dir, { ...p.env, ...env });
    expect(result.exitCode).toBe(1);
    const error = `Claude Code CLI ${what}. Install it with \`npm install -g @anthropic-ai/claude-code\` (then run \`claude\` once to log in), or pass --claude_bin PATH or set CLAUDE_BIN.`;
    expect(result.stderr).toBe(`error: n: ${error}`);
    expect((await p.state())!.tasks.n).toMatchObject({ status: 'failed', attempts: 1, error, ...UNTOUCHED });
    expect((await p.result('n')).data).toMatchObject({ status: 'failed', failure: 'cli_missing', failure_kind: 'permanent', tries: 1 });
  });

  it('permission denials: completed, counted in the state, listed in the result file, warned about', async () => {
    const p = await fakeProject('denials');
    const result = await run('spawn-agent', ['--task_name', 'd', '--goal', 'g'], p.dir, p.env);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('[Agent-01] d: warning: 2 tool call(s) denied by permissions (Bash, Write)');
    expect((await p.state())!.tasks.d).toMatchObject({ status: 'completed', permission_denials: 2 });
    expect((await p.result('d')).data).toMatchObject({ permission_denials: 2, denied_tools: ['Bash', 'Write'] });
  });

  it('--task_file: frontmatter gives name, goal, deps, priority and files; the body goes into the prompt; flags win', async () => {
    const p = await fakeProject('success');
    await mkdir(path.join(p.dir, 'tasks'));
    await writeFile(
      path.join(p.dir, 'tasks/T-02.md'),
      '---\ntask_name: T-02\ngoal: Fix the parser\npriority: P1\nfiles: [src/parse.ts, src/lex.ts]\n---\n# Fix the parser\n\nStep 1: read src/parse.ts.\nStep 2: fix the off-by-one.\n',
    );
    expect((await run('spawn-agent', ['--task_file', 'tasks/T-02.md', '--goal', 'Fix the parser now'], p.dir, p.env)).exitCode).toBe(0);
    const task = (await p.state())!.tasks['T-02']!;
    expect(task).toMatchObject({ status: 'completed', goal: 'Fix the parser now', priority: 'P1', files: ['src/parse.ts', 'src/lex.ts'] });
    const [call] = await p.calls();
    expect(call!.stdin).toContain('## Goal\nFix the parser now\n');
    expect(call!.stdin).toContain(
      `## Instructions (from ${path.join(p.dir, 'tasks/T-02.md')})\n# Fix the parser\n\nStep 1: read src/parse.ts.\nStep 2: fix the off-by-one.\n`,
    );
    expect(call!.stdin).toContain('## Files\n');
    expect(call!.stdin).toContain('- src/parse.ts\n- src/lex.ts');
    expect(task.launch!.args.slice(-4)).toEqual(['--task_file', 'tasks/T-02.md', '--goal', 'Fix the parser now']);
  });

  it("a dependency's result file is named in the prompt", async () => {
    const p = await fakeProject('success');
    expect((await run('spawn-agent', ['--task_name', 'first', '--goal', 'g1'], p.dir, p.env)).exitCode).toBe(0);
    expect((await run('spawn-agent', ['--task_name', 'second', '--goal', 'g2', '--depends_on', 'first'], p.dir, p.env)).exitCode).toBe(0);
    const calls = await p.calls();
    const second = calls.find((c) => c.stdin.includes('## Goal\ng2'))!;
    expect(second.stdin).toContain(
      `## Results of the tasks this one depends on\nRead them first:\n- first: ${path.join(p.dir, '.agent/results/first.md')}`,
    );
  });

  it('--cwd: the agent works there; the session stays in the current directory', async () => {
    const p = await fakeProject('success');
    await mkdir(path.join(p.dir, 'sub'));
    expect((await run('spawn-agent', ['--task_name', 'w', '--goal', 'g', '--cwd', 'sub'], p.dir, p.env)).exitCode).toBe(0);
    const [call] = await p.calls();
    expect(call!.cwd).toBe(path.join(p.dir, 'sub'));
    expect(call!.stdin).toContain(`## Working directory\n${path.join(p.dir, 'sub')}`);
    expect((await p.state())!.tasks.w!.launch!.cwd).toBe(p.dir);
    expect(await listFiles(path.join(p.dir, 'sub'))).toEqual([]);
  });

  it('a bad value is refused before the state is touched: exit 2, nothing written, claude never run', async () => {
    const p = await fakeProject('success');
    const result = await run('spawn-agent', ['--task_name', 'a', '--goal', 'g', '--timeout', 'soon'], p.dir, p.env);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe('error: Expected --timeout to be a number greater than 0 and at most 604800, got "soon".');
    expect(await listFiles(p.dir)).toEqual([]);
    expect(await p.calls()).toEqual([]);
  });
});
