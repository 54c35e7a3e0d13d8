// The zod schemas of a task record's structured fields: its live progress, its receipts and its merge.
import { z } from 'zod';
import { MERGE_STATUSES } from './constants.ts';

const isoTime = z.iso.datetime({ offset: true });

const count = z.number().int().nonnegative();

/** The task field `receipts` (verification/receipts.ts `ReceiptSummary`). */
export const ReceiptSummarySchema = z.object({
  tool_calls: z.object({ read: count, search: count, edit: count, bash: count, web: count, other: count }),
  files_written: count,
  commands: count,
  commands_failed: count,
  denials: count,
  lines_added: count,
  lines_removed: count,
  lines_from: z.enum(['git', 'edits']),
  simulated: z.boolean(),
});

/** The task field `live` (see `applyLiveProgress` in live-progress.ts). */
export const LiveProgressSchema = z.object({
  turns: z.number().int().nonnegative(),
  last_tool: z.string().nullable().default(null),
  input_tokens: z.number().nonnegative(),
  output_tokens: z.number().nonnegative(),
  est_cost_usd: z.number().nonnegative().nullable().default(null),
  api_retries: z.number().int().nonnegative().default(0),
  last_api_error: z.string().nullable().default(null),
  last_event_at: isoTime,
});
export type LiveProgress = z.infer<typeof LiveProgressSchema>;

/** The task field `merge`: its branch, worktree and how its merge onto the integration branch went. */
export const TaskMergeSchema = z.object({
  /** The task's branch (`<prefix>/<session>/tasks/<task>`), kept unless merged. */
  branch: z.string(),
  /** The task's worktree while it exists (kept when not merged), else null. */
  worktree: z.string().nullable().default(null),
  /** merged; empty (changed nothing, nothing to merge); conflict; gate_failed; not_merged (the agent failed). */
  status: z.enum(MERGE_STATUSES),
  /** Files changed, lines inserted and deleted by the task (from its start commit to its branch tip). */
  diff_stat: z
    .object({
      files: z.number().int().nonnegative(),
      insertions: z.number().int().nonnegative(),
      deletions: z.number().int().nonnegative(),
    })
    .nullable()
    .default(null),
  /** Paths that conflicted with the integration branch. */
  conflicts: z.array(z.string()).default([]),
  /** The integration branch's commit holding the task's work (merged), else null. */
  commit: z.string().nullable().default(null),
  /** The end of a failed `--merge_check`'s output. */
  gate_output: z.string().nullable().default(null),
  /** The task was expected to change files (`--files`, `expect_changes`) and changed none. */
  expected_changes_missing: z.boolean().default(false),
});
export type TaskMerge = z.infer<typeof TaskMergeSchema>;
