// An agent killed and not yet reaped (a zombie: its parent does not collect it) has exited: it is not alive.
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { checkIdentity, checkIdentityCached, HOST, processStartTime } from '../../scripts/lib/process/identity.ts';
import { updateState } from '../../scripts/lib/state/state-store.ts';
import { openSession, registerTask } from '../../scripts/lib/scheduling/transitions.ts';
import { run, tempProject } from '../support/project.ts';

const parents: Array<ReturnType<typeof execa>> = [];
afterEach(async () => {
  for (const parent of parents.splice(0)) {
    parent.kill('SIGKILL');
    await parent.catch(() => undefined);
  }
});

/** A zombie: `sleep 0.1` whose parent (`sh` replaced by `sleep 60`) never collects it. @returns its pid and start token. */
async function zombie(): Promise<{ pid: number; start: string }> {
  const parent = execa('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 60'], { reject: false, buffer: false });
  parents.push(parent);
  const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (chunk: Buffer) => resolve(Number(String(chunk).trim()))));
  const start = processStartTime(pid)!;
  for (let i = 0; i < 200 && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '); i++) await delay(20);
  expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toContain(') Z ');
  return { pid, start };
}

describe('a zombie agent', () => {
  it('is gone to the identity checks, though its pid and start time are still listed', async () => {
    const { pid, start } = await zombie();
    expect(processStartTime(pid)).toBe(start);
    expect(checkIdentity({ pid, start, host: HOST })).toBe('gone');
    expect(checkIdentityCached({ pid, start, host: HOST })).toBe('gone');
  });

  it('orchestrate right after a run was killed does not refuse to start because its zombie agent "is still running"', async () => {
    const project = await tempProject('dto-zombie-');
    const { pid, start } = await zombie();
    await updateState(project.paths, (tx) => {
      const state = openSession(tx, { sessionId: 'killed' });
      registerTask(tx, state, { name: 'a', goal: 'g', runner: 'mock', pid });
      Object.assign(state.tasks.a!, { status: 'running', pid_start: start, host: HOST, heartbeat_at: tx.now.toISOString() });
    });
    await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - { id: b, goal: "do b", delay_ms: 10 }\n');
    const next = await run('orchestrate', ['plan.yaml', '--agent', 'mock'], project.dir);
    expect(next.stderr).not.toContain('is still running');
    expect(next.exitCode, next.all).toBe(0);
  });
});
