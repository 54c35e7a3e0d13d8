// What a `claude -p` run printed (`--output-format stream-json` or `json`: the same result object), and its verdict: success, transient failure (retry) or permanent failure.
import { z } from 'zod';
import type { ClaudeRun } from './claude-runner.ts';

const count = z.number().nonnegative().nullish();

/**
 * The CLI's result object: the fields spawn-agent reads; the rest is kept as is.
 * Shape from the CLI contract as observed on Claude Code 2.1.330: references/cli-integration.md, "What claude prints".
 */
export const ClaudeResultSchema = z.looseObject({
  type: z.literal('result'),
  subtype: z.string(),
  is_error: z.boolean(),
  /** The final text; only with `subtype: "success"` (even when `is_error` is true: then it is the error). */
  result: z.string().nullish(),
  /** The reasons of the `error_*` subtypes. */
  errors: z.array(z.string()).nullish(),
  session_id: z.string().nullish(),
  total_cost_usd: count,
  num_turns: count,
  duration_ms: count,
  usage: z
    .looseObject({ input_tokens: count, output_tokens: count, cache_creation_input_tokens: count, cache_read_input_tokens: count })
    .nullish(),
  modelUsage: z.record(z.string(), z.unknown()).nullish(),
  permission_denials: z.array(z.unknown()).nullish(),
  /** HTTP status of a failed API call, or null. */
  api_error_status: z.number().nullish(),
  /** e.g. `authentication_error`, `rate_limit_error`. */
  api_error_type: z.string().nullish(),
  /** e.g. `connection_failed` (no HTTP status then). */
  api_error: z.string().nullish(),
  terminal_reason: z.string().nullish(),
});
export type ClaudeResult = z.infer<typeof ClaudeResultSchema>;

/**
 * Finds the result object in the CLI's standard output: one JSON object (`--output-format json`),
 * a JSON array of messages (`json` with `--verbose`) or JSON lines (`stream-json`); the last
 * `type: "result"` wins.
 * @returns the result, or why there is none: `empty` output, `not_json`, or `no_result` (JSON without a valid result).
 */
export function parseClaudeOutput(stdout: string): { result: ClaudeResult } | { problem: 'empty' | 'not_json' | 'no_result' } {
  const text = stdout.trim();
  if (text === '') return { problem: 'empty' };
  let values: unknown[] = [];
  try {
    const whole: unknown = JSON.parse(text);
    values = Array.isArray(whole) ? whole : [whole];
  } catch {
    for (const line of text.split('\n')) {
      try {
        values.push(JSON.parse(line));
      } catch {
        // Not a JSON line (a warning, a stray print): look at the others.
      }
    }
  }
  if (values.length === 0) return { problem: 'not_json' };
  for (const value of values.reverse()) {
    const parsed = ClaudeResultSchema.safeParse(value);
    if (parsed.success) return { result: parsed.data };
  }
  return { problem: 'no_result' };
}

/** Machine-readable reasons of a failed run. */
export type ClaudeFailureCode =
  | 'rate_limited'
  | 'overloaded'
  | 'server_error'
  | 'connection'
  | 'auth'
  | 'api_error'
  | 'max_turns'
  | 'max_budget'
  | 'execution_error'
  | 'usage'
  | 'no_result'
  | 'bad_output'
  | 'exit_code'
  | 'killed'
  | 'timeout'
  | 'stalled'
  | 'aborted'
  | 'cli_missing';

/** The verdict on one run. `transient` failures are worth retrying; `permanent` ones are not. */
export type ClaudeVerdict =
  | { ok: true; result: ClaudeResult; text: string }
  | { ok: false; kind: 'transient' | 'permanent'; code: ClaudeFailureCode; message: string; result: ClaudeResult | null };

/** The install hint given whenever the CLI cannot be started. */
export const INSTALL_HINT =
  'Install it with `npm install -g @anthropic-ai/claude-code` (then run `claude` once to log in), or pass --claude_bin PATH or set CLAUDE_BIN.';

/** Statuses worth retrying: 408 request timeout, 429 rate limit, 5xx server errors (529: overloaded). */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/** Connection failures as the CLI words them (no HTTP status then): refused, reset, timed out, DNS. */
const CONNECTION_PATTERN =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EAI_AGAIN|ENOTFOUND|socket hang up|connection (refused|error|reset|failed)|network error|fetch failed|request timed out/i;

/**
 * Classifies one run, following the CLI contract (references/cli-integration.md, "What claude
 * prints"): a run failed when the exit code is not 0, or no result object was printed, or
 * `is_error` is true (`subtype: "success"` does not mean success). Transient: HTTP 408, 429, 5xx (529 included) and connection failures. Everything
 * else is permanent: authentication ("Not logged in", 401, 403), other API errors, usage errors
 * (exit 1, message on stderr, nothing on stdout), max turns, budget, missing result, timeout.
 * A stall (no output for `--stall_timeout`, the tree ended by the runner) is transient: the caller
 * resumes the agent's Claude session.
 *
 * @param run - what {@link runClaude} reported.
 * @param context - `bin` as configured, the timeout and the stall limit (s), for messages.
 * @returns the verdict; `message` is the CLI's own message where it printed one.
 */
