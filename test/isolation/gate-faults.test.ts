// The merge gate (`--merge_check`) as a hostile command: children that outlive its time limit, and output far larger
// than the tail that is kept.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AgentExecutor } from '../../scripts/lib/agents/agent-types.ts';
import { isProcessRunning } from '../../scripts/lib/process/tree.ts';
import { withWorktreeIsolation } from '../../scripts/lib/isolation/isolated-executor.ts';
import { openRepository } from '../../scripts/lib/isolation/worktree.ts';
import { agentContext } from '../support/agent-context.ts';
import { tempRepo } from './git-repo.ts';

/** An agent that writes one file. */
const writer: AgentExecutor = async (ctx) => {
  await writeFile(path.join(ctx.cwd, `${ctx.taskName}.txt`), 'work\n');
  return { status: 'completed', body: 'done' };
};

async function gated(command: string, timeoutMs: number) {
  const repo = await tempRepo();
  const executor = withWorktreeIsolation(writer, { repo: await openRepository(repo.dir), check: { command, timeoutMs } });
  const ctx = agentContext(repo.dir, { taskName: 'g', session_id: 'S1', resultPath: path.join(repo.dir, '.agent/results/g.md') });
  return { repo, outcome: await executor(ctx) };
}

describe('the merge gate', () => {
  it('at its time limit stops its whole tree, not only sh: children that keep its output open neither hold the merge nor live on', async () => {
    const pids = path.join((await tempRepo()).dir, 'gate-pids');
    const { outcome } = await gated(`sleep 120 & echo $! > ${pids}; (sleep 120; echo late) & echo $! >> ${pids}; wait`, 1500);
    expect(outcome.status).toBe('merge_failed');
    expect(outcome.record?.merge?.gate_output).toMatch(/timed out after 1\.5 s/);
    // Returned at all: before, the merge waited for the children's 120 s, past this test's limit.
    const children = (await readFile(pids, 'utf8')).trim().split('\n').map(Number);
    expect(children).toHaveLength(2);
    expect(children.filter((pid) => isProcessRunning(pid))).toEqual([]);
  }, 60_000);

  it('a passing gate that prints 130 MB on one line keeps only the tail, and the task merges', async () => {
    const { outcome, repo } = await gated("head -c 130000000 /dev/zero | tr '\\\\0' a; echo; echo the end", 120_000);
    expect(outcome.status, outcome.error ?? undefined).toBe('completed');
    expect(outcome.record?.merge?.status).toBe('merged');
    expect(await repo.git(['show', 'dto/S1/integration:g.txt'])).toBe('work');
  }, 120_000);

  it('a failing gate printing 120 MB in lines reports the last lines, in bounded memory', async () => {
    const before = process.memoryUsage().rss;
    const { outcome } = await gated("yes 'a line of gate output' | head -c 120000000; echo 'the last line'; exit 3", 120_000);
    const grown = process.memoryUsage().rss - before;
    expect(outcome.status).toBe('merge_failed');
    const output = outcome.record?.merge?.gate_output ?? '';
    expect(output.length).toBeLessThanOrEqual(2100);
    expect(output.trimEnd().endsWith('the last line')).toBe(true);
    // Keeping the whole output costs about 900 MB; a tail, next to nothing.
    expect(grown).toBeLessThan(200 * 1024 * 1024);
  }, 120_000);
});

describe('a task cancelled while its merge is in the gate', () => {
  it('merges nothing: the gate is stopped, the integration branch keeps its tip, and the work stays on its branch', async () => {
    const repo = await tempRepo();
    const marks = path.join((await tempRepo()).dir, 'gate');
    // The gate says it started and gives its pid, then would pass after 8 s.
    const check = { command: `echo $$ > ${marks}.pid; touch ${marks}.started; sleep 8`, timeoutMs: 60_000 };
    const executor = withWorktreeIsolation(writer, { repo: await openRepository(repo.dir), check });
    const controller = new AbortController();
    const ctx = agentContext(repo.dir, { taskName: 'g', session_id: 'S1', signal: controller.signal });
    const running = executor(ctx);
    for (let i = 0; i < 600 && !existsSync(`${marks}.started`); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(existsSync(`${marks}.started`)).toBe(true);
    const tip = await repo.git(['rev-parse', 'dto/S1/integration']);
    controller.abort(new Error('cancelled by cancel-session'));
    const outcome = await running;
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toBe('cancelled during its merge: nothing merged, work kept on branch dto/S1/tasks/g');
    expect(outcome.record?.merge).toMatchObject({ status: 'not_merged', commit: null });
    expect(await repo.git(['rev-parse', 'dto/S1/integration'])).toBe(tip);
    expect(await repo.git(['show', 'dto/S1/tasks/g:g.txt'])).toBe('work');
    expect(isProcessRunning(Number(await readFile(`${marks}.pid`, 'utf8')))).toBe(false);
  }, 60_000);
});

describe("a gate's scratch worktree left by a run killed during the gate", () => {
  it('is removed by the next merge that holds the merge lock, registration and folder', async () => {
    const repo = await tempRepo();
    const stale = path.join(repo.dir, '.agent/worktrees/.gate/0123456789ab-c0ffee');
    await repo.git(['worktree', 'add', '--quiet', '--detach', stale, 'HEAD']);
    const executor = withWorktreeIsolation(writer, { repo: await openRepository(repo.dir), check: { command: 'true', timeoutMs: 60_000 } });
    const outcome = await executor(agentContext(repo.dir, { taskName: 'next', session_id: 'S1' }));
    expect(outcome.status, outcome.error ?? undefined).toBe('completed');
    expect(await repo.extraWorktrees()).toEqual([]);
    expect(existsSync(stale)).toBe(false);
  });
});
