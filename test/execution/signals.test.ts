// Nothing is signalled that is not ours: recorded identities (pid + start time) are checked before every signal.
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main as cancelMain } from '../../scripts/cancel-session.ts';
import { checkIdentityCached, HOST, identityOf, processStartTime } from '../../scripts/lib/process/identity.ts';
import { terminateProcessTree } from '../../scripts/lib/process/tree.ts';
import { isProcessAlive } from '../../scripts/lib/process/signals.ts';
import { readState, updateState } from '../../scripts/lib/state/state-store.ts';
import { deathReason, openSession, reapDeadTasks, registerTask, setStatus } from '../../scripts/lib/scheduling/transitions.ts';
import { fakeProject } from '../support/claude-fixtures.ts';
import { run, start, tempProject } from '../support/project.ts';

type Project = Awaited<ReturnType<typeof tempProject>>;

const children: Array<ReturnType<typeof execa>> = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill('SIGKILL');
    await child.catch(() => undefined);
  }
});

/** A process that has nothing to do with the session: it only sleeps. */
function decoy(): ReturnType<typeof execa> & { pid: number } {
  const child = execa('sleep', ['120'], { reject: false });
  children.push(child);
  return child as ReturnType<typeof execa> & { pid: number };
}

/** Writes a session whose task `name` is running, owned by the given (hand-made) identity. */
async function sessionWithOwner(
  project: Project,
  name: string,
  owner: { pid: number; start: string | null },
  status: 'running' | 'waiting' = 'running',
) {
  await updateState(project.paths, (tx) => {
    const state = openSession(tx, { sessionId: 'sig' });
    registerTask(tx, state, { name, goal: 'g', runner: 'mock', pid: owner.pid, pidStart: owner.start });
    setStatus(tx, state, name, status);
  });
}

describe('cancel-session signals only the recorded agent', () => {
  it("leaves alone a process that took a dead agent's pid (other start time), and still cancels the task", async () => {
    const project = await tempProject('dto-sig-');
    const other = decoy();
    await delay(100);
    // The agent that registered the task had another start time: the decoy merely reuses its pid.
    await sessionWithOwner(project, 'victim', { pid: other.pid, start: 'not-the-decoys-start' });
    const result = await run('cancel-session', ['--grace_ms', '300'], project.dir);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toContain('Cancelled 1 task(s): victim.');
    expect(result.stdout).toContain('Stopped 0 agent process(es).');
    expect(result.stdout).toMatch(/Not signalled \(task victim\): its agent \(pid \d+\) had already exited/);
    await delay(300);
    expect(isProcessAlive(other.pid)).toBe(true);
    expect(other.exitCode).toBeNull();
    expect((await project.state())!.tasks.victim!.status).toBe('cancelled');
  });

  it('does not signal a live process recorded without a start time (an old state file): it cannot be told from a pid reuse', async () => {
    const project = await tempProject('dto-sig-');
    const other = decoy();
    await delay(100);
    await sessionWithOwner(project, 'legacy', { pid: other.pid, start: null });
    // registerTask fills in the live process's start time when none is given: clear it as an old file would have it.
    await updateState(project.paths, (tx) => {
      tx.state!.tasks.legacy!.pid_start = null;
    });
    const result = await run('cancel-session', ['--grace_ms', '300'], project.dir);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toMatch(/Not signalled \(task legacy\): pid \d+ has no recorded start time/);
    await delay(300);
    expect(isProcessAlive(other.pid)).toBe(true);
  });

  it('stops a verified agent that leads its own process group, with its child processes', async () => {
    const project = await tempProject('dto-sig-');
    // An "agent" in a group of its own (as scripts/run starts them) with a child that ignores nothing.
    const agent = execa(
      process.execPath,
      ['-e', "require('child_process').spawn('sleep', ['120'], { stdio: 'ignore' }); setInterval(() => {}, 1000)"],
      {
        detached: true,
        reject: false,
      },
    );
    children.push(agent);
    let descendants: number[] = [];
    for (let i = 0; i < 100 && descendants.length === 0; i++) {
      await delay(50);
      const { listDescendants } = await import('../../scripts/lib/process/tree.ts');
      descendants = listDescendants(agent.pid!);
    }
    expect(descendants).toHaveLength(1);
    await sessionWithOwner(project, 'tree', { pid: agent.pid!, start: processStartTime(agent.pid!) });
    const result = await run('cancel-session', ['--grace_ms', '2000'], project.dir);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toContain('Stopped 1 agent process(es).');
    await agent;
    for (let i = 0; i < 100 && isProcessAlive(descendants[0]); i++) await delay(50);
    expect(isProcessAlive(descendants[0])).toBe(false);
  });
});

