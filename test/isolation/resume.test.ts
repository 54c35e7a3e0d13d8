import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { AgentContext, AgentExecutor } from '../../scripts/lib/agents/agent-types.ts';
import { withWorktreeIsolation } from '../../scripts/lib/isolation/isolated-executor.ts';
import { openRepository } from '../../scripts/lib/isolation/worktree.ts';
import { createMockExecutor } from '../../scripts/lib/agents/mock-agent.ts';
import { run, start } from '../support/project.ts';
import { tempRepo } from './git-repo.ts';
import { agentContext } from '../support/agent-context.ts';

/** How often each task's merge commit appears in the integration branch's first-parent history. */
async function mergesPerTask(repo: Awaited<ReturnType<typeof tempRepo>>, branch: string): Promise<Record<string, number>> {
  const subjects = (await repo.git(['log', '--first-parent', '--format=%s', branch])).split('\n');
  const counts: Record<string, number> = {};
  for (const subject of subjects) {
    const name = /^Merge (\S+)/.exec(subject)?.[1];
    if (name) counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

/** The context the task lifecycle gives an executor (session S1, attempt 1). */
function context(cwd: string, taskName: string): AgentContext {
  return agentContext(cwd, {
    taskName,
    goal: `do ${taskName}`,
    session_id: 'S1',
    resultPath: path.join(cwd, `.agent/results/${taskName}.md`),
  });
}

describe('isolated runs resumed after SIGKILL', () => {
  it('orchestrate killed mid-queue, then --resume: every task merged exactly once, no append applied twice', async () => {
    const repo = await tempRepo({ 'log.txt': '' });
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const plan = [
      'tasks:',
      ...names.map(
        (id, i) =>
          `  - { id: ${id}, goal: "append ${id}", ${i > 0 ? `depends_on: [${names[i - 1]}], ` : ''}delay_ms: 300, append: { "log.txt": "${id}\\n" } }`,
      ),
    ];
    await writeFile(path.join(repo.dir, 'plan.yaml'), plan.join('\n'));
    const before = await repo.snapshot();
    const child = start('orchestrate', ['plan.yaml', '--agent', 'mock', '--isolation', 'worktree'], repo.dir);
    // Killed once two tasks completed, however long the start takes (a loaded machine once needed more than 6 s).
    const deadline = Date.now() + 120_000;
    for (;;) {
      const state = await repo.state().catch(() => null);
      if (state && Object.values(state.tasks).filter((t) => t.status === 'completed').length >= 2) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`two tasks never completed: ${JSON.stringify(state?.tasks)}`);
      await delay(20);
    }
    child.kill('SIGKILL');
    await child;
    const killed = (await repo.state())!;
    const completedAtKill = Object.values(killed.tasks).filter((t) => t.status === 'completed').length;
    expect(completedAtKill).toBeGreaterThanOrEqual(2);
    expect(completedAtKill).toBeLessThan(names.length);

    const resumed = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--isolation', 'worktree', '--resume'], repo.dir);
    expect(resumed.exitCode, resumed.all).toBe(0);
    const state = (await repo.state())!;
    expect(Object.values(state.tasks).map((t) => t.merge?.status)).toEqual(Array(names.length).fill('merged'));
    const branch = state.integration!.branch;
    expect(await mergesPerTask(repo, branch)).toEqual(Object.fromEntries(names.map((name) => [name, 1])));
    expect(await repo.git(['show', `${branch}:log.txt`])).toBe(names.join('\n'));
    expect(state.integration!.tip).toBe(await repo.git(['rev-parse', branch]));
    expect(await repo.snapshot()).toEqual(before);
    expect(await repo.extraWorktrees()).toEqual([]);
  });

  it('a run killed after its merge but before its state was written is not merged again, and its agent does not run again', async () => {
    const repo = await tempRepo();
    const opened = await openRepository(repo.dir);
    let agentRuns = 0;
    const mock = createMockExecutor({ delayMs: 0, edits: [{ kind: 'append', path: 'x.txt', text: 'once\n' }] });
    const counting: AgentExecutor = (ctx) => {
      agentRuns += 1;
      return mock(ctx);
    };
    const ctx = { ...context(repo.dir, 'T1'), goal: 'append once', files: ['x.txt'] };
    const executor = withWorktreeIsolation(counting, { repo: opened });
    const first = await executor(ctx);
    expect(first.status).toBe('completed');
    // The state never heard of it (the process died after update-ref): the task runs again.
    const second = await executor({ ...ctx, attempt: 2 });
    expect(second.status).toBe('completed');
    expect(agentRuns).toBe(1);
    expect(second.record?.merge?.commit).toBe(first.record?.merge?.commit);
    expect(await mergesPerTask(repo, 'dto/S1/integration')).toEqual({ T1: 1 });
    expect(await repo.git(['show', 'dto/S1/integration:x.txt'])).toBe('once');
  });

  it("hands the agent copies of its dependencies' results inside its worktree, and commits none of them", async () => {
    const repo = await tempRepo();
    const opened = await openRepository(repo.dir);
    const depResult = path.join(repo.dir, 'A.md');
    await writeFile(depResult, '# A\nthe answer\n');
    let seen: { path: string; text: string; cwd: string } | null = null;
    const reader: AgentExecutor = async (ctx) => {
      const file = ctx.dependencyResults.A!;
      seen = { path: file, text: await readFile(file, 'utf8'), cwd: ctx.cwd };
      await writeFile(path.join(ctx.cwd, 'b.txt'), 'b');
      return { status: 'completed', body: 'done' };
    };
    const executor = withWorktreeIsolation(reader, { repo: opened });
    const outcome = await executor({ ...context(repo.dir, 'B'), dependsOn: ['A'], dependencyResults: { A: depResult } });
    expect(outcome.status).toBe('completed');
    expect(seen!.path.startsWith(seen!.cwd + path.sep)).toBe(true);
    expect(seen!.text).toBe('# A\nthe answer\n');
    const tree = (await repo.git(['ls-tree', '-r', '--name-only', 'dto/S1/integration'])).split('\n');
    expect(tree.sort()).toEqual(['.gitignore', 'README.md', 'b.txt']);
  });
});
