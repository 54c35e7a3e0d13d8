// The real agent: runs `claude -p` for a task, retries transient failures with backoff, and reports cost, tokens and the answer.
import { setTimeout as delay } from 'node:timers/promises';
import type { AgentContext, AgentExecutor, AgentOutcome } from './agent-types.ts';
import { BACKOFF_CAP_MS, backoffDelay } from './backoff.ts';
import { buildPrompt } from './claude-prompt.ts';
import { classifyClaudeRun, resultUsage, type ClaudeUsage, type ClaudeVerdict } from './claude-result.ts';
import { runClaude } from './claude-runner.ts';
import type { TaskRecord } from './schema.ts';

/** Options of {@link createClaudeExecutor}. */
export interface ClaudeExecutorOptions {
  /** The CLI: a command name on PATH or an absolute path. */
  bin: string;
  /** The CLI's arguments (`readClaudeSettings().args`). */
  args: string[];
  /** Timeout of one run (s); the tree is terminated and the task fails, without retry. */
  timeoutS: number;
  /** Retries after a transient failure (0 = one try only). */
  retries: number;
  /** Backoff base (ms): retry n waits a random time in [0, min(cap, base * 2^(n-1))]. */
  backoffMs: number;
  /** Task-file instructions and its path, added to the prompt. */
  instructions?: string;
  taskFilePath?: string;
  /** Extra environment for the CLI. */
  env?: Record<string, string | undefined>;
  /** Wait between SIGTERM and SIGKILL (ms). */
  killGraceMs?: number;
  /** Source of jitter, in [0, 1). @default Math.random */
  random?: () => number;
  /** Progress lines (retries, permission denials). */
  log?: (line: string) => void;
}

/**
 * Adds one try's usage to the running totals: cost (USD) and tokens are summed over tries; turns,
 * session id and denials are the last try's; models are collected.
 */
function addUsage(totals: ClaudeUsage | null, usage: ClaudeUsage): ClaudeUsage {
  if (!totals) return usage;
  return {
    ...usage,
    cost_usd: Math.round((totals.cost_usd + usage.cost_usd) * 1e6) / 1e6,
    input_tokens: totals.input_tokens + usage.input_tokens,
    output_tokens: totals.output_tokens + usage.output_tokens,
    cache_creation_input_tokens: totals.cache_creation_input_tokens + usage.cache_creation_input_tokens,
    cache_read_input_tokens: totals.cache_read_input_tokens + usage.cache_read_input_tokens,
    models: [...new Set([...totals.models, ...usage.models])],
  };
}

/** The state-record fields of the totals (schema fields of real agents). */
function recordFields(totals: ClaudeUsage | null): Partial<TaskRecord> {
  if (!totals) return {};
  const { cost_usd, input_tokens, output_tokens, num_turns, claude_session_id, permission_denials } = totals;
  return { cost_usd, input_tokens, output_tokens, num_turns, claude_session_id, permission_denials };
}

function quote(text: string): string {
  return text.trim().split('\n').map((line) => `> ${line}`).join('\n');
}

/**
 * Creates the executor of `spawn-agent`: builds the prompt, runs the CLI, and classifies the run
 * (`classifyClaudeRun`). Transient failures (HTTP 408/429/5xx/529, connection failures) are tried
 * again up to `retries` times: the task shows `retrying` (with the reason and `next_retry_at`)
 * during a backoff with full jitter, then `running` with `attempts` counted up. Permanent failures
 * and timeouts end the task at once, with the CLI's own message as `error`.
 *
 * Outcome: on success the body is the CLI's `result` text verbatim; the result-file frontmatter and
 * the state record get cost (USD) and tokens summed over all tries, and turns, session id and
 * permission denials of the last try. Never throws for a failed run (only when aborted).
 */
export function createClaudeExecutor(options: ClaudeExecutorOptions): AgentExecutor {
  const log = options.log ?? (() => {});
  return async (ctx: AgentContext): Promise<AgentOutcome> => {
    const prompt = buildPrompt(ctx, { instructions: options.instructions, taskFilePath: options.taskFilePath });
    let totals: ClaudeUsage | null = null;
    for (let tryNumber = 1; ; tryNumber++) {
      const run = await runClaude({
        bin: options.bin,
        args: options.args,
        prompt,
        cwd: ctx.cwd,
        env: options.env,
        timeoutMs: options.timeoutS * 1000,
        killGraceMs: options.killGraceMs,
        signal: ctx.signal,
        onSpawn: (identity) => void ctx.recordChild?.(identity),
      });
      void ctx.recordChild?.(null);
      const verdict = classifyClaudeRun(run, { bin: options.bin, timeoutS: options.timeoutS });
      if (verdict.result) totals = addUsage(totals, resultUsage(verdict.result));
      if (verdict.ok) {
        if (totals && totals.permission_denials > 0) {
          log(`[${ctx.agent}] ${ctx.taskName}: warning: ${totals.permission_denials} tool call(s) denied by permissions (${totals.denied_tools.join(', ')})`);
        }
        return completed(verdict.text, totals, tryNumber);
      }
      if (verdict.kind === 'transient' && tryNumber <= options.retries && !ctx.signal.aborted) {
        const waitMs = backoffDelay(tryNumber, options.backoffMs, BACKOFF_CAP_MS, options.random);
        const reason = `${verdict.message}; retry ${tryNumber} of ${options.retries} in ${(waitMs / 1000).toFixed(1)} s`;
        log(`[${ctx.agent}] ${ctx.taskName}: retrying: ${reason}`);
        await ctx.markRetrying(reason, waitMs);
        await delay(waitMs, undefined, { signal: ctx.signal });
        await ctx.markRunning();
        continue;
      }
      return failed(ctx, verdict, totals, tryNumber, options.retries, run.stderr);
    }
  };
}

function usageFrontmatter(totals: ClaudeUsage | null, tries: number): Record<string, unknown> {
  if (!totals) return { tries };
  const { denied_tools, ...rest } = totals;
  return { ...rest, ...(denied_tools.length > 0 ? { denied_tools } : {}), tries };
}

function completed(text: string, totals: ClaudeUsage | null, tries: number): AgentOutcome {
  return {
    status: 'completed',
    body: text.trim() === '' ? '_(the agent returned an empty answer)_\n' : text,
    frontmatter: { ...usageFrontmatter(totals, tries), ...(text.trim() === '' ? { empty_result: true } : {}) },
    record: recordFields(totals),
  };
}

function failed(
  ctx: AgentContext,
  verdict: Extract<ClaudeVerdict, { ok: false }>,
  totals: ClaudeUsage | null,
  tries: number,
  retries: number,
  stderr: string,
): AgentOutcome {
  const triesText = `${tries} ${tries === 1 ? 'try' : 'tries'}`;
  const gaveUp = verdict.kind === 'transient' ? `; gave up after ${triesText} (--retries ${retries})` : '';
  const error = `${verdict.message}${gaveUp}`;
  const stderrTail = stderr.trim().split('\n').slice(-20).join('\n');
  return {
    status: 'failed',
    error,
    body:
      `# ${ctx.taskName}: failed\n\n## Error\n${error}\n\n` +
      `Failure: ${verdict.kind} (${verdict.code}), after ${triesText}.\n\n` +
      `## Goal\n${quote(ctx.goal)}\n` +
      (stderrTail ? `\n## claude stderr (last lines)\n\`\`\`\n${stderrTail}\n\`\`\`\n` : ''),
    frontmatter: { ...usageFrontmatter(totals, tries), failure: verdict.code, failure_kind: verdict.kind },
    record: recordFields(totals),
  };
}
