// After an agent's answer: the task's check and what follows from it (done, another try given the check's output, or
// failed), and the step between two tries that both agents take.
import { setTimeout as delay } from 'node:timers/promises';
import type { AgentContext } from './agent-types.ts';
import type { ReceiptDocument } from '../verification/receipt-file.ts';
import { checkFailedPrompt, describeCheckFailure, runCheck, type CheckRun, type TaskCheck } from '../verification/task-check.ts';

/** What follows an answer: {@link checkStep}. */
export type CheckStep =
  /** No check, or it passed (`run` null without a check). */
  | { kind: 'passed'; run: CheckRun | null }
  /** It failed and a retry is left: the next try is given `prompt` (the check's output); `reason` says why. */
  | { kind: 'retry'; run: CheckRun; prompt: string; reason: string }
  /** It failed with no retry left, or the run was aborted meanwhile. */
  | { kind: 'failed'; run: CheckRun };

/**
 * Runs the task's check, if any, after try `tryNumber` gave its answer, in the agent's folder (`ctx.cwd`: the worktree
 * when isolated). A failure with a retry left (`tryNumber <= retries`) asks for another try given the check's output.
 */
export async function checkStep(
  ctx: AgentContext,
  check: TaskCheck | undefined,
  tries: { tryNumber: number; retries: number },
  log: (line: string) => void,
): Promise<CheckStep> {
  if (!check) return { kind: 'passed', run: null };
  const run = await runCheck(check, ctx.cwd, ctx.signal);
  const took = `${(run.duration_ms / 1000).toFixed(1)} s`;
  if (run.exit === 0) {
    log(`[${ctx.agent}] ${ctx.taskName}: check \`${check.command}\` passed (${took})`);
    return { kind: 'passed', run };
  }
  log(`[${ctx.agent}] ${ctx.taskName}: ${describeCheckFailure(run)} (${took})`);
  if (ctx.signal.aborted || tries.tryNumber > tries.retries) return { kind: 'failed', run };
  return { kind: 'retry', run, prompt: checkFailedPrompt(run), reason: describeCheckFailure(run) };
}

/** The check's part of the receipt document: command, exit code and output tail, or null without a check. */
export function checkReceipt(run: CheckRun | null): ReceiptDocument['check'] {
  return run && { command: run.command, exit: run.exit, output_tail: run.output_tail };
}

/**
 * The step between two tries: logged, the task marked `retrying` with `reason` for `waitMs`, then `running` again
 * (which counts an attempt and waits for a slot under the session's limit). Throws only when aborted.
 */
export async function nextTry(ctx: AgentContext, log: (line: string) => void, reason: string, waitMs: number): Promise<void> {
  log(`[${ctx.agent}] ${ctx.taskName}: retrying: ${reason}`);
  await ctx.markRetrying(reason, waitMs);
  await delay(waitMs, undefined, { signal: ctx.signal });
  await ctx.markRunning();
}
