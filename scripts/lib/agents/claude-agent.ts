// The real agent: runs `claude -p` for a task, follows its event stream, retries transient failures with backoff (resuming a stalled session), and reports cost, tokens and the answer.
import type { AgentContext, AgentExecutor, AgentOutcome } from './agent-types.ts';
import { BACKOFF_CAP_MS, backoffDelay } from './backoff.ts';
import { buildPrompt } from './claude-prompt.ts';
import { classifyClaudeRun, resultUsage, type ClaudeUsage } from './claude-result.ts';
import { runClaude } from './claude-runner.ts';
import { StreamTracker, type LiveProgress } from './claude-stream.ts';
import { DEFAULT_STALL_TIMEOUT_S } from './claude-options.ts';
import { addUsage, combineProgress, rateLimitReporter, throttled } from './claude-usage.ts';
import { checkFailed, completed, failed, warnDenials, withBudgetCap } from './claude-outcome.ts';
import { checkReceipt, checkStep, nextTry } from './check-step.ts';
import { ReceiptCollector } from './claude-receipts.ts';
import { Evidence } from '../verification/evidence.ts';
import { summarize } from '../verification/receipts.ts';
import type { TaskCheck } from '../verification/task-check.ts';

export { withBudgetCap } from './claude-outcome.ts';

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
  /**
   * The task's check (`--check`, plan `check:`), run after each answer in the agent's folder: a failure is given back
   * to the agent (its Claude session resumed with the check's output) within `retries`, then fails the task.
   */
  check?: TaskCheck;
}

/** Least time between two progress records of one agent (ms): at most one state write per 3 s (issue "Agents you can steer while they run"). */
export const PROGRESS_INTERVAL_MS = 3000;

/**
 * After a try that gave an answer: the task's check (check-step.ts). @returns the outcome (completed: no check or it
 * passed; failed: it failed with no retry left), or the session to resume and the check's output to give it, once the
 * task was marked for its next try.
 */
async function afterAnswer(
  ctx: AgentContext,
  options: ClaudeExecutorOptions,
  run: { text: string; totals: ClaudeUsage | null; tryNumber: number; evidence: Evidence; sessionId: string | null },
  log: (line: string) => void,
): Promise<AgentOutcome | { sessionId: string | null; prompt: string }> {
  const { text, totals, tryNumber, sessionId } = run;
  const step = await checkStep(ctx, options.check, { tryNumber, retries: options.retries }, log);
  if (step.kind === 'retry') {
    const how = sessionId ? `resuming Claude session ${sessionId} with its output` : 'starting afresh with its output';
    await nextTry(ctx, log, `${step.reason}; ${how}, retry ${tryNumber} of ${options.retries}`, 0);
    return { sessionId, prompt: step.prompt };
  }
  const receipt = await run.evidence.document({ completed: step.kind === 'passed', result: text }, checkReceipt(step.run));
  if (step.kind === 'failed') return { ...checkFailed(ctx, step.run, totals, tryNumber, options.retries), receipt };
  return completed(text, totals, tryNumber, receipt);
}

/**
 * A try's arguments and prompt: the task's own, or, to resume, `--resume <session>` and the instruction (a stall's
 * continue, a check's output); without a session id, afresh: the task's prompt followed by the instruction.
 */
function tryInput(args: string[], prompt: string, resuming: { sessionId: string | null; prompt: string } | null) {
  if (!resuming) return { args, prompt };
  if (resuming.sessionId === null) return { args, prompt: `${prompt}\n${resuming.prompt}` };
  return { args: [...args, '--resume', resuming.sessionId], prompt: resuming.prompt };
}

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
 * With a `check`, an answer counts only once the check passes (check-step.ts): a failed check is given back to the
 * agent (its session resumed, the check's output as the next instruction; afresh with the task's prompt plus that
 * output when no session id is known) within `retries`, then the task fails with the check's output.
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
    /** The Claude session to resume on the next try (set by a stall or a failed check; null: afresh), and what to tell it. */
    const next: { resume: { sessionId: string | null; prompt: string } | null } = { resume: null };
    const { report, reported } = rateLimitReporter(ctx, log);
    for (let tryNumber = 1; ; tryNumber++) {
      const receipt = new ReceiptCollector(ctx.attempt, ctx.cwd);
      const tracker = new StreamTracker(undefined, receipt);
      const resuming = next.resume;
      const run = await runClaude({
        bin: options.bin,
        ...tryInput(withBudgetCap(options.args, ctx.budgetShareUsd, totals?.cost_usd ?? 0), prompt, resuming),
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
        const sessionId = tracker.sessionId ?? resuming?.sessionId ?? null;
        const ended = await afterAnswer(ctx, options, { text: verdict.text, totals, tryNumber, evidence, sessionId }, log);
        if ('status' in ended) return ended;
        next.resume = ended;
        continue;
      }
      // A resumed session the CLI could not open (a usage error, nothing printed): start afresh instead.
      const resumeRefused = resuming !== null && verdict.kind === 'permanent' && (verdict.code === 'usage' || verdict.code === 'no_result');
      if ((verdict.kind === 'transient' || resumeRefused) && tryNumber <= options.retries && !ctx.signal.aborted) {
        const sessionId: string | null = tracker.sessionId ?? resuming?.sessionId ?? null;
        const resume = verdict.code === 'stalled' && sessionId !== null ? { sessionId, prompt: resumePrompt(verdict.message) } : null;
        next.resume = resume;
        const waitMs = verdict.code === 'stalled' ? 0 : backoffDelay(tryNumber, options.backoffMs, BACKOFF_CAP_MS, options.random);
        const how = resume
          ? `resuming Claude session ${resume.sessionId}, `
          : resumeRefused
            ? 'the session could not be resumed: starting afresh, '
            : '';
        await nextTry(
          ctx,
          log,
          `${verdict.message}; ${how}retry ${tryNumber} of ${options.retries} in ${(waitMs / 1000).toFixed(1)} s`,
          waitMs,
        );
        continue;
      }
      const receiptDocument = await evidence.document({ completed: false, result: '' });
      return { ...failed(ctx, verdict, totals, tryNumber, options.retries, run.stderr), receipt: receiptDocument };
    }
  };
}
