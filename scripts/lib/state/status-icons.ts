// The status icons of the board, the report and a Markdown plan's status column.
import type { TaskStatus } from './model.ts';

/** The seeds' status icons. */
export const STATUS_ICONS: Record<TaskStatus, string> = {
  pending: '🟡',
  waiting: '⏸️',
  running: '🔵',
  retrying: '🔄',
  completed: '✅',
  failed: '❌',
  skipped: '⏭️',
  cancelled: '🚫',
  merge_failed: '⚔️',
};
