// Keeps the status column of a master_plan.md in step with the session (the seeds' status icons).
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../state/atomic-write.ts';
import { STATUS_ICONS } from '../state/status-icons.ts';
import { appendCell, findTables, joinLines, replaceCell, splitLines } from './markdown-table.ts';
import { columnIndex, DEPENDENCY_COLUMNS } from './plan.ts';
import { getTask, type SessionState, type TaskStatus } from '../state/model.ts';

/** `✅ Completed`, `🔵 Running`, ...: the seeds' status cells. */
export function statusCell(status: TaskStatus): string {
  return `${STATUS_ICONS[status]} ${status[0]!.toUpperCase()}${status.slice(1)}`;
}

function timeCell(iso: string | null): string {
  return iso ? iso.slice(11, 19) : '-';
}

/**
 * Rewrites the status cells of a Markdown plan from the session: in every table that has a task-id
 * column, the `Status`, `Agent`, `Start Time` and `End Time` cells of known tasks are replaced.
 * When no table has a `Status` column, one is added at the end of the task table (the one with
 * dependencies). Only those cells change: every other byte of the document (the user's other
 * cells, spacing, alignment row, escapes, line breaks, text after the table) is kept. Rows whose
 * number of cells differs from the header's are left alone (a plan with one is refused anyway).
 *
 * @returns the new document text (equal to `text` when nothing changed).
 */
export function applyPlanStatuses(text: string, state: SessionState): string {
  const tables = findTables(text).filter((table) => columnIndex(table.header, ['task id', 'id']) !== -1);
  if (tables.length === 0) return text;
  const lines = splitLines(text);
  const hasStatus = tables.some((table) => columnIndex(table.header, ['status']) !== -1);
  for (const table of tables) {
    const idCol = columnIndex(table.header, ['task id', 'id']);
    let statusCol = columnIndex(table.header, ['status']);
    const width = table.header.length;
    const rows = table.rows.filter((row) => row.cells.length === width);
    const isTaskTable = columnIndex(table.header, DEPENDENCY_COLUMNS) !== -1;
    const addStatus = statusCol === -1 && !hasStatus && isTaskTable;
    if (addStatus) {
      statusCol = width;
      lines[table.start]!.text = appendCell(lines[table.start]!.text, 'Status');
      lines[table.delimiter]!.text = appendCell(lines[table.delimiter]!.text, '---');
    }
    const agentCol = columnIndex(table.header, ['agent']);
    const startCol = columnIndex(table.header, ['start time', 'started']);
    const endCol = columnIndex(table.header, ['end time', 'ended']);
    for (const row of rows) {
      const line = lines[row.line]!;
      const task = getTask(state.tasks, (row.cells[idCol] ?? '').replace(/[`*]/g, ''));
      if (addStatus) line.text = appendCell(line.text, task ? statusCell(task.status) : '');
      if (!task) continue;
      if (statusCol !== -1 && !addStatus) line.text = replaceCell(line.text, statusCol, statusCell(task.status));
      if (agentCol !== -1) line.text = replaceCell(line.text, agentCol, task.agent);
      if (startCol !== -1) line.text = replaceCell(line.text, startCol, timeCell(task.started_at));
      if (endCol !== -1) line.text = replaceCell(line.text, endCol, timeCell(task.ended_at));
    }
  }
  return joinLines(lines);
}

/**
 * Updates a master_plan.md in place (temporary file, then rename, via {@link writeFileAtomic}: a
 * failed write leaves no temporary file and the plan untouched) when its status cells changed.
 * @returns whether the file was rewritten.
 * @throws OrchestratorError `write_failed` naming the plan and the cause (e.g. a full disk).
 */
export async function writePlanStatuses(planPath: string, state: SessionState): Promise<boolean> {
  const text = await readFile(planPath, 'utf8');
  const next = applyPlanStatuses(text, state);
  if (next === text) return false;
  // No fsync: the cells are a view of the state, rewritten from it on the next change.
  await writeFileAtomic(planPath, next, { action: 'update the status cells of', fsync: false });
  return true;
}
