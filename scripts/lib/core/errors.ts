// The one public error type of the scripts: a user-facing message plus machine-readable fields.

/** Exit codes shared by every script (poll-session's contract, reused everywhere). */
export const EXIT = {
  /** Every task completed. */
  ok: 0,
  /** At least one task failed, was skipped or was cancelled. */
  taskFailed: 1,
  /** Bad flags or values, no session, or a state file that cannot be used. */
  usage: 2,
  /** `--timeout` elapsed before every task ended. */
  timeout: 3,
} as const;

/** Machine-readable kinds of {@link OrchestratorError}. */
export type ErrorCode =
  | 'usage'
  | 'invalid_task_name'
  | 'invalid_path'
  | 'no_session'
  | 'corrupt_state'
  | 'task_conflict'
  | 'session_conflict'
  | 'invalid_plan'
  | 'dependency_cycle'
  | 'lock_failed'
  | 'write_failed'
  | 'session_vanished'
  | 'unsafe_path'
  | 'agent_failed'
  | 'claude_not_found';

/**
 * An error meant for the person (or model) running a script.
 *
 * The message says what was wrong, with the value, and what to do. `exitCode` is what the
 * entry point exits with; `cause` keeps the original error, if any.
 */
export class OrchestratorError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OrchestratorError';
    this.code = code;
    this.exitCode = options.exitCode ?? EXIT.usage;
  }
}

/** Shorthand for a usage error (exit 2): a bad flag, value or file. */
export function usageError(message: string, cause?: unknown): OrchestratorError {
  return new OrchestratorError('usage', message, { cause });
}

/** Returns the message of any thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
