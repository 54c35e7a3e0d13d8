// A claude agent that outlived its runner (SIGKILLed) is stopped before its task runs again: --resume and --replace_dead
// never start a second agent beside a live one (issue 21, item 7).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { execa } from 'execa';
import { processStartTime } from '../../scripts/lib/process/identity.ts';
import { isProcessAlive } from '../../scripts/lib/process/signals.ts';
import { fakeProject } from '../support/claude-fixtures.ts';
import { run, start } from '../support/project.ts';

type FakeProject = Awaited<ReturnType<typeof fakeProject>>;
const children: Array<ReturnType<typeof execa>> = [];
const strays: number[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill('SIGKILL');
    await child.catch(() => undefined);
  }
  for (const pid of strays.splice(0)) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
});

/** Waits until the hanging fake claude of `task` wrote its pids and is recorded as the task's agent_child. */
async function hangingAgent(p: FakeProject, task: string, pidsFile: string): Promise<{ child: number; grandchild: number }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const pids = await readFile(pidsFile, 'utf8').then(
      (text) => JSON.parse(text) as { child: number; grandchild: number },
      () => null,
    );
    if (pids && (await p.state())?.tasks[task]?.agent_child?.pid === pids.child) {
      strays.push(pids.child, pids.grandchild);
      return pids;
    }
    if (Date.now() > deadline) throw new Error(`no agent recorded for ${task}`);
    await delay(50);
  }
}

async function gone(pids: { child: number; grandchild: number }): Promise<boolean[]> {
  for (let i = 0; i < 100 && (isProcessAlive(pids.child) || isProcessAlive(pids.grandchild)); i++) await delay(50);
  return [isProcessAlive(pids.child), isProcessAlive(pids.grandchild)];
}

describe('an agent that outlived its runner is stopped before its task runs again', () => {
  it('orchestrate --resume after a SIGKILL: the old claude is stopped (identity-checked), then the task runs once more and completes', async () => {
    const pidsFile = path.join(await import('node:os').then((os) => os.tmpdir()), `dto-orphan-${process.pid}-${Date.now()}.json`);
    const p = await fakeProject('hang', { FAKE_CLAUDE_PIDS: pidsFile });
    await writeFile(path.join(p.dir, 'plan.yaml'), ['tasks:', '  - { id: A, goal: "do A" }'].join('\n'));
    const runner = start('orchestrate', ['plan.yaml', '--agent', 'claude', '--quiet'], p.dir, p.env);
    children.push(runner);
    const pids = await hangingAgent(p, 'A', pidsFile);
    const recorded = (await p.state())!.tasks.A!.agent_child!;
    expect(recorded.start).toBe(processStartTime(pids.child));
    runner.kill('SIGKILL');
    await runner;
    expect(isProcessAlive(pids.child)).toBe(true); // A process group of its own: the runner's death left it running.

    const resumed = await run('orchestrate', ['plan.yaml', '--agent', 'claude', '--resume'], p.dir, {
      ...p.env,
      FAKE_CLAUDE_SCENARIO: 'success',
    });
    expect(resumed.exitCode, resumed.all).toBe(0);
    expect(resumed.all).toContain(`A: its previous agent (pid ${pids.child}) outlived its runner and was still running: stopped it`);
    expect(await gone(pids)).toEqual([false, false]);
    const task = (await p.state())!.tasks.A!;
    expect(task.status).toBe('completed');
    expect(task.attempts).toBe(2);
  }, 120_000);

  it('poll-session --replace_dead after the agent script was SIGKILLed: the old claude is stopped before the replacement starts', async () => {
    const pidsFile = path.join(await import('node:os').then((os) => os.tmpdir()), `dto-orphan-r-${process.pid}-${Date.now()}.json`);
    const p = await fakeProject('hang', { FAKE_CLAUDE_PIDS: pidsFile });
    const agent = start('spawn-agent', ['--task_name', 'A', '--goal', 'do A', '--retries', '1'], p.dir, p.env);
    children.push(agent);
    const pids = await hangingAgent(p, 'A', pidsFile);
    agent.kill('SIGKILL');
    await agent;
    expect(isProcessAlive(pids.child)).toBe(true);

    const poll = await run('poll-session', ['--replace_dead', '--timeout', '60'], p.dir, { ...p.env, FAKE_CLAUDE_SCENARIO: 'success' });
    expect(poll.all).toContain(`A: its previous agent (pid ${pids.child}) outlived its runner and was still running: stopped it`);
    expect(await gone(pids)).toEqual([false, false]);
    expect(poll.exitCode, poll.all).toBe(0);
    const task = (await p.state())!.tasks.A!;
    expect(task.status).toBe('completed');
    expect(task.attempts).toBe(2);
  }, 120_000);
});
