// What a claude run ends as: the completed or failed outcome (body, frontmatter, record), the budget cap of the next try, and the denial warning.
import type { AgentContext, AgentOutcome } from './agent-types.ts';
import type { ClaudeUsage, ClaudeVerdict } from './claude-result.ts';
import { quote, recordFields } from './claude-usage.ts';
import { countOf } from '../core/format.ts';
import type { ReceiptDocument } from '../verification/receipt-file.ts';
import { describeCheckFailure, type CheckRun } from '../verification/task-check.ts';

/** Logs the permission denials of a run that succeeded anyway (a denied agent may "succeed" without doing the work). */
export function warnDenials(ctx: AgentContext, totals: ClaudeUsage | null, log: (line: string) => void): void {
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

/** The result file's frontmatter of a run: cost and tokens summed over the tries, the denied tools, the number of tries. */
function usageFrontmatter(totals: ClaudeUsage | null, tries: number): Record<string, unknown> {
  if (!totals) return { tries };
  const { denied_tools, ...rest } = totals;
  return { ...rest, ...(denied_tools.length > 0 ? { denied_tools } : {}), tries };
}

/** A completed outcome: the answer verbatim (a note when it is empty), usage in the frontmatter and the record. */
export function completed(text: string, totals: ClaudeUsage | null, tries: number, receipt: ReceiptDocument): AgentOutcome {
  return {
    receipt,
    status: 'completed',
    body: text.trim() === '' ? '_(the agent returned an empty answer)_\n' : text,
    frontmatter: { ...usageFrontmatter(totals, tries), ...(text.trim() === '' ? { empty_result: true } : {}) },
    record: recordFields(totals),
  };
}

/** A failed outcome: the CLI's message, how many tries, the goal and the last lines of its standard error. */
export function failed(
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

/**
 * A run whose answer was given but whose check kept failing, with no retry left: the task fails with the check's
 * account (command, exit code or time-out) and the last lines of its output.
 */
export function checkFailed(ctx: AgentContext, run: CheckRun, totals: ClaudeUsage | null, tries: number, retries: number): AgentOutcome {
  const lastLines = run.output_tail.trim().split('\n').slice(-3).join(' | ');
  const error = `${describeCheckFailure(run)} after ${countOf(tries, 'try', 'tries')} (--retries ${retries})${lastLines ? `: ${lastLines}` : ''}`;
  return {
    status: 'failed',
    error,
    body:
      `# ${ctx.taskName}: failed\n\n## Error\n${error}\n\n## Check output (last lines)\n\`\`\`\n${run.output_tail.trim()}\n\`\`\`\n\n` +
      `## Goal\n${quote(ctx.goal)}\n`,
    frontmatter: { ...usageFrontmatter(totals, tries), failure: 'check_failed', failure_kind: 'permanent' },
    record: recordFields(totals),
  };
}
