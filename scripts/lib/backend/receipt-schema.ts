// The zod schema of a receipt document (verification/receipt-file.ts) as it comes back from a worker in a job's return value: data from the server, checked before use.
import { z } from 'zod';
import { ReceiptSummarySchema, VERDICTS } from '../state/schema.ts';

const count = z.number().int().nonnegative();

/** A receipt document (verification/receipt-file.ts `ReceiptDocument`): bounded, so a hostile server cannot bloat the state. */
export const ReceiptDocumentSchema = z.object({
  task: z.string().max(200),
  session_id: z.string().max(200),
  attempts: z
    .array(
      z.object({
        attempt: count,
        tool_calls: ReceiptSummarySchema.shape.tool_calls,
        files: z
          .array(
            z.object({
              path: z.string().max(4096),
              tool: z.string().max(100),
              ok: z.boolean().nullable(),
              lines_added: count,
              lines_removed: count,
            }),
          )
          .max(10_000),
        commands: z
          .array(z.object({ command: z.string().max(1000), exit: count.nullable(), denied: z.boolean(), interrupted: z.boolean() }))
          .max(10_000),
        denials: z.array(z.object({ tool: z.string().max(100), target: z.string().max(4096).nullable() })).max(10_000),
        simulated: z.boolean(),
      }),
    )
    .max(100),
  summary: ReceiptSummarySchema,
  declared_files: z.array(z.object({ path: z.string().max(4096), change: z.enum(['changed', 'unchanged', 'unknown']) })).max(10_000),
  check: z.object({ command: z.string().max(1000), exit: z.number().int().nullable(), output_tail: z.string().max(10_000) }).nullable(),
  verdict: z.object({ value: z.enum(VERDICTS), evidence: z.array(z.string().max(1000)).max(20) }).nullable(),
});
