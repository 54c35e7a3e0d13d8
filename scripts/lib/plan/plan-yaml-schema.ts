// The YAML plan's schema: its tasks' fields (mock agents' fields included) and the plan's own.
import { z } from 'zod';
import { checkEditPath } from '../agents/mock-agent.ts';
import { TASK_NAME_PATTERN, TASK_NAME_RULE } from '../core/names.ts';
import { MAX_TIMER_MS, PRIORITIES } from '../state/schema.ts';

/** A mock agent's edits in a YAML plan: `{ relative/path: text }`. */
const EditMapSchema = z.record(z.string(), z.string()).superRefine((map, ctx) => {
  for (const file of Object.keys(map)) {
    try {
      checkEditPath(file, 'path');
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message, path: [file] });
    }
  }
});

const YamlTaskSchema = z
  .object({
    id: z.string().regex(TASK_NAME_PATTERN, `must match ${TASK_NAME_RULE}`),
    goal: z.string().refine((goal) => goal.trim() !== '', 'must say what the agent must do (a blank goal is refused, as --goal "" is)'),
    depends_on: z.union([z.array(z.string()), z.string()]).optional(),
    priority: z.enum(PRIORITIES).optional(),
    files: z.array(z.string().min(1)).optional(),
    delay_ms: z
      .number()
      .int()
      .nonnegative()
      .max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS} ms (about 24.8 days), the longest a timer can wait`)
      .optional(),
    fail: z.boolean().optional(),
    write: EditMapSchema.optional(),
    append: EditMapSchema.optional(),
    lazy: z.boolean().optional(),
    claim: z.string().optional(),
    ran: z.record(z.string().min(1), z.number().int().min(0).max(255)).optional(),
    isolation: z.enum(['none', 'worktree']).optional(),
    expect_changes: z.boolean().optional(),
    check: z.string().min(1).optional(),
    check_timeout: z
      .number()
      .positive()
      .max(MAX_TIMER_MS / 1000)
      .optional(),
  })
  .strict();

export const YamlPlanSchema = z
  .object({
    request: z.string().optional(),
    max_workers: z.number().int().positive().optional(),
    isolation: z.enum(['none', 'worktree']).optional(),
    tasks: z.array(YamlTaskSchema).min(1),
  })
  .strict();
