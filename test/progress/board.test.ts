import { describe, expect, it } from 'vitest';
import { renderBoard } from '../../scripts/lib/progress/board.ts';
import { formatEventLine } from '../../scripts/lib/progress/event-lines.ts';
import { displayWidth } from '../../scripts/lib/core/format.ts';
import { RunTracker, type ProgressEvent } from '../../scripts/lib/progress/run-tracker.ts';
import { renderSummary } from '../../scripts/lib/report/session-summary.ts';
import { renderStatusBlock } from '../../scripts/lib/progress/status-block.ts';
import { buildStatusView, estimateTimeLeft } from '../../scripts/lib/progress/status-view.ts';
import { buildReportData } from '../../scripts/lib/report/report-data.ts';
import { at, finishedEvents, finishedState, liveState, LIVE_NOW } from '../support/fixed-session.ts';

// An ANSI colour sequence starts with ESC, a control character by definition.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001B\[[0-9;]*m/;
const view = () => buildStatusView(liveState(), { now: LIVE_NOW });
const recent = [
  '[00:05] ❌ security failed after 2.0 s (Agent-04): claude exited with code 1: API error (overloaded)',
  '[00:05] 🔵 quality started by Agent-03 (attempt 2)',
];

describe('progress board (terminal)', () => {
  it('renders a fixed state at 100 columns', () => {
    const board = renderBoard(view(), { width: 100, height: 30, recent });
    expect(board).not.toMatch(ANSI);
    expect(board).toMatchSnapshot();
  });

  it('fits a narrow terminal: no line wider than 60 columns, notes dropped or cut', () => {
    const board = renderBoard(view(), { width: 60, height: 30, recent });
    for (const line of board.split('\n')) expect(displayWidth(line)).toBeLessThanOrEqual(60);
    expect(board).toMatchSnapshot();
  });

  it('keeps active tasks when the terminal is too short, and says how many are hidden', () => {
    const board = renderBoard(view(), { width: 100, height: 9, recent: [] });
    expect(board.split('\n').length).toBeLessThanOrEqual(9);
    expect(board).toContain('quality');
    expect(board).toContain('perf');
    expect(board).toMatch(/… \d more tasks? not shown \(.*completed.*\)/);
    expect(board).toMatchSnapshot();
  });

  it('uses colour only when asked', () => {
    expect(renderBoard(view(), { width: 100, height: 30, color: true })).toMatch(ANSI);
  });

  it('header: counts, workers in use, elapsed time, time left and cost so far', () => {
    const [header1, header2] = renderBoard(view(), { width: 200, height: 30 }).split('\n');
    expect(header1).toBe('Session live-fixture · batch 1/4 · elapsed 00:09 · ~00:05 left · workers 3/3 · $0.0579');
    expect(header2).toBe('7 tasks: 🟡 1 pending  ⏸️ 1 waiting  🔵 2 running  🔄 1 retrying  ✅ 1 completed  ❌ 1 failed');
  });
});

