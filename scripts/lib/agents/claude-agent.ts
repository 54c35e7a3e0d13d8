// The real agent: runs `claude -p` for a task, follows its event stream, retries transient failures with backoff (resuming a stalled session), and reports cost, tokens and the answer.
import { setTimeout as delay } from 'node:timers/promises';
import type { AgentContext, AgentExecutor, AgentOutcome } from './agent-types.ts';
import { BACKOFF_CAP_MS, backoffDelay } from './backoff.ts';
import { buildPrompt } from './claude-prompt.ts';
import { classifyClaudeRun, resultUsage, type ClaudeUsage, type ClaudeVerdict } from './claude-result.ts';
import { runClaude } from './claude-runner.ts';
import { StreamTracker, type LiveProgress } from './claude-stream.ts';
import { DEFAULT_STALL_TIMEOUT_S } from './claude-options.ts';
import { addUsage, combineProgress, quote, rateLimitReporter, recordFields, throttled } from './claude-usage.ts';
import { countOf } from '../core/format.ts';
import { ReceiptCollector } from './claude-receipts.ts';
import { Evidence } from '../verification/evidence.ts';
import type { ReceiptDocument } from '../verification/receipt-file.ts';
import { summarize } from '../verification/receipts.ts';

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
  /**
   * Silence of the CLI's output (s) that counts as a stall: the run's tree is ended and the next
   * try resumes the Claude session (`--resume`). @default {@link DEFAULT_STALL_TIMEOUT_S}
   */
  stallTimeoutS?: number;
  /** Least time between two `ctx.recordProgress` calls during a run (ms). @default {@link PROGRESS_INTERVAL_MS} */
  progressIntervalMs?: number;
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

/** Least time between two progress records of one agent (ms): at most one state write per 3 s (issue "Agents you can steer while they run"). */
export const PROGRESS_INTERVAL_MS = 3000;

/** The prompt of a resumed run: the conversation so far is in the Claude session already. */
export function resumePrompt(reason: string): string {
  return (
    `Your previous run of this task was interrupted (${reason}). Nothing you did is lost: continue the task ` +
    'from where you stopped, then give your final answer exactly as the original instructions ask.\n'
  );
}

/**
 * Creates the executor of `spawn-agent`: builds the prompt, runs the CLI, and classifies the run
 * (`classifyClaudeRun`). Transient failures (HTTP 408/429/5xx/529, connection failures) are tried
 * again up to `retries` times: the task shows `retrying` (with the reason and `next_retry_at`)
 * during a backoff with full jitter, then `running` with `attempts` counted up. Permanent failures
 * and timeouts end the task at once, with the CLI's own message as `error`.
 *
 * The CLI runs with `--output-format stream-json --verbose`; its lines are read as they come
 * (claude-stream.ts) and `ctx.recordProgress` gets turns, last tool, tokens, estimated cost and API
 * retries at most once per `progressIntervalMs` and once at the end of every run. A run silent for
 * `stallTimeoutS` is ended (tree terminated) and counts as a transient failure (`stalled`); the next
 * try follows at once with `--resume <session_id>` (the id from `system/init`) and a short prompt to
 * continue, so the work done is kept; without a session id it starts afresh. A resume the CLI
 * refuses (usage error) is tried again afresh, within `retries`.
 *
 * Receipts (claude-receipts.ts): every try's tool calls, files written, commands and denials, read from the same
 * lines; their totals go with each progress record (task field `receipts`, no extra write), and the outcome carries
 * the receipt document with the verdict on a completed task (verification/evidence.ts), judged against the declared
 * files as they were before the first try.
 *
 * Outcome: on success the body is the CLI's `result` text verbatim; the result-file frontmatter and
 * the state record get cost (USD) and tokens summed over all tries, and turns, session id and
 * permission denials of the last try. Never throws for a failed run (only when aborted).
 */
