// The versioned zod schema of the session state file (`latest.yaml`) and its types.
//
// Loaded only where a state must be validated in full: a file the fast check (state-check.ts) does
// not take (hand-edited, an older layout, an error to explain) and plans. The constants, the task
// table and the defaults live in model.ts, without zod, so an agent start that only registers a task
// never loads it (bench/RESULTS.md, "Start-up cost").
import { z } from 'zod';
import {
  createNullTable,
  DEP_FAILURE_POLICIES,
  isPlainObject,
  ON_BUDGET,
  PRIORITIES,
  RUNNERS,
  STATE_VERSION,
  TASK_STATUSES,
  VERDICTS,
} from './constants.ts';
import { MAX_TIMER_MS } from '../core/limits.ts';
import { TASK_NAME_PATTERN, TASK_NAME_RULE, SESSION_ID_PATTERN } from '../core/names.ts';
import { LiveProgressSchema, ReceiptSummarySchema, TaskMergeSchema } from './task-schemas.ts';

export { LiveProgressSchema, ReceiptSummarySchema, TaskMergeSchema, type LiveProgress, type TaskMerge } from './task-schemas.ts';

const isoTime = z.iso.datetime({ offset: true });
const taskName = z.string().regex(TASK_NAME_PATTERN);
const nullableIso = isoTime.nullable().default(null);
const nullableNumber = z.number().nonnegative().nullable().default(null);