describe('status table and lines (not a terminal)', () => {
  it('renders the seeds-style status block for a fixed state', () => {
    expect(renderStatusBlock(view())).toMatchSnapshot();
  });

  it('renders the execution summary of a finished session', () => {
    const data = buildReportData(finishedState('/results'), { events: finishedEvents(), now: Date.parse(at(20)) });
    expect(renderSummary(data, { variant: 'block' })).toMatchSnapshot();
  });

  it('renders every variant of the end summary from one report data, with the documented wording', () => {
    const data = buildReportData(finishedState('/results'), { events: finishedEvents(), now: Date.parse(at(20)) });
    const { counts, total } = data;
    expect([counts.completed, counts.failed, counts.skipped, total]).toEqual([3, 1, 1, 5]);
    expect(renderSummary(data, { variant: 'run', next: 'NEXT' })).toBe(
      `Session ${data.session_id}: 3 of 5 completed, 1 failed, 1 skipped; makespan 8.8 s, parallelism ${data.parallelism!.toFixed(2)}x. Next: NEXT writes the report.`,
    );
    expect(renderSummary(data, { variant: 'outcome', outcome: 'failed' })).toBe(
      'All 5 tasks ended: 3 completed, 1 failed, 1 skipped. Makespan 8.8 s.',
    );
    expect(renderSummary(data, { variant: 'outcome', outcome: 'timeout', timeoutS: 1.5 })).toBe(
      'Timed out after 1.5 s with tasks still active (0 of 5).',
    );
    expect(renderSummary(data, { variant: 'poll', outcome: 'failed', exitCode: 1, now: Date.parse(at(99)), nextCommand: 'NEXT' })).toBe(
      '[poll] All 5 tasks ended: 3 completed, 1 failed, 1 skipped; 10s elapsed. Next: NEXT (exit 1).',
    );
    const markdown = renderSummary(data, { variant: 'markdown' }).split('\n');
    expect(markdown[0]).toBe('- Completed: **3 of 5** tasks');
    expect(markdown[1]).toBe('- Failed: 1, skipped: 1, cancelled: 0');
    expect(renderSummary(data, { variant: 'block' }).split('\n')[3]).toBe('Completed: 3 of 5 tasks');
  });

  it('counts a failed task whose replacement is on its way as active and running in every poll variant', () => {
    const data = buildReportData(liveState(), { now: LIVE_NOW });
    const { counts, total } = data;
    const plain = renderSummary(data, { variant: 'poll', outcome: 'active', exitCode: 3, now: LIVE_NOW, nextCommand: 'NEXT' });
    const replacing = renderSummary(data, {
      variant: 'poll',
      outcome: 'active',
      exitCode: 3,
      now: LIVE_NOW,
      nextCommand: 'NEXT',
      replacing: 1,
    });
    const running = counts.running + counts.retrying;
    expect(plain).toContain(`${running} running, ${counts.pending + counts.waiting} waiting, ${counts.failed} failed`);
    expect(replacing).toContain(`${running + 1} running, ${counts.pending + counts.waiting} waiting, ${counts.failed - 1} failed`);
    const active = total - counts.completed - counts.failed;
    expect(renderSummary(data, { variant: 'outcome', outcome: 'active' })).toBe(`${active} of ${total} tasks still active.`);
    expect(renderSummary(data, { variant: 'outcome', outcome: 'active', replacing: 1 })).toBe(
      `${active + 1} of ${total} tasks still active.`,
    );
    expect(
      renderSummary(null, { variant: 'poll', outcome: 'timeout', exitCode: 2, now: LIVE_NOW, nextCommand: 'NEXT', timeoutS: 10 }),
    ).toBe('[poll] No session appeared within 10 s: run the same command again (exit 2).');
  });

  it('formats one line per event, with batch completions derived from the DAG', () => {
    const tracker = new RunTracker();
    const lines: string[] = [];
    for (const event of finishedEvents()) {
      tracker.apply(event);
      const out: ProgressEvent[] = [event, ...tracker.completedBatches()];
      for (const e of out) {
        const line = formatEventLine(e, { sessionStart: at(0), showWaiting: true });
        if (line !== null) lines.push(line);
      }
    }
    lines.push(
      formatEventLine(
        {
          ts: at(12),
          session_id: 'done-fixture',
          type: 'replaced',
          task: 'perf',
          agent: 'Agent-04',
          attempt: 2,
          error: 'agent process exited without reporting',
        },
        { sessionStart: at(0) },
      )!,
    );
    lines.push(
      formatEventLine(
        {
          ts: at(13),
          session_id: 'done-fixture',
          type: 'cancelled',
          task: 'docs',
          agent: 'Agent-06',
          attempt: 0,
          error: 'cancelled by cancel-session',
        },
        { sessionStart: at(0) },
      )!,
    );
    lines.push(
      formatEventLine(
        { ts: at(3725), session_id: 'done-fixture', type: 'waiting', task: 'docs', agent: 'Agent-06' },
        { sessionStart: at(0), showWaiting: true, waitingOn: () => ['report'] },
      )!,
    );
    expect(formatEventLine({ ts: at(1), session_id: 's', type: 'waiting', task: 'docs' }, { sessionStart: at(0) })).toBeNull();
    expect(lines.join('\n')).toMatchSnapshot();
    expect(lines).toContain('[00:09] ═══ Batch 2 of 3 completed: 3 tasks in 6.2 s (2 completed, 1 failed) ═══');
  });

  it('estimates the time left from completed durations, the remaining chain and the worker limit', () => {
    // Mean of completed: 2.5 s. Left: lint 2.5, quality 2.5-5.4=0, perf 0, report 2.5, docs 2.5.
    // Chain report -> docs = 5 s; work 7.5 s / 3 workers = 2.5 s.
    expect(estimateTimeLeft(liveState(), LIVE_NOW)).toBe(5000);
    const fresh = liveState();
    fresh.tasks.scan!.status = 'running';
    expect(estimateTimeLeft(fresh, LIVE_NOW)).toBeNull();
  });
});
