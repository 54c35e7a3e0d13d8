// The receipt as a task ends: exact lines from git when isolated, no verdict unless completed, and the fields it adds to the state and the result file.
import type { ReceiptDocument } from './receipt-file.ts';
import { describeReceipt, summarize, type ReceiptSummary } from './receipts.ts';
import type { Verdict } from './verdict.ts';

/** What {@link finalReceipt} gives the task lifecycle. */
export interface FinalReceipt {
  document: ReceiptDocument;
  /** The state record's `receipts` and `verdict`. */
  record: { receipts: ReceiptSummary; verdict: Verdict | null };
  /** Result-file frontmatter: `verdict`, `verdict_evidence`, `receipts` (one line for people). */
  frontmatter: Record<string, unknown>;
}

/**
 * Completes a receipt document for the task's final status: lines added and removed from `diffStat` (the isolated
 * task's diff, exact) when given, and the verdict kept only when the task completed (an isolated task whose work did
 * not merge has none).
 * @param diffStat - the merge record's `diff_stat` (git `--numstat` of the task's branch), or null.
 */
export function finalReceipt(
  receipt: ReceiptDocument,
  status: 'completed' | 'failed' | 'merge_failed',
  diffStat: { insertions: number; deletions: number } | null,
): FinalReceipt {
  const summary = diffStat ? summarize(receipt.attempts, { added: diffStat.insertions, removed: diffStat.deletions }) : receipt.summary;
  const verdict = status === 'completed' ? receipt.verdict : null;
  const document: ReceiptDocument = { ...receipt, summary, verdict };
  return {
    document,
    record: { receipts: summary, verdict },
    frontmatter: {
      receipts: describeReceipt(summary),
      ...(verdict ? { verdict: verdict.value, verdict_evidence: verdict.evidence } : {}),
    },
  };
}
