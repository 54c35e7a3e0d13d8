// The contract between the task lifecycle and an agent runner (mock or real `claude -p`).
import type { LiveProgress } from './claude-stream.ts';
import type { TaskRecord } from '../state/model.ts';
import type { ReceiptDocument } from '../verification/receipt-file.ts';

/** What a runner knows about the task it executes. */
export interface AgentContext {
  taskName: string;
  /** `Agent-01`, ... */
  agent: string;
  goal: string;
  dependsOn: string[];
  files: string[];
  /** 1-based attempt number of this run. */
  attempt: number;
  session_id: string;
  /**
   * When the session was opened (the state's `created_at`): tells it from an earlier session that had
   * the same id (another folder, another host), e.g. in the BullMQ backend's job ids. Optional.
   */
  session_created_at?: string;
  /** The directory the agent works in (the user's project). */
  cwd: string;
  /** Absolute path the result file will be written to (by the lifecycle, not the runner). */
  resultPath: string;
  /** Result files of completed dependencies, by task name (absolute paths). */
  dependencyResults: Record<string, string>;
  /** Aborted on cancel, timeout or a termination signal: stop work and return promptly. */
  signal: AbortSignal;
  /**
   * Marks the task `retrying` between tries of a transient failure.
   * @param reason - why the last try failed; @param delayMs - the backoff before the next try.
   */
  markRetrying(reason: string, delayMs: number): Promise<void>;
  /**
   * Marks the task `running` again when the next try starts (counts an attempt). A new try waits for a
   * slot under the session's limit; `{ started: true }` records a try that already started out of our
   * hands (a stalled BullMQ job another worker took over), which takes no slot it does not hold already.
   */
  markRunning(options?: { started?: boolean }): Promise<void>;
  /**
   * Records the identity of the process the agent runs as (e.g. the `claude` CLI, started detached),
   * or null when it ended, so cancel-session can stop it (task field `agent_child`). Optional.
   */
  recordChild?(identity: { pid: number; start: string | null; host: string | null } | null): Promise<void>;
  /**
   * Records what the agent has done so far (turns, last tool, tokens, estimated cost, API retries;
   * task field `live`, see `applyLiveProgress` in live-progress.ts). Optional. The claude runner
   * calls it at most once per 3 s while a run goes on, and once when each run ends; calls never
   * overlap. A rejected promise is logged and ignored (progress is a hint, never a reason to fail).
   */
  recordProgress?(progress: LiveProgress): Promise<void>;
  /**
   * Records the paths the agent's work so far would conflict on with the integration branch (worktree
   * isolation; task field `predicted_conflicts`, shown on the board); an empty list clears it.
   * Optional; called only when the prediction changed. A rejected promise is ignored.
   */
  recordPredictedConflicts?(paths: string[]): Promise<void>;
  /**
   * Tells the session that the agent hit a rate limit (HTTP 429/529), so its effective worker limit
   * halves and, with a known reset time, new starts pause (scheduling/capacity.ts). Optional; a
   * rejected promise is ignored by the claude runner.
   */
  reportRateLimit?(signal: { status: number | null; error: string | null; resetAt: Date | null }): Promise<void>;
  /**
   * The task's share of the session budget when it started (USD; scheduling/budget.ts
   * `agentBudgetShare`), or null/absent without a budget: the claude runner passes
   * min(this less what earlier tries cost, its own --max_budget_usd) as `--max-budget-usd`.
   */
  budgetShareUsd?: number | null;
}

/** What a runner reports when it ends. */
export interface AgentOutcome {
  /** `merge_failed`: only from the worktree isolation wrapper (scripts/lib/isolation/): the work did not merge. */
  status: 'completed' | 'failed' | 'merge_failed';
  /** Markdown body of the result file. */
  body: string;
  /** The failure's message (recorded as the task's `error`). */
  error?: string | null;
  /** Extra result-file frontmatter (cost, tokens, turns, ...). */
  frontmatter?: Record<string, unknown>;
  /** Extra fields for the task's state record (cost_usd, input_tokens, ...). */
  record?: Partial<TaskRecord>;
  /**
   * What the agent did and the verdict (verification/receipt-file.ts): written beside the result file, its summary and
   * verdict put in the task's record (`receipts`, `verdict`) and the result's frontmatter by the lifecycle.
   */
  receipt?: ReceiptDocument;
}

/** Runs one task's agent. Must not throw for an agent failure: return `status: 'failed'`. */
export type AgentExecutor = (ctx: AgentContext) => Promise<AgentOutcome>;