describe('the claude CLI an agent runs is recorded and stopped too', () => {
  it('after its spawn-agent was SIGKILLed, cancel-session still stops the orphaned claude process tree', async () => {
    const p = await fakeProject('hang');
    const pidsFile = path.join(p.logDir, 'pids.json');
    const agent = start('spawn-agent', ['--task_name', 'orphaned', '--goal', 'g', '--retries', '0'], p.dir, {
      ...p.env,
      FAKE_CLAUDE_PIDS: pidsFile,
    });
    children.push(agent);
    let pids: { child: number; grandchild: number } | null = null;
    for (let i = 0; i < 400 && !pids; i++) {
      await delay(50);
      pids = await readFile(pidsFile, 'utf8').then(
        (text) => JSON.parse(text) as { child: number; grandchild: number },
        () => null,
      );
    }
    expect(pids).not.toBeNull();
    for (let i = 0; i < 200 && (await p.state())?.tasks.orphaned?.agent_child?.pid !== pids!.child; i++) await delay(50);
    expect((await p.state())!.tasks.orphaned!.agent_child).toMatchObject({ pid: pids!.child, start: processStartTime(pids!.child) });
    // The agent dies without cleaning up; its claude (a group of its own) lives on.
    agent.kill('SIGKILL');
    await agent;
    expect(isProcessAlive(pids!.child)).toBe(true);
    const result = await run('cancel-session', ['--grace_ms', '2000'], p.dir);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.stdout).toContain('Stopped 1 agent process(es).');
    for (let i = 0; i < 100 && (isProcessAlive(pids!.child) || isProcessAlive(pids!.grandchild)); i++) await delay(50);
    expect([isProcessAlive(pids!.child), isProcessAlive(pids!.grandchild)]).toEqual([false, false]);
  });
});