/** One task's record in `tasks`. Fields are snake_case, as in the YAML. */
export const TaskRecordSchema = z.object({
  status: z.enum(TASK_STATUSES),
  /** `Agent-01`, `Agent-02`, ... in registration order. */
  agent: z.string().regex(/^Agent-\d{2,}$/),
  goal: z.string(),
  depends_on: z.array(taskName).default([]),
  priority: z.enum(PRIORITIES).default('P2'),
  /** Files the task declares it will touch; tasks sharing one never run at once. */
  files: z.array(z.string().min(1)).default([]),
  on_dep_failure: z.enum(DEP_FAILURE_POLICIES).default('skip'),
  runner: z.enum(RUNNERS).default('mock'),
  /** Process id of the agent process that owns the task, or null in the plan runner before it starts. */
  pid: z.number().int().positive().nullable().default(null),
  /**
   * Start time of process `pid` (see `processStartTime` in process/identity.ts), so a pid reused by
   * another process is never taken for the agent; null in state files written before it was recorded.
   */
  pid_start: z.string().nullable().default(null),
  /** Host name of the machine process `pid` runs on (`os.hostname()`); null when not recorded. */
  host: z.string().nullable().default(null),
  /**
   * The process the agent runs as, when it is not `pid` itself: the `claude` CLI a spawn-agent or
   * orchestrate process started (the leader of its own process group), while it runs. Lets
   * cancel-session stop it even when its owner is gone or is an orchestrator running other tasks.
   */
  agent_child: z.object({ pid: z.number().int(), start: z.string().nullable(), host: z.string().nullable() }).nullable().default(null),
  /** How many times an agent has been started for this task (re-registrations and retries included). */
  attempts: z.number().int().nonnegative().default(0),
  /** The most attempts allowed (1 + retries), used by worker replacement. */
  max_attempts: z.number().int().positive().default(1),
  registered_at: isoTime,
  started_at: nullableIso,
  ended_at: nullableIso,
  /** Last heartbeat of the running agent: its lease is valid until `heartbeat_at + lease_ms`. */
  heartbeat_at: nullableIso,
  /** Milliseconds from `started_at` to `ended_at`. */
  duration_ms: nullableNumber,
  result_path: z.string().nullable().default(null),
  error: z.string().nullable().default(null),
  /** While `waiting`: what the task waits for (dependencies or tasks holding one of its files). */
  waiting_on: z.array(z.string()).default([]),
  /** While `retrying`: when the next try starts. */
  next_retry_at: nullableIso,
  /**
   * While a dependency is not registered: when the task gives up on it and fails (ISO time; set at
   * registration from `--dep_timeout`, null = never). Kept in the record so no process has to remember it.
   */
  dep_deadline: nullableIso,
  /**
   * A queued background task claimed for a launch (status `running`, `pid` null until the new agent
   * takes it over): the token the started agent must present (`DTO_ADOPT_TOKEN`), so two processes
   * never run the same task. Cleared when the agent takes the task over; a claim nobody took over is
   * dead after the lease, like any running task.
   */
  adoption_token: z.string().nullable().default(null),
  /**
   * The process started for that claim (pid, start time, host), recorded once it is spawned: while it lives and is
   * not stopped, a claim past its lease is a slow start, not a lost launch (see scheduling.ts `deathReason`).
   */
  launched: z.object({ pid: z.number().int(), start: z.string().nullable(), host: z.string().nullable() }).nullable().default(null),
  /** Set when the task failed because its agent process died or its lease expired (not because the agent reported failure). */
  agent_died: z.boolean().default(false),
  /** The attempt a replacement agent was last started for (`poll-session --replace_dead`), so it is started once. */
  replaced_attempt: z.number().int().nonnegative().nullable().default(null),
  /** When that replacement was started. */
  replaced_at: nullableIso,
  /**
   * How to start this task's agent again (`poll-session --replace_dead`), as data: which agent script,
   * its flags, and the directory it ran in. Never run as found: the replacement's command is rebuilt
   * from these fields after validation (see worker-replacement.ts). The older layout (`argv`: node
   * arguments) is read as no launch, so it is never executed. `signature`: the HMAC of the user's launch key over a
   * launch that runs a program of the user's (`--check`), without which it is never replayed (execution/launch-signature.ts).
   */
  launch: z
    .union([
      z.object({ script: z.string(), args: z.array(z.string()), cwd: z.string(), signature: z.string().optional() }),
      z.object({ argv: z.array(z.string()), cwd: z.string() }).transform(() => null),
    ])
    .nullable()
    .default(null),
  // Filled in by real `claude -p` agents (see references/cli-integration.md).
  cost_usd: nullableNumber,
  input_tokens: nullableNumber,
  output_tokens: nullableNumber,
  num_turns: nullableNumber,
  claude_session_id: z.string().nullable().default(null),
  permission_denials: nullableNumber,
  /**
   * What a running `claude` agent has done so far, from its event stream (live-progress.ts; null for
   * mock agents and before the first event). Over all tries of the task: turns, the last tool called,
   * tokens (input excludes cache reads and writes), estimated cost in USD (from the price table
   * while it runs, null for a model without a known price; the CLI's `total_cost_usd` once a run
   * ended), the CLI's own API retries and the last one's reason, and when the last line was read.
   */
  live: LiveProgressSchema.nullable().default(null),
  /** An isolated task's branch, worktree and merge (`--isolation worktree`); null for a task that shares the user's tree. */
  merge: TaskMergeSchema.nullable().default(null),
  /**
   * While an isolated task's agent runs: the paths its work so far would conflict on if merged onto
   * the integration branch now (`git merge-tree` of a snapshot of its worktree against the tip,
   * re-checked every few seconds); empty when clean or not isolated. Cleared when the task ends.
   */
  predicted_conflicts: z.array(z.string()).default([]),
  /**
   * Where each attempt ran when the agent runs on another host (the BullMQ backend: the worker's
   * `--name`, default `<hostname>:<pid>`), in order; empty for agents run on this machine.
   */
  attempt_hosts: z.array(z.object({ attempt: z.number().int().nonnegative(), host: z.string() })).default([]),
  /**
   * What the agent did, over all its attempts (verification/receipts.ts `ReceiptSummary`): tool calls by kind, files
   * written, commands run and failed, permission denials, lines added and removed. Updated with `live` while it runs
   * (no extra write), final when it ends; the whole receipt is in the receipt file beside the result. Null before any.
   */
  receipts: ReceiptSummarySchema.nullable().default(null),
  /** The verdict on a completed task (verification/verdict.ts): verified, unverified or contradicted, with its evidence. */
  verdict: z
    .object({ value: z.enum(VERDICTS), evidence: z.array(z.string()) })
    .nullable()
    .default(null),
});
export type TaskRecord = z.infer<typeof TaskRecordSchema>;
export type TaskRecordInput = z.input<typeof TaskRecordSchema>;

/**
 * `tasks`: a mapping of task names to task records, read into a {@link TaskTable}. Written by hand
 * rather than with `z.record`, which drops a `__proto__` key (zod 4 guards its own `{}` that way),
 * so a task named `__proto__` would vanish from the state.
 */
/** The task table as the schema reads it (model.ts `TaskTable`). */
type TaskTable = Record<string, TaskRecord>;

