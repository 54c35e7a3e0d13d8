// Mermaid text for the report: the DAG as a flowchart coloured by status, and the actual timeline as a gantt chart.
import { formatDuration } from '../core/format.ts';
import { STATUS_ICONS } from '../state/status-icons.ts';
import type { ReportData } from './report-data.ts';
import type { TaskStatus } from '../state/model.ts';

/** Fill, stroke and text colour of a flowchart node, by task status (the board's colours, light enough for black text). */
export const STATUS_STYLES: Record<TaskStatus, string> = {
  pending: 'fill:#fff3bf,stroke:#f08c00,color:#000',
  waiting: 'fill:#fff3bf,stroke:#f08c00,color:#000,stroke-dasharray:4 3',
  running: 'fill:#d0ebff,stroke:#1c7ed6,color:#000',
  retrying: 'fill:#ffe8cc,stroke:#e8590c,color:#000',
  completed: 'fill:#d3f9d8,stroke:#2b8a3e,color:#000',
  failed: 'fill:#ffe3e3,stroke:#c92a2a,color:#000',
  skipped: 'fill:#f1f3f5,stroke:#868e96,color:#495057',
  cancelled: 'fill:#f1f3f5,stroke:#495057,color:#495057,stroke-dasharray:2 2',
  merge_failed: 'fill:#ffe3e3,stroke:#c92a2a,color:#000,stroke-dasharray:6 2',
};

/** Style of the edges on the critical path. */
const CRITICAL_EDGE_STYLE = 'stroke:#d9480f,stroke-width:3px';

/**
 * The DAG as a Mermaid flowchart (left to right): one node per task, labelled with its name,
 * agent, status and duration, filled by status (`classDef` per status); an edge from each
 * dependency to its dependant, thick and orange on the critical path.
 *
 * Node ids are `t1`, `t2`, ... in topological order, so task names never meet Mermaid's syntax.
 * @returns the diagram text, without the ```mermaid fence.
 */
export function renderFlowchart(data: ReportData): string {
  const id = new Map(data.tasks.map((task, index) => [task.task, `t${index + 1}`]));
  const lines = [
    'flowchart LR',
    `  accTitle: Task dependencies of session ${label(data.session_id)}`,
    '  accDescr: Each task is a node coloured by its status; an arrow goes from a dependency to the task that needs it.',
  ];
  for (const task of data.tasks) {
    const status = `${STATUS_ICONS[task.status]} ${task.status}${task.duration_ms !== null ? ` · ${formatDuration(task.duration_ms)}` : ''}`;
    lines.push(`  ${id.get(task.task)}["${label(task.task)}<br/>${label(status)}<br/>${label(task.agent)}"]`);
  }
  const critical = data.critical_path.tasks;
  // Each task's successor on the critical path (a task is on it at most once).
  const nextOnPath = new Map(critical.slice(0, -1).map((task, i) => [task, critical[i + 1]!]));
  const criticalEdges: number[] = [];
  let edge = 0;
  for (const task of data.tasks) {
    for (const dep of task.depends_on) {
      if (!id.has(dep)) continue;
      lines.push(`  ${id.get(dep)} --> ${id.get(task.task)}`);
      if (nextOnPath.get(dep) === task.task) criticalEdges.push(edge);
      edge += 1;
    }
  }
  const used = [...new Set(data.tasks.map((task) => task.status))];
  for (const status of used) {
    lines.push(`  classDef ${status} ${STATUS_STYLES[status]}`);
    lines.push(
      `  class ${data.tasks
        .filter((task) => task.status === status)
        .map((task) => id.get(task.task))
        .join(',')} ${status}`,
    );
  }
  if (criticalEdges.length > 0) lines.push(`  linkStyle ${criticalEdges.join(',')} ${CRITICAL_EDGE_STYLE}`);
  return lines.join('\n') + '\n';
}

/**
 * The actual timeline as a Mermaid gantt chart: a section per agent, a bar per run of a task (one
 * per attempt), from its real start to its real end. Times are Unix milliseconds (`dateFormat x`);
 * the axis shows the viewer's local time of day. Completed runs are `done`, failed, retried and
 * cancelled ones `crit` (red), runs still going `active`.
 *
 * @returns the diagram text without the fence, or null when no task has started.
 */
export function renderGantt(data: ReportData): string | null {
  if (data.timeline.length === 0) return null;
  const lines = [
    'gantt',
    `  title Timeline of session ${ganttText(data.session_id)} (actual runs)`,
    '  dateFormat x',
    '  axisFormat %H:%M:%S',
  ];
  const agents = [...new Set(data.timeline.map((segment) => segment.agent))];
  const runs = new Map<string, number>();
  for (const segment of data.timeline) runs.set(segment.task, (runs.get(segment.task) ?? 0) + 1);
  let n = 0;
  for (const agent of agents) {
    lines.push(`  section ${ganttText(agent)}`);
    for (const segment of data.timeline.filter((s) => s.agent === agent)) {
      n += 1;
      const tag = segment.outcome === 'completed' ? 'done' : segment.outcome === 'running' ? 'active' : 'crit';
      const tries = (runs.get(segment.task) ?? 0) > 1 && segment.attempt !== null ? ` (try ${segment.attempt})` : '';
      const outcome =
        segment.outcome === 'completed' || segment.outcome === 'running'
          ? ''
          : ` ${segment.outcome === 'retrying' ? 'failed, retried' : segment.outcome}`;
      const end = Math.max(Date.parse(segment.end), Date.parse(segment.start) + 1);
      lines.push(`  ${ganttText(`${segment.task}${tries}${outcome}`)} :${tag}, r${n}, ${Date.parse(segment.start)}, ${end}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Text inside a quoted flowchart label: quotes and angle brackets as Mermaid entity codes. */
function label(text: string): string {
  return text.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
}

/** Text of a gantt title, section or task: no `:` `#` `;` or newlines, which the grammar reserves. */
function ganttText(text: string): string {
  return text.replace(/[:#;\n\r]/g, ' ');
}