describe('hand-edited pids never reach kill(2) as pid 1, 0 or a negative group', () => {
  /** Spies on process.kill: existence probes (signal 0) of pids > 1 go through, every real signal is only recorded. */
  function spyKill() {
    const original = process.kill.bind(process);
    const calls: Array<{ pid: number; signal: string | number | undefined }> = [];
    const spy = vi.spyOn(process, 'kill').mockImplementation((pid: number, signal?: string | number) => {
      calls.push({ pid, signal });
      if (signal === 0 && pid > 1) return original(pid, 0);
      return true;
    });
    return { calls, restore: () => spy.mockRestore() };
  }

  it.each([
    ['pid 1 with a start time', { pid: 1, start: '1' }],
    ['pid 1 without a start time', { pid: 1, start: null }],
  ])('%s: the task is cancelled, nothing is signalled', async (_label, owner) => {
    const project = await tempProject('dto-sig-');
    await sessionWithOwner(project, 'init', owner);
    await updateState(project.paths, (tx) => {
      tx.state!.tasks.init!.pid_start = owner.start;
    });
    const kills = spyKill();
    let out = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
    try {
      expect(await cancelMain(['--grace_ms', '100', '--session_dir', project.paths.dir])).toBe(0);
    } finally {
      write.mockRestore();
      kills.restore();
    }
    expect(kills.calls.filter((call) => call.signal !== 0)).toEqual([]);
    expect(kills.calls.filter((call) => call.pid <= 1)).toEqual([]);
    expect(out).toMatch(/Not signalled \(task init\): pid 1 can never be an agent/);
    expect((await readState(project.paths))!.tasks.init!.status).toBe('cancelled');
  });

  it.each([['0'], ['-1'], ['-42']])('pid %s in the state file: refused as a corrupt state, nothing is signalled', async (bad) => {
    const project = await tempProject('dto-sig-');
    await sessionWithOwner(project, 'group', { pid: 424242, start: '1' });
    const text = await readFile(project.paths.statePath, 'utf8');
    expect(text).toMatch(/^ {4}pid: 424242$/m);
    await writeFile(project.paths.statePath, text.replace(/^ {4}pid: 424242$/m, `    pid: ${bad}`));
    const kills = spyKill();
    try {
      await expect(cancelMain(['--grace_ms', '100', '--session_dir', project.paths.dir])).rejects.toThrow(/pid/);
    } finally {
      kills.restore();
    }
    expect(kills.calls).toEqual([]);
  });

  it('terminateProcessTree refuses pid 1, 0 and negative pids without any kill call', async () => {
    const kills = spyKill();
    try {
      for (const pid of [1, 0, -1, -7, 1.5]) {
        const result = await terminateProcessTree({ pid, start: '1', host: HOST }, { graceMs: 10 });
        expect(result.refused).toMatch(/can never be an agent/);
        expect(result.terminated + result.killed).toBe(0);
      }
    } finally {
      kills.restore();
    }
    expect(kills.calls).toEqual([]);
  });
});

describe('dead-agent detection uses the identity', () => {
  it('a task whose pid now belongs to another process is dead, and reaping marks it failed', async () => {
    const project = await tempProject('dto-sig-');
    const other = decoy();
    await delay(100);
    await sessionWithOwner(project, 'reused', { pid: other.pid, start: 'not-the-decoys-start' });
    await sessionWithOwner(project, 'alive', { pid: process.pid, start: identityOf(process.pid)!.start });
    const state = (await readState(project.paths))!;
    expect(deathReason(state, state.tasks.reused!, new Date())).toMatch(
      /^agent process exited without reporting \(pid \d+ now belongs to another process\)$/,
    );
    expect(deathReason(state, state.tasks.alive!, new Date())).toBeNull();
    const reaped = await updateState(project.paths, (tx) => reapDeadTasks(tx, tx.state!));
    expect(reaped).toEqual(['reused']);
    expect((await readState(project.paths))!.tasks.reused).toMatchObject({ status: 'failed', agent_died: true });
    expect(isProcessAlive(other.pid)).toBe(true);
  });

  it('the cached check used for liveness sees an exit at once, and a mismatching start time at once', async () => {
    const other = decoy();
    await delay(100);
    const recorded = identityOf(other.pid)!;
    expect(checkIdentityCached(recorded)).toBe('alive');
    expect(checkIdentityCached(recorded)).toBe('alive');
    expect(checkIdentityCached({ ...recorded, start: 'other' })).toBe('gone');
    other.kill('SIGKILL');
    await other;
    expect(checkIdentityCached(recorded)).toBe('gone');
    expect(checkIdentityCached({ pid: 1, start: null })).toBe('gone');
    expect(checkIdentityCached({ ...recorded, host: `${HOST}-elsewhere` })).toBe('unknown');
  });

  it('a task recorded with pid 1 is dead, never alive', async () => {
    const project = await tempProject('dto-sig-');
    await sessionWithOwner(project, 'init', { pid: 1, start: null });
    const state = (await readState(project.paths))!;
    expect(deathReason(state, state.tasks.init!, new Date())).toMatch(/pid 1 can never be an agent/);
  });
});
