// The plan runner and the session budget, in process: a running agent's live cost reaching the budget with --on_budget stop
// cancels the running tasks through the normal cancel path; with finish they run to their end. Each agent's share is handed to it.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentContext, AgentExecutor } from '../../scripts/lib/agents/agent-types.ts';
import type { Plan } from '../../scripts/lib/plan/plan.ts';
import { runPlan } from '../../scripts/lib/plan/plan-runner.ts';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { resolveSessionPaths } from '../../scripts/lib/state/session-paths.ts';
import { readState } from '../../scripts/lib/state/state-store.ts';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

function plan(dir: string, count: number): Plan {
  return {
    path: path.join(dir, 'plan.yaml'),
    format: 'yaml',
    request: null,
    maxWorkers: null,
    isolation: null,
    tasks: Array.from({ length: count }, (_, i) => ({ id: `t${i + 1}`, goal: 'spend', dependsOn: [], priority: 'P2' as const, files: [] })),
  };
}

/**
 * An agent that reports a live cost of `perStep` USD more every 50 ms for `steps` steps, then completes with that
 * cost, or stops when its signal is aborted. Records the budget share each agent was handed.
 */
function spendingAgent(perStep: number, steps: number, shares: Array<number | null | undefined>): AgentExecutor {
  return async (ctx: AgentContext) => {
    shares.push(ctx.budgetShareUsd);
    let spent = 0;
    for (let step = 1; step <= steps; step++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (ctx.signal.aborted) return { status: 'failed', error: 'stopped', body: '' };
      spent = Math.round(step * perStep * 1e6) / 1e6;
      await ctx.recordProgress?.({
        turns: step,
        last_tool: null,
        input_tokens: 0,
        output_tokens: 0,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        est_cost_usd: spent,
        api_retries: 0,
        last_api_error: null,
        last_event_at: new Date().toISOString(),
      });
    }
    return { status: 'completed', body: 'done', record: { cost_usd: spent } };
  };
}

async function runWithBudget(onBudget: 'finish' | 'stop', steps: number) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dto-budget-stop-'));
  dirs.push(dir);
  const paths = resolveSessionPaths({ cwd: dir });
  const shares: Array<number | null | undefined> = [];
  const result = await runPlan({
    paths,
    plan: plan(dir, 4),
    workers: 2,
    runner: 'claude',
    executorFor: () => spendingAgent(0.01, steps, shares),
    outputDir: path.join(dir, 'results'),
    agentCwd: dir,
    resume: false,
    onFailure: 'continue',
    limits: { budgetUsd: 0.1, onBudget },
  });
  const state = (await readState(paths))!;
  return { result, state, shares, events: await readEvents(paths.eventsPath) };
}

describe('the session budget in the plan runner', () => {
  it("--on_budget stop: once the running agents' live costs reach the budget they are cancelled, the rest skipped", async () => {
    // Two agents at once, each would spend 0.01 per step for 60 steps (0.60): the budget of 0.10 is reached after ~5 steps each.
    const { result, state, shares, events } = await runWithBudget('stop', 60);
    expect(Object.values(result.statuses).sort()).toEqual(['cancelled', 'cancelled', 'skipped', 'skipped']);
    for (const task of Object.values(state.tasks)) expect(task.error).toMatch(/^budget: \$0\.\d{4} of \$0\.1000 spent/);
    const cancelled = Object.values(state.tasks).filter((task) => task.status === 'cancelled');
    expect(cancelled.every((task) => /--on_budget stop/.test(task.error!))).toBe(true);
    // Each agent was handed its share: the budget less the other running agent's reserve (0.1 / (2 x 2)).
    expect(shares).toEqual([0.075, 0.075]);
    expect(events.filter((e) => e.type === 'budget')).toHaveLength(1);
  });

  it('--on_budget finish: the running agents finish; no task starts once the budget is reached', async () => {
    // Each agent spends 0.04: two run (0.08), then 0.08 + a 0.04 reserve passes 0.10, so the other two are skipped.
    const { result, state } = await runWithBudget('finish', 4);
    expect(Object.values(result.statuses).sort()).toEqual(['completed', 'completed', 'skipped', 'skipped']);
    const spent = Object.values(state.tasks).reduce((sum, task) => sum + (task.cost_usd ?? 0), 0);
    expect(spent).toBeCloseTo(0.08, 9);
    expect(state.tasks.t3!.error).toBe(
      'budget: $0.0800 of $0.1000 spent (a task is expected to cost about $0.0400; raise --budget_usd to run the rest)',
    );
  });
});
