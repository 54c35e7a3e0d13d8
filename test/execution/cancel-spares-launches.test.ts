// Cancelling one task stops that task's processes only: an agent its process launched for another task (a queued task
// it started at a heartbeat, or after its own task ended) is that task's, not part of the cancelled agent's tree.
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { isProcessRunning, terminateProcessTree } from '../../scripts/lib/process/tree.ts';
import { updateState } from '../../scripts/lib/state/state-store.ts';
import { openSession } from '../../scripts/lib/scheduling/transitions.ts';
import { run, start, tempProject } from '../support/project.ts';
import { waitForState } from '../support/wait-state.ts';

/** The parent pid of a live process, from /proc (this test runs on Linux). */
const parentOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);

const roots: Array<ReturnType<typeof execa>> = [];
afterEach(async () => {
  for (const root of roots.splice(0)) {
    root.kill('SIGKILL');
    await root.catch(() => undefined);
  }
});

describe('cancel-session spares the agents a cancelled agent launched for other tasks', () => {
  it("a queued task started by a running agent's heartbeat, as its child, still completes when that agent is cancelled", async () => {
    const project = await tempProject('dto-spare-');
    await updateState(project.paths, (tx) => {
      // A short lease: heartbeats (each lease / 3) take the scheduling decision often.
      openSession(tx, { sessionId: 'spare', maxWorkers: 2 }).lease_ms = 3000;
    });
    const mock = (name: string, ...args: string[]) =>
      start('spawn-agent-mock', ['--task_name', name, '--goal', `goal ${name}`, '--session_id', 'spare', ...args], project.dir);
    const keeper = mock('keeper', '--delay_ms', '600000');
    const victim = mock('victim', '--delay_ms', '600000');
    const both = await waitForState(project, (s) => s.tasks.keeper?.status === 'running' && s.tasks.victim?.status === 'running');
    // Queued: both slots are taken. Its process exits at once.
    expect((await mock('later', '--delay_ms', '8000')).stdout).toContain('later is queued');
    // The victim dies without giving its slot on; the keeper's next heartbeat records the death and launches `later`.
    process.kill(both.tasks.victim!.pid!, 'SIGKILL');
    await victim;
    const launched = await waitForState(project, (s) => s.tasks.later?.status === 'running' && s.tasks.later.pid !== null, 30_000);
    const laterPid = launched.tasks.later!.pid!;
    // What makes this case: the launched agent is a child of the keeper's process, so in the keeper's process tree.
    expect(parentOf(laterPid)).toBe(launched.tasks.keeper!.pid);

    const cancel = await run('cancel-session', ['--task', 'keeper', '--grace_ms', '1000'], project.dir);
    expect(cancel.exitCode, cancel.all).toBe(0);
    expect(cancel.stdout).toContain('Cancelled 1 task(s): keeper.');
    await keeper;
    const done = await waitForState(project, (s) => !['running', 'waiting'].includes(s.tasks.later?.status ?? ''), 60_000);
    expect(done.tasks.later).toMatchObject({ status: 'completed', attempts: 1, pid: laterPid });
    expect(done.tasks.keeper!.status).toBe('cancelled');
  }, 120_000);

  it('terminateProcessTree with spareSessions stops the root and its children, not a descendant that leads a session of its own', async () => {
    const spared = await tree();
    const whole = await tree();
    try {
      expect(await terminateProcessTree(spared.root, { graceMs: 2000, spareSessions: true })).toMatchObject({ refused: null, killed: 0 });
      expect([isProcessRunning(spared.plain), isProcessRunning(spared.own)]).toEqual([false, true]);
      // Without the option the same kind of tree is stopped whole.
      expect(await terminateProcessTree(whole.root, { graceMs: 2000 })).toMatchObject({ refused: null, killed: 0 });
      expect([isProcessRunning(whole.plain), isProcessRunning(whole.own)]).toEqual([false, false]);
    } finally {
      for (const pid of [spared.plain, spared.own, whole.plain, whole.own]) if (isProcessRunning(pid)) process.kill(pid, 'SIGKILL');
    }
  }, 30_000);
});

/** A root with a plain child and a detached (setsid) child, as an agent process with a child of its own and an agent it launched. */
async function tree(): Promise<{ root: number; plain: number; own: number }> {
  const script = [
    "const { spawn } = require('node:child_process');",
    "const plain = spawn('sleep', ['120'], { stdio: 'ignore' });",
    "const own = spawn('sleep', ['120'], { stdio: 'ignore', detached: true });",
    'own.unref();',
    'console.log(JSON.stringify({ plain: plain.pid, own: own.pid }));',
    'setInterval(() => {}, 1000);',
  ].join('\n');
  const root = execa(process.execPath, ['-e', script], { reject: false, buffer: false });
  roots.push(root);
  const pids = await new Promise<{ plain: number; own: number }>((resolve) =>
    root.stdout.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString()) as { plain: number; own: number })),
  );
  return { root: root.pid!, ...pids };
}
