// The options and outcome of the plan runner (plan-runner.ts).
import type { AgentExecutor } from '../agents/agent-types.ts';
import type { SessionChoice } from '../scheduling/transitions.ts';
import type { RunnerKind, SessionState, TaskStatus } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import type { Plan, PlanTask } from './plan.ts';

/** What to do with tasks not started yet when one fails. */
export type FailurePolicy = 'stop' | 'continue';

/** Options of {@link runPlan}. */
export interface PlanRunOptions {
  paths: SessionPaths;
  plan: Plan;
  workers: number;
  runner: RunnerKind;
  /** Builds the executor of one task (mock delay/fail are per task). */
  executorFor: (task: PlanTask) => AgentExecutor;
  outputDir: string;
  agentCwd: string;
  /** Keep the current session and run only tasks not completed in it. */
  resume: boolean;
  onFailure: FailurePolicy;
  /** A line of progress (default: nothing). */
  log?: (line: string) => void;
  /**
   * The progress line of a task whose status changed, given to `log` (an injected printer, as Nx's life cycles: the
   * runner imports no output code). Default `<name> <status>` (execution/background-options.ts `plainTaskLine`).
   */
  describe?: (state: SessionState, name: string) => string;
  /** Aborting cancels the run: running tasks are stopped and marked failed with the reason. */
  signal?: AbortSignal;
  /** Id of the new session (orchestrate --session_id, --detach); default a fresh one. Ignored with `resume`. */
  sessionId?: string;
  /** With `resume`: run `merge_failed` tasks again too (orchestrate --retry_merge); by default they stay as they are. */
  retryMerge?: boolean;
  /** `--adaptive`, `--budget_usd`, `--on_budget` (scheduling/capacity.ts, budget.ts); absent ones keep the session's. */
  limits?: Pick<SessionChoice, 'adaptive' | 'budgetUsd' | 'onBudget'>;
}

/** Outcome of a plan run. */
export interface PlanRunResult {
  sessionId: string;
  statuses: Record<string, TaskStatus>;
  /** Task names in the order they started. */
  startOrder: string[];
}
