// Keeps the status column of a master_plan.md in step with the session (the seeds' status icons).
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { STATUS_ICONS } from './format.ts';
import { columnIndex, findTables, splitRow } from './plan.ts';
import type { SessionState, TaskStatus } from './schema.ts';

/** `✅ Completed`, `🔵 Running`, ...: the seeds' status cells. */
export function statusCell(status: TaskStatus): string {
  return `${STATUS_ICONS[status]} ${status[0]!.toUpperCase()}${status.slice(1)}`;
}

function timeCell(iso: string | null): string {
  return iso ? iso.slice(11, 19) : '-';
}

function renderRow(cells: string[]): string {
  return `| ${cells.map((cell) => cell.replace(/\|/g, '\\|')).join(' | ')} |`;
}

/**
 * Rewrites the status cells of a Markdown plan from the session: in every table that has a task-id
 * column, the `Status`, `Agent`, `Start Time` and `End Time` cells of known tasks are replaced.
 * When no table has a `Status` column, one is added to the task table (the one with dependencies).
 * Other text is kept byte for byte.
 *
 * @returns the new document text (equal to `text` when nothing changed).
 */
export function applyPlanStatuses(text: string, state: SessionState): string {
  const lines = text.split('\n');
  const tables = findTables(lines).filter((table) => columnIndex(table.header, ['task id', 'id']) !== -1);
  if (tables.length === 0) return text;
  const hasStatus = tables.some((table) => columnIndex(table.header, ['status']) !== -1);
  for (const table of tables) {
    const idCol = columnIndex(table.header, ['task id', 'id']);
    let statusCol = columnIndex(table.header, ['status']);
    const isTaskTable = columnIndex(table.header, ['dependencies', 'deps', 'depends on', 'depends_on']) !== -1;
    if (statusCol === -1 && !hasStatus && isTaskTable) {
      statusCol = table.header.length;
      lines[table.start] = renderRow([...table.header, 'Status']);
      lines[table.start + 1] = renderRow([...splitRow(lines[table.start + 1]!), '---']);
      for (const row of table.rows) row.cells.push('');
    }
    const agentCol = columnIndex(table.header, ['agent']);
    const startCol = columnIndex(table.header, ['start time', 'started']);
    const endCol = columnIndex(table.header, ['end time', 'ended']);
    for (const row of table.rows) {
      const task = state.tasks[(row.cells[idCol] ?? '').replace(/[`*]/g, '')];
      if (!task) {
        if (row.cells.length > splitRow(lines[row.line]!).length) lines[row.line] = renderRow(row.cells);
        continue;
      }
      const cells = [...row.cells];
      if (statusCol !== -1) cells[statusCol] = statusCell(task.status);
      if (agentCol !== -1) cells[agentCol] = task.agent;
      if (startCol !== -1) cells[startCol] = timeCell(task.started_at);
      if (endCol !== -1) cells[endCol] = timeCell(task.ended_at);
      if (cells.some((cell, i) => cell !== row.cells[i]) || cells.length !== splitRow(lines[row.line]!).length) lines[row.line] = renderRow(cells);
    }
  }
  return lines.join('\n');
}

/**
 * Updates a master_plan.md in place (temporary file, then rename) when its status cells changed.
 * @returns whether the file was rewritten.
 */
export async function writePlanStatuses(planPath: string, state: SessionState): Promise<boolean> {
  const text = await readFile(planPath, 'utf8');
  const next = applyPlanStatuses(text, state);
  if (next === text) return false;
  const tmp = `${planPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, next, 'utf8');
  await rename(tmp, planPath);
  return true;
}