const TaskTableSchema = z
  .unknown()
  .optional()
  .transform((input, ctx): TaskTable => {
    const table = createNullTable<TaskRecord>();
    if (input === undefined) return table;
    if (!isPlainObject(input)) {
      ctx.issues.push({ code: 'custom', message: 'expected a mapping of task names to tasks', input, path: [] });
      return z.NEVER;
    }
    for (const name of Object.keys(input)) {
      if (!taskName.safeParse(name).success) {
        ctx.issues.push({
          code: 'custom',
          message: `task name ${JSON.stringify(name)} must match ${TASK_NAME_RULE}`,
          input: name,
          path: [name],
        });
        continue;
      }
      const parsed = TaskRecordSchema.safeParse(input[name]);
      if (!parsed.success) {
        for (const issue of parsed.error.issues)
          ctx.issues.push({ code: 'custom', message: issue.message, input: undefined, path: [name, ...issue.path] });
        continue;
      }
      Object.defineProperty(table, name, { value: parsed.data, writable: true, enumerable: true, configurable: true });
    }
    return table;
  });

/**
 * The session field `capacity`: the rate-limit-adaptive worker limit (AIMD) every process of the
 * session obeys for new starts. See scheduling/capacity.ts for the rules; defaults load old files.
 */
export const CapacitySchema = z.object({
  /** Adapt to rate limits (false: `--adaptive off`, the limit stays `max_workers`). */
  adaptive: z.boolean().default(true),
  /** The effective limit for new starts, or null when it is `max_workers` (never lowered, or grown back). */
  limit: z.number().int().positive().nullable().default(null),
  /** Since when the session is rate limited: the first decrease of this episode (ISO time), or null once grown back. */
  rate_limited_since: nullableIso,
  /** When the limit was last halved (ISO time), or null: the decrease window counts from it. */
  last_decrease_at: nullableIso,
  /** When the limit last changed, either way (ISO time), or null. */
  last_change_at: nullableIso,
  /** When an agent last saw a rate limit (429/529), lowered or not (ISO time), or null: the quiet period counts from it. */
  last_hit_at: nullableIso,
  /** No new start before this time (a known reset time: retry-after, resetsAt), or null. */
  pause_until: nullableIso,
  /** Rate limits seen by the session's agents (each report counted, lowered or not). */
  hits: z.number().int().nonnegative().default(0),
  /** Quiet time after the last rate limit before the limit grows by 1 at a completion (ms). */
  quiet_ms: z.number().int().nonnegative().max(MAX_TIMER_MS).default(30_000),
  /** After a decrease, further rate-limit reports within this window lower nothing (ms): one burst, one halving. */
  window_ms: z.number().int().nonnegative().max(MAX_TIMER_MS).default(5_000),
});
export type Capacity = z.infer<typeof CapacitySchema>;

/** The session field `budget`: a money cap over every task of the session (scheduling/budget.ts). */
export const BudgetSchema = z.object({
  /** The cap in US dollars, or null for none. Kept once set, like `max_workers`. */
  usd: z.number().positive().nullable().default(null),
  /** `finish`: running agents finish; `stop`: they are cancelled when the budget is spent. */
  on_budget: z.enum(ON_BUDGET).default('finish'),
  /** The cost assumed for a task not started yet, or a running one with no estimate (USD); null: learned (see budget.ts). */
  reserve_usd: z.number().nonnegative().nullable().default(null),
  /** When the budget was first found spent (ISO time), or null. */
  reached_at: nullableIso,
});
export type Budget = z.infer<typeof BudgetSchema>;

/** The whole state file. */
export const SessionStateSchema = z.object({
  version: z.literal(STATE_VERSION),
  session_id: z.string().regex(SESSION_ID_PATTERN),
  created_at: isoTime,
  updated_at: isoTime,
  /** Most tasks `running` at once across all processes of the session. */
  max_workers: z.number().int().positive().default(5),
  /** A running task whose heartbeat is older than this is considered dead (ms). */
  lease_ms: z.number().int().positive().max(MAX_TIMER_MS).default(30_000),
  /** Where the session came from: `background` (spawn scripts) or the plan file of `orchestrate`. */
  plan_path: z.string().nullable().default(null),
  /**
   * The integration branch of an isolated session (`--isolation worktree`): its name, the user's
   * HEAD it started from, and its tip after the last merge; null when no task is isolated.
   */
  integration: z.object({ branch: z.string(), base: z.string(), tip: z.string() }).nullable().default(null),
  /** The rate-limit-adaptive limit (scheduling/capacity.ts). */
  capacity: CapacitySchema.prefault({}),
  /** The session budget (scheduling/budget.ts). */
  budget: BudgetSchema.prefault({}),
  tasks: TaskTableSchema,
});
export type SessionState = z.infer<typeof SessionStateSchema>;

/** Formats zod issues as `path: message` lines for error messages. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}

export * from './constants.ts';
export { MAX_TIMER_MS } from '../core/limits.ts';
