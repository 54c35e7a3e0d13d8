// The session budget (`--budget_usd`): what is spent and committed, whether a task may start, and each claude agent's share (--max-budget-usd).
import type { SessionState, TaskRecord } from '../state/model.ts';

/** Statuses that hold a worker slot (kept here, not imported from scheduling.ts, which imports this file). */
const SLOT = new Set(['running', 'retrying']);

/** What a session's money looks like now (US dollars). */
export interface BudgetPicture {
  /** The cap, or null when the session has none. */
  budgetUsd: number | null;
  /** What every task is known to have cost ({@link recordedCost}), running ones' earlier attempts included. */
  spentUsd: number;
  /** `spentUsd` plus the running agents' live estimates (the money already gone, as far as is known). */
  spentLiveUsd: number;
  /** `spentUsd` plus what the running agents are expected to cost in all (see {@link runningEstimate}). */
  committedUsd: number;
  /** The cost assumed for a task that has not started (see {@link taskReserve}). */
  reserveUsd: number;
}

/**
 * The cost assumed for one task not started yet, or a running one without an estimate (USD):
 * `budget.reserve_usd` when set; else the mean recorded cost of the completed tasks that cost
 * something; else, before any, `budget / (2 * max_workers)` (a full pool then commits half the
 * budget). 0 without a budget.
 */
export function taskReserve(state: SessionState): number {
  const { budget } = state;
  if (budget.usd === null) return 0;
  if (budget.reserve_usd !== null) return budget.reserve_usd;
  const costs = Object.values(state.tasks)
    .filter((task) => task.status === 'completed' && typeof task.cost_usd === 'number' && task.cost_usd > 0)
    .map((task) => task.cost_usd!);
  if (costs.length > 0) return costs.reduce((a, b) => a + b, 0) / costs.length;
  return budget.usd / (2 * state.max_workers);
}

/**
 * What a running task is expected to cost in all (USD): its earlier attempts' recorded cost plus
 * the larger of its live estimate (task field `live.est_cost_usd`) and the reserve, so an agent that
 * has just started is not counted as free.
 */
export function runningEstimate(task: TaskRecord, reserve: number): number {
  return (task.cost_usd ?? 0) + Math.max(task.live?.est_cost_usd ?? 0, reserve);
}

/**
 * What a task is known to have cost (USD): `cost_usd` (the CLI's figures, summed over attempts), plus,
 * for an attempt that ended without reporting (cancelled, or its agent died), that attempt's live
 * estimate: its money is spent all the same.
 */
export function recordedCost(task: TaskRecord): number {
  const unreported = task.status === 'cancelled' || (task.status === 'failed' && task.agent_died);
  return (task.cost_usd ?? 0) + (unreported ? (task.live?.est_cost_usd ?? 0) : 0);
}

/** The {@link BudgetPicture} of a state; `statusOf` overrides statuses (a decision's view of them). */
export function budgetPicture(
  state: SessionState,
  statusOf: (name: string, task: TaskRecord) => string = (_n, t) => t.status,
): BudgetPicture {
  const reserve = taskReserve(state);
  let spent = 0;
  let live = 0;
  let committed = 0;
  for (const [name, task] of Object.entries(state.tasks)) {
    const recorded = recordedCost(task);
    spent += recorded;
    if (SLOT.has(statusOf(name, task))) {
      live += task.live?.est_cost_usd ?? 0;
      committed += runningEstimate(task, reserve) - recorded;
    }
  }
  return { budgetUsd: state.budget.usd, spentUsd: spent, spentLiveUsd: spent + live, committedUsd: spent + committed, reserveUsd: reserve };
}

/** `$0.0123`: dollars for messages (4 decimals below $1, 2 above). */
export function usd(value: number): string {
  return `$${value < 1 ? value.toFixed(4) : value.toFixed(2)}`;
}

/**
 * Whether the budget is reached: even with nothing running, one more task (the reserve) would not
 * fit (`spent + reserve >= budget`, see {@link budgetAdmits}). Then no task starts any more and the waiting ones are skipped.
 * @returns the reason text for the skipped tasks (`budget: $0.4200 of $0.4000 spent ...`), or null.
 */
export function budgetReached(picture: BudgetPicture): string | null {
  const { budgetUsd, spentUsd, reserveUsd } = picture;
  if (budgetUsd === null || spentUsd + reserveUsd < budgetUsd - 1e-9) return null;
  return `budget: ${usd(spentUsd)} of ${usd(budgetUsd)} spent (a task is expected to cost about ${usd(reserveUsd)}; raise --budget_usd to run the rest)`;
}

/**
 * Whether one more task may start now: what is spent, what the running agents (and the tasks
 * started earlier in the same decision, `alsoStarting`) are expected to cost, plus a reserve for
 * this one, stays below the budget. Always true without a budget.
 */
export function budgetAdmits(picture: BudgetPicture, alsoStarting = 0): boolean {
  if (picture.budgetUsd === null) return true;
  // Strictly below: the CLI's --max-budget-usd stops a run whose cost reaches its cap even when the answer is
  // ready (observed on 2.1.330: cost $0.015 with a $0.015 cap ended error_max_budget_usd), so a task must get more than its reserve.
  return picture.committedUsd + (alsoStarting + 1) * picture.reserveUsd < picture.budgetUsd - 1e-9;
}

/**
 * With `--on_budget stop`: the reason to stop running agents, when the money known to be gone
 * (recorded costs plus live estimates) reached the budget; else null.
 */
export function budgetStopReason(state: SessionState, picture: BudgetPicture): string | null {
  const { budgetUsd, spentLiveUsd } = picture;
  if (budgetUsd === null || state.budget.on_budget !== 'stop' || spentLiveUsd < budgetUsd) return null;
  return `budget: ${usd(spentLiveUsd)} of ${usd(budgetUsd)} spent (--on_budget stop)`;
}

/**
 * The `--max-budget-usd` of task `name`'s claude agent when it starts (USD): the budget less what is
 * spent and what the other running agents are expected to cost ({@link runningEstimate}), less what
 * this task's earlier attempts cost; never below 0.0001. Null without a budget. The agent's own
 * `--max_budget_usd`, if smaller, wins (claude-agent.ts). The CLI checks it after each API call, so
 * an agent overshoots its share by at most one call (references/cli-integration.md, "Streaming events").
 */
export function agentBudgetShare(state: SessionState, name: string): number | null {
  const budgetUsd = state.budget.usd;
  if (budgetUsd === null || !Object.hasOwn(state.tasks, name)) return null;
  const reserve = taskReserve(state);
  let others = 0;
  for (const [other, task] of Object.entries(state.tasks)) {
    if (other === name) continue;
    others += SLOT.has(task.status) ? runningEstimate(task, reserve) : recordedCost(task);
  }
  const own = state.tasks[name]!.cost_usd ?? 0;
  return Math.max(0.0001, Math.floor((budgetUsd - others - own) * 1e6 + 1e-3) / 1e6);
}