export function createClaudeExecutor(options: ClaudeExecutorOptions): AgentExecutor {
  const log = options.log ?? (() => {});
  const stallTimeoutS = options.stallTimeoutS ?? DEFAULT_STALL_TIMEOUT_S;
  return async (ctx: AgentContext): Promise<AgentOutcome> => {
    const prompt = buildPrompt(ctx, { instructions: options.instructions, taskFilePath: options.taskFilePath });
    const progress = throttled(ctx.recordProgress?.bind(ctx), options.progressIntervalMs ?? PROGRESS_INTERVAL_MS, (line) =>
      log(`[${ctx.agent}] ${ctx.taskName}: ${line}`),
    );
    let totals: ClaudeUsage | null = null;
    let done: LiveProgress | null = null;
    const evidence = await Evidence.begin(ctx);
    /** The Claude session to resume on the next try (set by a stall), and why. */
    const next: { resume: { sessionId: string; reason: string } | null } = { resume: null };
    const { report, reported } = rateLimitReporter(ctx, log);
    for (let tryNumber = 1; ; tryNumber++) {
      const receipt = new ReceiptCollector(ctx.attempt, ctx.cwd);
      const tracker = new StreamTracker(undefined, receipt);
      const resuming = next.resume;
      const args = withBudgetCap(options.args, ctx.budgetShareUsd, totals?.cost_usd ?? 0);
      const run = await runClaude({
        bin: options.bin,
        args: resuming ? [...args, '--resume', resuming.sessionId] : args,
        prompt: resuming ? resumePrompt(resuming.reason) : prompt,
        cwd: ctx.cwd,
        env: options.env,
        timeoutMs: options.timeoutS * 1000,
        stallTimeoutMs: stallTimeoutS * 1000,
        killGraceMs: options.killGraceMs,
        signal: ctx.signal,
        onSpawn: (identity) => void ctx.recordChild?.(identity),
        onLine: (line) => {
          if (tracker.push(line))
            progress.update({ ...combineProgress(done, tracker.progress()), receipts: receipt.summary(evidence.attempts()) });
          for (const signal of tracker.takeRateLimits()) report(signal);
        },
      });
      void ctx.recordChild?.(null);
      evidence.add(receipt.receipt());
      done = combineProgress(done, tracker.progress());
      await progress.flush({ ...done, receipts: summarize(evidence.attempts()) });
      next.resume = null;
      const verdict = classifyClaudeRun(run, { bin: options.bin, timeoutS: options.timeoutS, stallTimeoutS });
      if (verdict.result) totals = addUsage(totals, resultUsage(verdict.result));
      // A run that ended on a 429/529 (the CLI's own retries used up, or none allowed) is a rate limit too.
      if (!verdict.ok && (verdict.code === 'rate_limited' || verdict.code === 'overloaded')) {
        report({
          status: verdict.result?.api_error_status ?? null,
          error: verdict.code === 'rate_limited' ? 'rate_limit' : 'overloaded',
          resetAt: null,
        });
      }
      await reported();
      if (verdict.ok) {
        warnDenials(ctx, totals, log);
        return completed(verdict.text, totals, tryNumber, await evidence.document({ completed: true, result: verdict.text }));
      }
      // A resumed session the CLI could not open (a usage error, nothing printed): start afresh instead.
      const resumeRefused = resuming !== null && verdict.kind === 'permanent' && (verdict.code === 'usage' || verdict.code === 'no_result');
      if ((verdict.kind === 'transient' || resumeRefused) && tryNumber <= options.retries && !ctx.signal.aborted) {
        const sessionId: string | null = tracker.sessionId ?? resuming?.sessionId ?? null;
        const resume = verdict.code === 'stalled' && sessionId !== null ? { sessionId, reason: verdict.message } : null;
        next.resume = resume;
        const waitMs = verdict.code === 'stalled' ? 0 : backoffDelay(tryNumber, options.backoffMs, BACKOFF_CAP_MS, options.random);
        const how = resume
          ? `resuming Claude session ${resume.sessionId}, `
          : resumeRefused
            ? 'the session could not be resumed: starting afresh, '
            : '';
        const reason = `${verdict.message}; ${how}retry ${tryNumber} of ${options.retries} in ${(waitMs / 1000).toFixed(1)} s`;
        log(`[${ctx.agent}] ${ctx.taskName}: retrying: ${reason}`);
        await ctx.markRetrying(reason, waitMs);
        await delay(waitMs, undefined, { signal: ctx.signal });
        await ctx.markRunning();
        continue;
      }
      const receiptDocument = await evidence.document({ completed: false, result: '' });
      return { ...failed(ctx, verdict, totals, tryNumber, options.retries, run.stderr), receipt: receiptDocument };
    }
  };
}

/** Logs the permission denials of a run that succeeded anyway (a denied agent may "succeed" without doing the work). */
function warnDenials(ctx: AgentContext, totals: ClaudeUsage | null, log: (line: string) => void): void {
  if (!totals || totals.permission_denials === 0) return;
  log(
    `[${ctx.agent}] ${ctx.taskName}: warning: ${totals.permission_denials} tool call(s) denied by permissions (${totals.denied_tools.join(', ')})`,
  );
}

/**
 * The CLI's arguments with `--max-budget-usd` set to the task's budget share less what its earlier
 * tries cost, or to the agent's own `--max-budget-usd` when that is smaller (every such flag in
 * `args`, passed-through ones included, is replaced by the one value). Unchanged without a share.
 * @param shareUsd - the task's share when it started (scheduling/budget.ts `agentBudgetShare`), USD.
 * @param spentUsd - what this task's earlier tries cost, USD.
 */
export function withBudgetCap(args: readonly string[], shareUsd: number | null | undefined, spentUsd: number): string[] {
  if (shareUsd === null || shareUsd === undefined) return [...args];
  const kept: string[] = [];
  let own = Infinity;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--max-budget-usd' && i + 1 < args.length) {
      const value = Number(args[++i]);
      if (Number.isFinite(value)) own = Math.min(own, value);
    } else if (arg.startsWith('--max-budget-usd=')) {
      const value = Number(arg.slice('--max-budget-usd='.length));
      if (Number.isFinite(value)) own = Math.min(own, value);
    } else {
      kept.push(arg);
    }
  }
  const cap = Math.max(0.0001, Math.min(own, shareUsd - spentUsd));
  const at = kept.indexOf('--verbose');
  const flag = ['--max-budget-usd', String(Math.floor(cap * 1e6 + 1e-3) / 1e6)];
  // Before any pass-through arguments (after the fixed `-p --output-format stream-json --verbose`).
  if (at !== -1) kept.splice(at + 1, 0, ...flag);
  else kept.push(...flag);
  return kept;
}

function usageFrontmatter(totals: ClaudeUsage | null, tries: number): Record<string, unknown> {
  if (!totals) return { tries };
  const { denied_tools, ...rest } = totals;
  return { ...rest, ...(denied_tools.length > 0 ? { denied_tools } : {}), tries };
}

function completed(text: string, totals: ClaudeUsage | null, tries: number, receipt: ReceiptDocument): AgentOutcome {
  return {
    receipt,
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
  const triesText = countOf(tries, 'try', 'tries');
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
