import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderFlowchart, renderGantt } from '../../scripts/lib/report/mermaid.ts';
import { buildReportData } from '../../scripts/lib/report/report-data.ts';
import { markdownToHtml } from '../../scripts/lib/report/report-html.ts';
import { renderReport } from '../../scripts/lib/report/report.ts';
import { buildTimeline } from '../../scripts/lib/report/timeline.ts';
import { at, finishedEvents, finishedState, liveState, LIVE_NOW, writeFinishedResults } from '../support/fixed-session.ts';
import { tempProject } from '../support/project.ts';

const NOW = Date.parse(at(20));

/** Mermaid's own parser, run in Node: its flowchart grammar sanitises labels with DOMPurify, which needs a DOM (jsdom). */
interface MermaidDiagram {
  db: Record<string, (...args: unknown[]) => unknown>;
}
let mermaid: {
  parse(text: string): Promise<{ diagramType: string }>;
  mermaidAPI: { getDiagramFromText(text: string): Promise<MermaidDiagram> };
};

beforeAll(async () => {
  const { JSDOM } = await import('jsdom');
  const dom = new JSDOM('<!doctype html><html><body></body></html>');
  Object.assign(globalThis, { window: dom.window, document: dom.window.document });
  mermaid = (await import('mermaid')).default as unknown as typeof mermaid;
  (mermaid as unknown as { initialize(config: object): void }).initialize({ startOnLoad: false, securityLevel: 'strict' });
});

async function finishedFixture() {
  const project = await tempProject('dto-report-');
  const state = finishedState(path.join(project.dir, '.agent/results'));
  await writeFinishedResults(state);
  return { project, state, outFile: path.join(project.dir, '.agent/final_output.md') };
}

describe('final_output.md', () => {
  it('renders a fixed finished session (summary, tables, diagrams, results in topological order)', async () => {
    const { state, outFile } = await finishedFixture();
    const report = await renderReport(state, outFile, { events: finishedEvents(), now: NOW });
    expect(report).toMatchSnapshot();
    const headings = report.split('\n').filter((line) => line.startsWith('### ') && line.includes('(Agent-'));
    expect(headings).toEqual([
      '### scan (Agent-01, completed)',
      '### quality (Agent-02, completed)',
      '### security (Agent-03, failed)',
      '### perf (Agent-04, completed)',
      '### report (Agent-05, skipped)',
    ]);
    expect(report).toContain('Result file: [results/scan.md](results/scan.md)');
  });

  it('reports the figures as data: makespan, work, parallelism, critical path, cost', () => {
    const data = buildReportData(finishedState('/r'), { events: finishedEvents(), now: NOW });
    expect(data).toMatchObject({
      session_id: 'done-fixture',
      finished: true,
      total: 5,
      counts: { completed: 3, failed: 1, skipped: 1 },
      makespan_ms: 8800,
      work_ms: 12500,
      parallelism: 1.42,
      peak_workers: 3,
      critical_path: { tasks: ['scan', 'perf'], length_ms: 8500 },
      cost: { usd: 0.0679, input_tokens: 5000, output_tokens: 1260, reported_tasks: 3 },
      batches: [['scan'], ['quality', 'security', 'perf'], ['report']],
    });
    expect(data.failures.map((f) => [f.task, f.status, f.error])).toEqual([
      ['security', 'failed', 'claude exited with code 1: API error (overloaded)'],
      ['report', 'skipped', 'dependency security failed'],
    ]);
    expect(data).toMatchSnapshot();
  });

  it('builds the timeline per attempt from events, and from the state alone without them', () => {
    const state = finishedState('/r');
    const withEvents = buildTimeline(state, finishedEvents(), NOW);
    expect(withEvents.map((s) => [s.task, s.attempt, s.start, s.end, s.outcome])).toEqual([
      ['scan', 1, at(1), at(3.5), 'completed'],
      ['quality', 1, at(3.6), at(4.6), 'retrying'],
      ['security', 1, at(3.7), at(5.7), 'failed'],
      ['perf', 1, at(3.8), at(9.8), 'completed'],
      ['quality', 2, at(5.6), at(7.6), 'completed'],
    ]);
    const stateOnly = buildTimeline(state, null, NOW);
    expect(stateOnly.map((s) => [s.task, s.start, s.end, s.outcome])).toEqual([
      ['scan', at(1), at(3.5), 'completed'],
      ['security', at(3.7), at(5.7), 'failed'],
      ['perf', at(3.8), at(9.8), 'completed'],
      ['quality', at(5.6), at(7.6), 'completed'],
    ]);
    const live = buildTimeline(liveState(), null, LIVE_NOW).find((s) => s.task === 'perf')!;
    expect([live.end, live.outcome]).toEqual([at(9), 'running']);
  });
});