export function classifyClaudeRun(run: ClaudeRun, context: { bin: string; timeoutS: number; stallTimeoutS?: number }): ClaudeVerdict {
  const fail = (
    kind: 'transient' | 'permanent',
    code: ClaudeFailureCode,
    message: string,
    result: ClaudeResult | null = null,
  ): ClaudeVerdict => ({ ok: false, kind, code, message, result });
  if (run.spawnError) {
    const what =
      run.spawnError.code === 'ENOENT' ? 'was not found' : run.spawnError.code === 'EACCES' ? 'is not executable' : 'could not be started';
    return fail('permanent', 'cli_missing', `Claude Code CLI \`${context.bin}\` ${what} (${run.spawnError.code}). ${INSTALL_HINT}`);
  }
  const parsed = parseClaudeOutput(run.stdout);
  const result = 'result' in parsed ? parsed.result : null;
  if (run.timedOut)
    return fail(
      'permanent',
      'timeout',
      `timed out after ${context.timeoutS} s: the claude process tree was terminated (raise --timeout)`,
      result,
    );
  // A stall after the result was printed (the CLI answered, then hung on exit) keeps the result's verdict.
  if (run.stalled && !result) {
    const silence = Math.round(run.silenceMs / 1000);
    return fail(
      'transient',
      'stalled',
      `stalled: no output for ${silence} s, the claude process tree was terminated (--stall_timeout ${context.stallTimeoutS ?? silence})`,
      result,
    );
  }
  if (run.aborted) return fail('permanent', 'aborted', `stopped: ${run.abortReason ?? 'aborted'}`, result);
  if (result) return classifyResult(result, run.exitCode);

  const stderr = lastLines(run.stderr, 5);
  if (run.signal)
    return fail('permanent', 'killed', `claude was killed by ${run.signal} before printing a result${stderr ? `: ${stderr}` : ''}`);
  if (run.exitCode !== 0 && stderr) return fail('permanent', 'usage', `claude exited with code ${run.exitCode}: ${stderr}`);
  if ('problem' in parsed && parsed.problem === 'empty') {
    return fail(
      'permanent',
      'no_result',
      `claude exited with code ${run.exitCode} without printing a result${stderr ? `: ${stderr}` : ''}`,
    );
  }
  const start = run.stdout.trim().slice(0, 200);
  return fail(
    'permanent',
    'bad_output',
    `claude exited with code ${run.exitCode} and printed no JSON result object; its output began: ${JSON.stringify(start)}`,
  );
}

function classifyResult(result: ClaudeResult, exitCode: number | null): ClaudeVerdict {
  const fail = (kind: 'transient' | 'permanent', code: ClaudeFailureCode, message: string): ClaudeVerdict => ({
    ok: false,
    kind,
    code,
    message,
    result,
  });
  const reasons = (fallback: string) => (result.errors?.length ? result.errors.join('; ') : (result.result ?? fallback));
  switch (result.subtype) {
    case 'error_max_turns':
      return fail('permanent', 'max_turns', `${reasons('reached the maximum number of turns')} (raise --max_turns or split the task)`);
    case 'error_max_budget_usd':
      return fail('permanent', 'max_budget', `${reasons('reached the maximum budget')} (raise --max_budget_usd)`);
    case 'success':
      break;
    default:
      return fail('permanent', 'execution_error', `${reasons(`claude ended with ${result.subtype}`)} (${result.subtype})`);
  }
  if (result.is_error) {
    const text = result.result?.trim() || 'claude reported an error without a message';
    const status = result.api_error_status ?? null;
    const detail = [status === null ? null : `HTTP ${status}`, result.api_error_type ?? result.api_error ?? null].filter(Boolean).join(' ');
    const message = detail ? `${text} (${detail})` : text;
    if (status !== null) {
      if (status === 429) return fail('transient', 'rate_limited', message);
      if (status === 529) return fail('transient', 'overloaded', message);
      if (isTransientStatus(status)) return fail('transient', 'server_error', message);
      return fail('permanent', status === 401 || status === 403 ? 'auth' : 'api_error', message);
    }
    if (result.api_error === 'connection_failed' || CONNECTION_PATTERN.test(text)) return fail('transient', 'connection', message);
    if (/not logged in|\/login|api key|authenticat|oauth/i.test(text)) return fail('permanent', 'auth', message);
    return fail('permanent', 'api_error', message);
  }
  if (exitCode !== 0) return fail('permanent', 'exit_code', `claude exited with code ${exitCode} although its result reported success`);
  return { ok: true, result, text: result.result ?? '' };
}

/** The last `n` non-empty lines of a text, joined with " | ". */
function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .slice(-n)
    .join(' | ');
}

/** Cost, tokens and the rest of one result, as recorded in the state and the result file. */
export interface ClaudeUsage {
  cost_usd: number;
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  num_turns: number | null;
  claude_session_id: string | null;
  permission_denials: number;
  /** Names of the denied tools, each once. */
  denied_tools: string[];
  models: string[];
}

/**
 * Reads cost (USD), token counts and turns from a result. `input_tokens` is the API's: it excludes
 * cache reads and writes, which are counted apart.
 */
export function resultUsage(result: ClaudeResult): ClaudeUsage {
  return {
    cost_usd: result.total_cost_usd ?? 0,
    input_tokens: result.usage?.input_tokens ?? 0,
    output_tokens: result.usage?.output_tokens ?? 0,
    cache_creation_input_tokens: result.usage?.cache_creation_input_tokens ?? 0,
    cache_read_input_tokens: result.usage?.cache_read_input_tokens ?? 0,
    num_turns: result.num_turns ?? null,
    claude_session_id: result.session_id ?? null,
    permission_denials: result.permission_denials?.length ?? 0,
    denied_tools: [...new Set((result.permission_denials ?? []).map((d) => toolName((d as { tool_name?: unknown }).tool_name)))],
    models: Object.keys(result.modelUsage ?? {}),
  };
}

/** A denial's tool name as recorded by the CLI (a string); anything else, or none, is `unknown`. */
function toolName(value: unknown): string {
  return typeof value === 'string' && value !== '' ? value : 'unknown';
}
