// Builds final_output.md from a session: summary figures, a task table, then each result in topological order.
import path from 'node:path';
import { formatDuration, renderMarkdownTable, STATUS_ICONS } from './format.ts';
import { criticalPath, topologicalOrder, type TaskGraph } from './graph.ts';
import { readResultFile } from './result-file.ts';
import type { SessionState } from './schema.ts';
import { summarize, type SessionSummary } from './session-summary.ts';

/** The session's dependency graph, restricted to registered tasks. */
export function sessionGraph(state: SessionState): TaskGraph {
  return Object.fromEntries(Object.entries(state.tasks).map(([name, task]) => [name, task.depends_on.filter((dep) => dep in state.tasks)]));
}

/** Everything the report shows, as data. */
export interface ReportData {
  sessionId: string;
  summary: SessionSummary;
  order: string[];
  criticalPath: { path: string[]; lengthMs: number };
}

/** Computes the report's figures. */
export function buildReportData(state: SessionState): ReportData {
  const graph = sessionGraph(state);
  const durations = Object.fromEntries(Object.entries(state.tasks).map(([name, task]) => [name, task.duration_ms ?? 0]));
  return {
    sessionId: state.session_id,
    summary: summarize(state),
    order: topologicalOrder(graph),
    criticalPath: criticalPath(graph, durations),
  };
}

/**
 * Renders `final_output.md`.
 * @param outFile - where the report goes; links to result files are made relative to it.
 */
export async function renderReport(state: SessionState, outFile: string): Promise<string> {
  const data = buildReportData(state);
  const { summary } = data;
  const failures = Object.entries(state.tasks).filter(([, task]) => ['failed', 'skipped', 'cancelled'].includes(task.status));
  const lines = [
    `# Final output: session ${state.session_id}`,
    '',
    '## Execution summary',
    '',
    `- Completed: ${summary.counts.completed} of ${summary.total} tasks`,
    `- Failed: ${summary.counts.failed}, skipped: ${summary.counts.skipped}, cancelled: ${summary.counts.cancelled}` +
      (summary.finished ? '' : ` (still active: ${summary.total - summary.counts.completed - summary.counts.failed - summary.counts.skipped - summary.counts.cancelled})`),
    `- Makespan (first start to last end): ${formatDuration(summary.makespanMs)}`,
    `- Sum of task durations: ${formatDuration(summary.workMs)}`,
    `- Achieved parallelism (sum / makespan): ${summary.parallelism === null ? '-' : `${summary.parallelism.toFixed(2)}x`}`,
    `- Critical path: ${data.criticalPath.path.join(' -> ') || '-'} (${formatDuration(data.criticalPath.lengthMs)})`,
  ];
  if (failures.length > 0) {
    lines.push('', '### Failures', '', ...failures.map(([name, task]) => `- ${STATUS_ICONS[task.status]} ${name} (${task.agent}) ${task.status}: ${task.error ?? 'no reason recorded'}`));
  }
  lines.push(
    '',
    '## Tasks',
    '',
    renderMarkdownTable(
      ['Task', 'Agent', 'Status', 'Duration', 'Dependencies'],
      data.order.map((name) => {
        const task = state.tasks[name]!;
        return [name, task.agent, `${STATUS_ICONS[task.status]} ${task.status}`, formatDuration(task.duration_ms), task.depends_on.join(', ') || 'None'];
      }),
    ),
    '',
    '## Results (topological order)',
  );
  for (const name of data.order) {
    const task = state.tasks[name]!;
    lines.push('', `### ${name} (${task.agent}, ${task.status})`, '');
    const result = task.result_path ? await readResultFile(task.result_path) : null;
    if (!result) {
      lines.push(`_No result file${task.error ? `: ${task.error}` : ''}._`);
      continue;
    }
    const link = path.relative(path.dirname(outFile), task.result_path!).split(path.sep).join('/');
    lines.push(`Result file: [${link}](${link})`, '', demoteHeadings(result.body.trim()));
  }
  return lines.join('\n') + '\n';
}

/** Moves a result's headings below the report's `###` task heading so the outline stays intact. */
function demoteHeadings(markdown: string): string {
  let inFence = false;
  return markdown
    .split('\n')
    .map((line) => {
      if (/^(```|~~~)/.test(line)) inFence = !inFence;
      if (inFence) return line;
      const match = /^(#{1,6})\s/.exec(line);
      return match ? `${'#'.repeat(Math.min(6, match[1]!.length + 3))}${line.slice(match[1]!.length)}` : line;
    })
    .join('\n');
}
