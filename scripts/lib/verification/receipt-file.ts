// The receipt file beside a task's result: every attempt's tool calls, files, commands and denials, the declared files' changes, and the verdict.
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../state/atomic-write.ts';
import type { AttemptReceipt, ReceiptSummary } from './receipts.ts';
import type { FileChange, Verdict } from './verdict.ts';

/** The receipt file's contents (`<output_dir>/<task>.receipt.json`; fields in references/verification.md). */
export interface ReceiptDocument {
  task: string;
  session_id: string;
  /** Every attempt of this run of the task, oldest first. */
  attempts: AttemptReceipt[];
  /** Their totals, as in the state's task field `receipts`. */
  summary: ReceiptSummary;
  /** The task's declared files and how each changed over the run. */
  declared_files: Array<{ path: string; change: FileChange }>;
  /** The last attempt's check, or null without one. */
  check: { command: string; exit: number | null; output_tail: string } | null;
  /** The verdict (completed tasks only), or null. */
  verdict: Verdict | null;
}

/** The receipt file of a result file: `T.md` -> `T.receipt.json` (any other name gets `.receipt.json` added). */
export function receiptPath(resultPath: string): string {
  return resultPath.endsWith('.md') ? `${resultPath.slice(0, -3)}.receipt.json` : `${resultPath}.receipt.json`;
}

/** Writes a receipt file atomically (temporary file, then rename). */
export async function writeReceiptFile(file: string, receipt: ReceiptDocument): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(receipt, null, 2)}\n`);
}

/** Reads a receipt file; null when it is missing or not a receipt (a report never fails for one). */
export async function readReceiptFile(file: string): Promise<ReceiptDocument | null> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<ReceiptDocument> | null;
    return parsed && Array.isArray(parsed.attempts) && parsed.summary ? (parsed as ReceiptDocument) : null;
  } catch {
    return null;
  }
}
