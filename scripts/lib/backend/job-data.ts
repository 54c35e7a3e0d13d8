// What travels through the queue: a task job's data, its progress reports and its result, as validated data (never a command line).
import { z } from 'zod';
import { SESSION_ID_PATTERN, TASK_NAME_PATTERN } from '../core/names.ts';
import { RUNNERS } from '../state/model.ts';
import { ReceiptDocumentSchema } from './receipt-schema.ts';

/** Version of the job layout; a worker refuses jobs of another version (it would misread them). */
export const JOB_VERSION = 1;

/** Largest dependency result body carried in a job (characters); longer ones are cut, with a note. */
export const MAX_DEPENDENCY_BODY = 64 * 1024;

const taskName = z.string().regex(TASK_NAME_PATTERN);

/**
 * A task job's data (what the orchestrator adds, what a worker reads). Only fields a worker needs
 * to run the agent: its kind, the task's goal and declared files, the mock agent's knobs, and the
 * bodies of the dependencies' results (the worker's host cannot read the orchestrator's files).
 */
export const TaskJobDataSchema = z.object({
  v: z.literal(JOB_VERSION),
  session_id: z.string().regex(SESSION_ID_PATTERN),
  task: taskName,
  /** The orchestrator's attempt number when the job was added (part of the job id). */
  attempt: z.number().int().positive(),
  /** `Agent-01`, ... */
  agent: z.string().regex(/^Agent-\d{2,}$/),
  runner: z.enum(RUNNERS),
  goal: z.string(),
  depends_on: z.array(taskName).default([]),
  files: z.array(z.string().min(1)).default([]),
  mock: z.object({ delay_ms: z.number().int().nonnegative().nullable().default(null), fail: z.boolean().default(false) }).default({
    delay_ms: null,
    fail: false,
  }),
  /**
   * Result bodies of completed dependencies (each at most {@link MAX_DEPENDENCY_BODY} characters). A
   * list, not a mapping by name: `__proto__` is a valid task name, and a parsed mapping would drop it.
   */
  dependency_results: z.array(z.object({ task: taskName, body: z.string() })).default([]),
  /** The task's share of the session budget when it started (USD, scheduling/budget.ts), or null: caps a claude agent's spend. */
  budget_share_usd: z.number().nonnegative().nullable().default(null),
  /** Set by the orchestrator when the task was cancelled while a worker runs it: the reason; the worker stops the agent. */
  cancel: z.string().nullable().default(null),
});
export type TaskJobData = z.infer<typeof TaskJobDataSchema>;

/** What a worker reports while it runs a job (`job.updateProgress`): who runs which start of it. */
export const TaskJobProgressSchema = z.object({
  /** The worker's name (`--name`, default `<hostname>:<pid>`). */
  host: z.string().min(1).max(200),
  /** BullMQ's count of starts of this job (`job.attemptsStarted`): 2 after a stalled job was taken over. */
  start: z.number().int().positive(),
  started_at: z.string(),
  /** A claude agent's live figures (claude-stream.ts `LiveProgress`), passed through as data. */
  /** Rate limits (HTTP 429/529) the agent hit on this start, and the last one: passed on to the session's adaptive limit. */
  rate_limits: z.number().int().nonnegative().default(0),
  last_rate_limit: z
    .object({ status: z.number().int().nullable(), error: z.string().nullable(), reset_at: z.string().nullable() })
    .nullable()
    .default(null),
  live: z
    .object({
      turns: z.number().int().nonnegative(),
      last_tool: z.string().nullable(),
      input_tokens: z.number().nonnegative(),
      output_tokens: z.number().nonnegative(),
      cache_creation_input_tokens: z.number().nonnegative().default(0),
      cache_read_input_tokens: z.number().nonnegative().default(0),
      est_cost_usd: z.number().nonnegative().nullable(),
      api_retries: z.number().int().nonnegative(),
      last_api_error: z.string().nullable(),
      last_event_at: z.string(),
    })
    .nullable()
    .default(null),
});
export type TaskJobProgress = z.infer<typeof TaskJobProgressSchema>;

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** A job's return value: the agent's outcome plus where and when it ran. */
export const TaskJobResultSchema = z.object({
  status: z.enum(['completed', 'failed']),
  body: z.string(),
  error: z.string().nullable().default(null),
  /** Extra result-file frontmatter, scalars only. */
  frontmatter: z.record(z.string(), scalar).default({}),
  /** Spending the agent reported (claude runs). */
  record: z
    .object({
      cost_usd: z.number().nonnegative().nullable().optional(),
      input_tokens: z.number().nonnegative().nullable().optional(),
      output_tokens: z.number().nonnegative().nullable().optional(),
      num_turns: z.number().nonnegative().nullable().optional(),
      permission_denials: z.number().nonnegative().nullable().optional(),
      claude_session_id: z.string().nullable().optional(),
    })
    .default({}),
  host: z.string().min(1).max(200),
  start: z.number().int().positive(),
  started_at: z.string(),
  ended_at: z.string(),
  /** What the agent did and the verdict (verification/receipt-file.ts); absent from workers of earlier releases. */
  receipt: ReceiptDocumentSchema.optional(),
});
export type TaskJobResult = z.infer<typeof TaskJobResultSchema>;

/**
 * The id of a task's job: `<session>@<opened>@<task>@<attempt>`, so one attempt is never added twice
 * (BullMQ ignores an `add` whose job id exists: a resumed run follows the job it added before), while
 * a later session with the same id (another folder or host; finished jobs are kept) gets jobs of its
 * own instead of an earlier run's results. `<opened>` is the session's `created_at` in digits
 * (`2026-12-06T03:17:47.123Z` -> `20261206031747123`), or `0` when unknown. `@` never occurs in session
 * ids or task names, and no `:` is used (BullMQ refuses custom ids with a `:`, but for an old
 * three-part form it plans to drop).
 */
export function jobIdFor(sessionId: string, task: string, attempt: number, createdAt?: string): string {
  const opened = createdAt?.replace(/\D/g, '') || '0';
  return `${sessionId}@${opened}@${task}@${attempt}`;
}

/** Parses a progress value read from a job, or null when it is not one of ours (a number, an old layout). */
export function readJobProgress(value: unknown): TaskJobProgress | null {
  const parsed = TaskJobProgressSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}
