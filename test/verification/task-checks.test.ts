// A check per task with mock agents: --check on the spawn scripts (a queued task's check replayed only from a signed
// launch), the plan's check: under --allow_plan_checks, --check on orchestrate; a failed check fails the attempt and,
// within --retries, is tried again; its output tail reaches the result, the receipt and the verdict.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempProject } from '../support/project.ts';
import { readState } from '../../scripts/lib/state/state-store.ts';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { updateState } from '../../scripts/lib/state/state-store.ts';

/** A check that fails (exit 1, "FAILED: run N") until it has run `passOn` times in its folder, then passes. */
async function flakyCheck(dir: string, passOn: number): Promise<string> {
  const script = path.join(dir, 'check.cjs');
  await writeFile(
    script,
    `const fs = require('node:fs'); const f = 'check-runs.txt';\n` +
      `const n = (fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8')) : 0) + 1; fs.writeFileSync(f, String(n));\n` +
      `if (n < ${passOn}) { console.log('FAILED: run ' + n); process.exit(1); } console.log('ok: run ' + n);\n`,
  );
  return `node check.cjs`;
}

describe('task checks with mock agents', () => {
  it('spawn-agent-mock --check failing once with --retries 1: tried again, completed and verified by the check', async () => {
    const project = await tempProject('dto-check-mock-');
    const check = await flakyCheck(project.dir, 2);
    const ran = await run(
      'spawn-agent-mock',
      ['--task_name', 'fix', '--goal', 'Fix the parser', '--delay_ms', '20', '--check', check, '--retries', '1'],
      project.dir,
    );
    expect(ran.exitCode, ran.all).toBe(0);
    expect(ran.stdout).toContain('check `node check.cjs` failed (exit 1)');
    const task = (await readState(project.paths))!.tasks.fix!;
    expect(task).toMatchObject({ status: 'completed', attempts: 2 });
    expect(task.verdict!.value).toBe('verified');
    expect(task.verdict!.evidence[0]).toBe('check `node check.cjs` passed');
    const events = (await readEvents(project.paths.eventsPath)).filter((e) => e.task === 'fix').map((e) => e.type);
    expect(events).toEqual(['registered', 'started', 'retrying', 'started', 'completed']);
    const receipt = JSON.parse(await readFile(path.join(project.dir, '.agent/results/fix.receipt.json'), 'utf8')) as {
      check: { command: string; exit: number; output_tail: string };
      attempts: unknown[];
    };
    expect(receipt.check).toEqual({ command: 'node check.cjs', exit: 0, output_tail: 'ok: run 2\n' });
    expect(receipt.attempts).toHaveLength(2);
  });

  it('a check that keeps failing fails the task with its output tail (exit 1); a shell-syntax check is refused before registering', async () => {
    const project = await tempProject('dto-check-mock-');
    const check = await flakyCheck(project.dir, 99);
    const ran = await run('spawn-agent-mock', ['--task_name', 'fix', '--goal', 'g', '--delay_ms', '10', '--check', check], project.dir);
    expect(ran.exitCode, ran.all).toBe(1);
    const task = (await readState(project.paths))!.tasks.fix!;
    expect(task.status).toBe('failed');
    expect(task.error).toBe('check `node check.cjs` failed (exit 1) after 1 try (--retries 0)');
    const body = await readFile(task.result_path!, 'utf8');
    expect(body).toContain('## Check output (last lines)');
    expect(body).toContain('FAILED: run 1');
    expect(body).toContain('failure: check_failed');

    const other = await tempProject('dto-check-mock-');
    const bad = await run('spawn-agent-mock', ['--task_name', 'x', '--goal', 'g', '--check', 'npm test && rm -rf /'], other.dir);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--check: the check "npm test && rm -rf /" holds the shell operator "&&"');
    expect(await readState(other.paths)).toBeNull();
    const timeoutOnly = await run('spawn-agent-mock', ['--task_name', 'x', '--goal', 'g', '--check_timeout', '5'], other.dir);
    expect(timeoutOnly.exitCode).toBe(2);
    expect(timeoutOnly.stderr).toContain('--check_timeout was given without --check');
  });

  it("a queued task's check runs from its signed launch; a launch whose check was rewritten in the state file is refused", async () => {
    const project = await tempProject('dto-check-queue-');
    await writeFile(path.join(project.dir, 'ok.cjs'), "require('node:fs').writeFileSync('checked-' + process.argv[2], 'yes');\n");
    const first = await run(
      'spawn-agent-mock',
      ['--task_name', 'a', '--goal', 'g', '--delay_ms', '1500', '--max_workers', '1', '--session_id', 'q', '--detach'],
      project.dir,
    );
    expect(first.exitCode, first.all).toBe(0);
    const queued = await run(
      'spawn-agent-mock',
      ['--task_name', 'b', '--goal', 'g', '--delay_ms', '10', '--check', 'node ok.cjs b', '--session_id', 'q', '--detach'],
      project.dir,
    );
    expect(queued.exitCode, queued.all).toBe(0);
    const hostile = await run(
      'spawn-agent-mock',
      ['--task_name', 'c', '--goal', 'g', '--delay_ms', '10', '--check', 'node ok.cjs c', '--session_id', 'q', '--detach'],
      project.dir,
    );
    expect(hostile.exitCode, hostile.all).toBe(0);
    // Rewrite c's recorded check, keeping its signature: as a state file made elsewhere would.
    await updateState(project.paths, (tx) => {
      const launch = tx.state!.tasks.c!.launch!;
      expect(launch.signature).toMatch(/^[0-9a-f]{64}$/);
      launch.args = launch.args.map((arg) => (arg === 'node ok.cjs c' ? 'node ok.cjs evil' : arg));
    });
    const waited = await run('poll-session', ['--until_done', '--timeout', '60'], project.dir);
    const done = (await readState(project.paths))!;
    expect(done.tasks.b!.status, waited.all).toBe('completed');
    expect(await readFile(path.join(project.dir, 'checked-b'), 'utf8')).toBe('yes');
    expect(done.tasks.c!.status).toBe('failed');
    expect(done.tasks.c!.error).toContain("--check is not signed with this user's launch key");
    await expect(readFile(path.join(project.dir, 'checked-evil'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it("orchestrate runs a plan's checks only with --allow_plan_checks; --check covers the other tasks; bullmq refuses them", async () => {
    const project = await tempProject('dto-check-plan-');
    await flakyCheck(project.dir, 2);
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      [
        'tasks:',
        '  - { id: own, goal: "Fix the parser", delay_ms: 10, check: "node check.cjs", check_timeout: 30 }',
        '  - { id: other, goal: "Fix the lexer", delay_ms: 10, depends_on: [own] }',
        '',
      ].join('\n'),
    );
    const refused = await run('orchestrate', ['plan.yaml', '--agent', 'mock'], project.dir);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('names checks to run after its agents (own: "node check.cjs")');
    expect(refused.stderr).toContain('--allow_plan_checks');
    expect(await readState(project.paths)).toBeNull();
    const remote = await run(
      'orchestrate',
      ['plan.yaml', '--agent', 'mock', '--allow_plan_checks', '--backend', 'bullmq', '--connection', 'redis://127.0.0.1:1'],
      project.dir,
    );
    expect(remote.exitCode).toBe(2);
    expect(remote.stderr).toContain('--backend bullmq runs no checks');

    await writeFile(path.join(project.dir, 'always.cjs'), "console.log('lexer ok');\n");
    const ran = await run(
      'orchestrate',
      ['plan.yaml', '--agent', 'mock', '--allow_plan_checks', '--retries', '1', '--check', 'node always.cjs'],
      project.dir,
    );
    expect(ran.exitCode, ran.all).toBe(0);
    const state = (await readState(project.paths))!;
    expect(state.tasks.own).toMatchObject({ status: 'completed', attempts: 2 });
    expect(state.tasks.own!.verdict!.evidence[0]).toBe('check `node check.cjs` passed');
    expect(state.tasks.other).toMatchObject({ status: 'completed', attempts: 1 });
    expect(state.tasks.other!.verdict!.evidence[0]).toBe('check `node always.cjs` passed');
  });
});