describe("Mermaid diagrams, checked by the mermaid package's parser", () => {
  it('the flowchart parses: one vertex per task with its status class, one edge per dependency', async () => {
    const data = buildReportData(finishedState('/r'), { events: finishedEvents(), now: NOW });
    const text = renderFlowchart(data);
    expect(await mermaid.parse(text)).toMatchObject({ diagramType: 'flowchart-v2' });
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    const vertices = diagram.db.getVertices!() as Map<string, { id: string; text: string; classes: string[] }>;
    expect([...vertices.values()].map((v) => [v.id, v.text, v.classes])).toEqual([
      ['t1', 'scan<br>✅ completed · 2.5 s<br>Agent-01', ['completed']],
      ['t2', 'quality<br>✅ completed · 2.0 s<br>Agent-02', ['completed']],
      ['t3', 'security<br>❌ failed · 2.0 s<br>Agent-03', ['failed']],
      ['t4', 'perf<br>✅ completed · 6.0 s<br>Agent-04', ['completed']],
      ['t5', 'report<br>⏭️ skipped<br>Agent-05', ['skipped']],
    ]);
    const edges = diagram.db.getEdges!() as Array<{ start: string; end: string; style?: string[] }>;
    expect(edges.map((e) => `${e.start}->${e.end}`)).toEqual(['t1->t2', 't1->t3', 't1->t4', 't2->t5', 't3->t5', 't4->t5']);
    // The critical path scan -> perf is the third edge, drawn thick.
    expect(edges.map((e) => (e.style ?? []).join(';').includes('stroke-width:3px'))).toEqual([false, false, true, false, false, false]);
    const classes = diagram.db.getClasses!() as Map<string, { styles: string[] }>;
    expect([...classes.keys()].sort()).toEqual(['completed', 'failed', 'skipped']);
  });

  it('the gantt chart parses: one bar per run, at the real start and end, by agent', async () => {
    const data = buildReportData(finishedState('/r'), { events: finishedEvents(), now: NOW });
    const text = renderGantt(data)!;
    expect(await mermaid.parse(text)).toMatchObject({ diagramType: 'gantt' });
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    const tasks = diagram.db.getTasks!() as Array<{
      section: string;
      task: string;
      startTime: Date;
      endTime: Date;
      done?: boolean;
      crit?: boolean;
    }>;
    expect(
      tasks.map((t) => [
        t.section,
        t.task.trim(),
        t.startTime.toISOString(),
        t.endTime.toISOString(),
        t.done ? 'done' : t.crit ? 'crit' : '-',
      ]),
    ).toEqual([
      ['Agent-01', 'scan', at(1), at(3.5), 'done'],
      ['Agent-02', 'quality (try 1) failed, retried', at(3.6), at(4.6), 'crit'],
      ['Agent-02', 'quality (try 2)', at(5.6), at(7.6), 'done'],
      ['Agent-03', 'security failed', at(3.7), at(5.7), 'crit'],
      ['Agent-04', 'perf', at(3.8), at(9.8), 'done'],
    ]);
  });

  it('a live session parses too: running bars are active, and no timeline yet gives no chart', async () => {
    const data = buildReportData(liveState(), { now: LIVE_NOW });
    await expect(mermaid.parse(renderFlowchart(data))).resolves.toBeTruthy();
    const gantt = renderGantt(data)!;
    expect(gantt).toMatch(/perf :active, r\d+, /);
    await expect(mermaid.parse(gantt)).resolves.toBeTruthy();
    const empty = liveState();
    for (const task of Object.values(empty.tasks)) Object.assign(task, { started_at: null, ended_at: null });
    expect(renderGantt(buildReportData(empty, { now: LIVE_NOW }))).toBeNull();
  });
});

describe('report HTML (Markdown part)', () => {
  it('turns mermaid blocks into <pre class="mermaid">, escapes raw HTML and drops unsafe links', async () => {
    const html = markdownToHtml(
      '# T\n\n```mermaid\nflowchart LR\n  a --> b\n```\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) [ok](results/a.md)\n',
    );
    expect(html).toContain('<pre class="mermaid">flowchart LR\n  a --&gt; b</pre>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('javascript:');
    expect(html).toContain('<a href="results/a.md">ok</a>');
  });
});
