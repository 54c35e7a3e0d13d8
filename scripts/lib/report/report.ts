// Builds final_output.md: the execution summary, the DAG and the timeline as Mermaid, a task table, then each result in topological order.
import path from 'node:path';
import type { SessionEvent } from '../state/events.ts';
import { formatDuration, formatTokens, formatUsd, renderMarkdownTable } from '../core/format.ts';
import { STATUS_ICONS } from '../state/status-icons.ts';
import { renderFlowchart, renderGantt } from './mermaid.ts';
import { buildReportData, type ReportData, type TaskReport } from './report-data.ts';
import { describeReceipt } from '../verification/receipts.ts';
import { readResultFile } from '../execution/result-file.ts';
import { checkResults, rehearsalBanner, type ResultChecks } from './report-checks.ts';
import type { SessionState } from '../state/model.ts';
import { renderSummary } from './session-summary.ts';
import { renderMergeSection } from '../isolation/merge-report.ts';

export { buildReportData, sessionGraph, type ReportData } from './report-data.ts';

/** Options of {@link renderReport}. */
export interface RenderReportOptions {
  /** The session's events, for a timeline with one bar per attempt. */
  events?: readonly SessionEvent[] | null;
  /** The report's time (ms since the epoch); default now. */
  now?: number;
  /** The session's result checks (see report-checks.ts); default: read from the result files. */
  checks?: ResultChecks;
}

/**
 * Renders `final_output.md`.
 *
 * Layout: when any task ran with a mock agent, a rehearsal banner first (no real work was done);
 * then the execution summary (counts, failures with reasons, makespan, sum of durations,
 * achieved parallelism, critical path, peak workers, cost, permission denials, empty results), a task table with per-task cost, a
 * Mermaid flowchart of the DAG coloured by status, a Mermaid gantt chart of the actual timeline,
 * then one `###` section per task in topological order with a link to its result file and the
 * result's text (its headings moved below the section's).
 *
 * @param outFile - where the report goes; links to result files are made relative to it.
 * @returns the Markdown text, ending with a newline.
 */
export async function renderReport(state: SessionState, outFile: string, options: RenderReportOptions = {}): Promise<string> {
  const data = buildReportData(state, { events: options.events, now: options.now });
  const checks = options.checks ?? (await checkResults(state));
  const banner = rehearsalBanner(checks, data.total);
  const lines = [
    ...(banner ? [`> **${banner.replace(/:.*$/s, '')}:**${banner.slice(banner.indexOf(':') + 1)}`, ''] : []),
    `# Final output: session ${state.session_id}`,
    '',
    '## Execution summary',
    '',
    renderSummary(data, { variant: 'markdown' }),
    `- Permission denials: ${checks.permission_denials.length === 0 ? 'none' : checks.permission_denials.map((d) => `${d.task} (${d.count}${d.tools.length ? `: ${d.tools.join(', ')}` : ''})`).join('; ')}`,
    `- Empty results: ${checks.empty_results.length === 0 ? 'none' : checks.empty_results.join(', ')}`,
    ...verdictItems(checks),
  ];
  if (data.failures.length > 0) {
    lines.push(
      '',
      '### Failures',
      '',
      ...data.failures.map(
        (f) =>
          `- ${STATUS_ICONS[f.status]} **${f.task}** (${f.agent}) ${f.status}` +
          `${f.attempts > 1 ? ` after ${f.attempts} attempts` : ''}: ${oneLine(f.error ?? 'no reason recorded')}`,
      ),
    );
  }
  lines.push(...renderMergeSection(data.merge ?? null));
  lines.push(
    '',
    '## Tasks',
    '',
    'In topological order. Bold: on the critical path. Start: time from the first start.',
    '',
    taskTable(data),
  );
  lines.push(
    '',
    '## Dependency graph',
    '',
    'Arrows go from a dependency to the task that needs it; the thick orange ones are the critical path.',
    '',
    '```mermaid',
    renderFlowchart(data).trimEnd(),
    '```',
  );
  const gantt = renderGantt(data);
  lines.push('', '## Timeline', '');
  if (gantt)
    lines.push(
      'When each run of each task started and ended, by agent (red: failed, retried or cancelled).',
      '',
      '```mermaid',
      gantt.trimEnd(),
      '```',
    );
  else lines.push('_No task has started yet._');
  lines.push('', '## Results (topological order)');
  for (const task of data.tasks) {
    lines.push('', `### ${task.task} (${task.agent}, ${task.status})`, '');
    if (task.hosts) lines.push(`Ran on: ${task.hosts.map((entry) => `attempt ${entry.attempt} on ${entry.host}`).join(', ')}`, '');
    lines.push(...receiptLines(task, outFile));
    const result = task.result_path ? await readResultFile(task.result_path) : null;
    if (!result) {
      lines.push(`_No result file${task.error ? `: ${oneLine(task.error)}` : ''}._`);
      continue;
    }
    const link = path.relative(path.dirname(outFile), task.result_path!).split(path.sep).join('/');
    lines.push(`Result file: [${link}](${encodeURI(link)})`, '', demoteHeadings(result.body.trim()));
  }
  return lines.join('\n') + '\n';
}

/** The report's verdict items: `- Unverified: none` / `- Contradicted: T (evidence)`. */
function verdictItems(checks: ResultChecks): string[] {
  return (['unverified', 'contradicted'] as const).map((value) => {
    const list = checks[value];
    const label = `${value[0]!.toUpperCase()}${value.slice(1)}`;
    return `- ${label}: ${list.length === 0 ? 'none' : list.map((v) => `**${v.task}** (${oneLine(v.evidence.join('; '))})`).join('; ')}`;
  });
}

/** A task's receipts and verdict under its result heading, with a link to its receipt file. */
function receiptLines(task: TaskReport, outFile: string): string[] {
  const lines: string[] = [];
  if (task.verdict)
    lines.push(
      `Verdict: **${task.verdict.value}**${task.verdict.evidence.length ? ` (${oneLine(task.verdict.evidence.join('; '))})` : ''}`,
    );
  if (task.receipts) {
    const link = task.receipt_path ? path.relative(path.dirname(outFile), task.receipt_path).split(path.sep).join('/') : null;
    lines.push(`Receipts: ${describeReceipt(task.receipts)}${link ? ` ([receipt](${encodeURI(link)}))` : ''}`);
  }
  return lines.length > 0 ? [...lines.flatMap((line) => [line, ''])] : [];
}

function taskTable(data: ReportData): string {
  const first = data.started_at ? Date.parse(data.started_at) : null;
  return renderMarkdownTable(
    ['Batch', 'Task', 'Agent', 'Status', 'Verdict', 'Attempts', 'Start', 'Duration', 'Cost', 'Tokens in / out', 'Depends on'],
    data.tasks.map((task) => [
      String(task.batch),
      task.on_critical_path ? `**${task.task}**` : task.task,
      task.agent,
      `${STATUS_ICONS[task.status]} ${task.status}`,
      task.verdict?.value ?? '-',
      `${task.attempts} of ${task.max_attempts}`,
      task.started_at && first !== null ? `+${formatDuration(Date.parse(task.started_at) - first)}` : '-',
      formatDuration(task.duration_ms),
      formatUsd(task.cost_usd),
      task.input_tokens === null && task.output_tokens === null
        ? '-'
        : `${formatTokens(task.input_tokens)} / ${formatTokens(task.output_tokens)}`,
      task.depends_on.join(', ') || 'None',
    ]),
  );
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
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
