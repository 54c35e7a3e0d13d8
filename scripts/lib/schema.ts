// The versioned zod schema of the session state file (`latest.yaml`) and its types.
import { z } from 'zod';
import { TASK_NAME_PATTERN, SESSION_ID_PATTERN } from './names.ts';

/** Version of the state file layout. Bump it, with a migration, when a field changes meaning. */
export const STATE_VERSION = 1;

/** Every status a task can have. See `references/workflow.md` for the state machine. */
export const TASK_STATUSES = [
  'pending',
  'waiting',
  'running',
  'retrying',
  'completed',
  'failed',
  'skipped',
  'cancelled',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Statuses a task never leaves on its own (only a new attempt re-registers it). */
export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['completed', 'failed', 'skipped', 'cancelled']);

/** Statuses in which an agent process owns the task. */
export const ACTIVE_STATUSES: ReadonlySet<TaskStatus> = new Set(['pending', 'waiting', 'running', 'retrying']);

/** Task priorities, P0 first (the seeds' P0 critical ... P3 nice-to-have). */
export const PRIORITIES = ['P0', 'P1', 'P2', 'P3'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** What happens to a task whose dependency failed, was skipped or was cancelled. */
export const DEP_FAILURE_POLICIES = ['skip', 'run'] as const;
export type DepFailurePolicy = (typeof DEP_FAILURE_POLICIES)[number];

/** Which runner executes a task's agent. */
export const RUNNERS = ['mock', 'claude'] as const;
export type RunnerKind = (typeof RUNNERS)[number];

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
  /** Process id of the agent process that owns the task, or null in plan mode before it starts. */
  pid: z.number().int().positive().nullable().default(null),
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
  /** Set when the task failed because its agent process died or its lease expired (not because the agent reported failure). */
  agent_died: z.boolean().default(false),
  /** The attempt a replacement agent was last started for (`poll-session --replace_dead`), so it is started once. */
  replaced_attempt: z.number().int().nonnegative().nullable().default(null),
  /** When that replacement was started. */
  replaced_at: nullableIso,
  /** How to start this task's agent again (`poll-session --replace_dead`): node arguments, no shell. */
  launch: z
    .object({ argv: z.array(z.string()), cwd: z.string() })
    .nullable()
    .default(null),
  // Filled in by real `claude -p` agents (see references/cli-integration.md).
  cost_usd: nullableNumber,
  input_tokens: nullableNumber,
  output_tokens: nullableNumber,
  num_turns: nullableNumber,
  claude_session_id: z.string().nullable().default(null),
  permission_denials: nullableNumber,
});
export type TaskRecord = z.infer<typeof TaskRecordSchema>;
export type TaskRecordInput = z.input<typeof TaskRecordSchema>;

/** The whole state file. */
export const SessionStateSchema = z.object({
  version: z.literal(STATE_VERSION),
  session_id: z.string().regex(SESSION_ID_PATTERN),
  created_at: isoTime,
  updated_at: isoTime,
  /** Most tasks `running` at once across all processes of the session. */
  max_workers: z.number().int().positive().default(5),
  /** A running task whose heartbeat is older than this is considered dead (ms). */
  lease_ms: z.number().int().positive().default(30_000),
  /** Where the session came from: `background` (spawn scripts) or the plan file of `orchestrate`. */
  plan_path: z.string().nullable().default(null),
  tasks: z.record(taskName, TaskRecordSchema).default({}),
});
export type SessionState = z.infer<typeof SessionStateSchema>;

/** Formats zod issues as `path: message` lines for error messages. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}
