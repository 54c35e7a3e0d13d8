// Evidence of one run of a task: the declared files before it, every attempt's receipt, and the receipt document with its verdict at the end.
import { compareSnapshots, snapshotFiles, type FileSnapshot } from './file-snapshot.ts';
import type { ReceiptDocument } from './receipt-file.ts';
import { summarize, type AttemptReceipt } from './receipts.ts';
import { judge } from './verdict.ts';

/** What evidence is gathered about: the task, as its agent context tells it. */
export interface EvidenceTask {
  taskName: string;
  session_id: string;
  goal: string;
  files: readonly string[];
  /** The agent's working directory (the worktree when isolated): declared files are looked at there. */
  cwd: string;
}

/**
 * The evidence of one run of a task (every attempt of one executor call). Start it before the agent (it fingerprints
 * the declared files), add each attempt's receipt as it ends, then {@link Evidence.document} when the run ends.
 */
export class Evidence {
  readonly #task: EvidenceTask;
  readonly #before: FileSnapshot;
  readonly #attempts: AttemptReceipt[] = [];

  private constructor(task: EvidenceTask, before: FileSnapshot) {
    this.#task = task;
    this.#before = before;
  }

  /** Fingerprints the task's declared files now (file-snapshot.ts); never throws. */
  static async begin(task: EvidenceTask): Promise<Evidence> {
    return new Evidence(task, await snapshotFiles(task.cwd, task.files));
  }

  /** Adds an ended attempt's receipt. */
  add(receipt: AttemptReceipt): void {
    this.#attempts.push(receipt);
  }

  /** The receipts of the attempts that ended, oldest first (a copy of the list). */
  attempts(): AttemptReceipt[] {
    return [...this.#attempts];
  }

  /**
   * The receipt document at the end of the run: totals, the declared files' changes (fingerprinted again now) and,
   * for a completed task, the verdict (verdict.ts `judge`) on its answer `result`.
   */
  async document(ended: { completed: boolean; result: string }, check: ReceiptDocument['check'] = null): Promise<ReceiptDocument> {
    const task = this.#task;
    const changes = compareSnapshots(this.#before, await snapshotFiles(task.cwd, task.files));
    const attempts = this.attempts();
    return {
      task: task.taskName,
      session_id: task.session_id,
      attempts,
      summary: summarize(attempts),
      declared_files: task.files.map((file) => ({ path: file, change: changes.get(file) ?? 'unknown' })),
      check,
      verdict: ended.completed
        ? judge({ goal: task.goal, result: ended.result, declaredFiles: task.files, changes, attempts, check })
        : null,
    };
  }
}
