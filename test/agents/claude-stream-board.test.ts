// A running claude agent's live progress (task field `live`) on the board and in the status view.
import { describe, expect, it } from 'vitest';
import { renderBoard } from '../../scripts/lib/progress/board.ts';
import { getTask } from '../../scripts/lib/state/model.ts';
import { buildStatusView } from '../../scripts/lib/progress/status-view.ts';
import { at, liveState, LIVE_NOW } from '../support/fixed-session.ts';

function stateWithLive() {
  const state = liveState();
  getTask(state.tasks, 'perf')!.live = {
    turns: 4,
    last_tool: 'Bash',
    input_tokens: 1200,
    output_tokens: 300,
    est_cost_usd: 0.0321,
    api_retries: 2,
    last_api_error: '429 rate_limit',
    last_event_at: at(8.5),
  };
  return state;
}

describe('live progress in the status view and on the board', () => {
  it("a running agent's row shows its turn, last tool, API retries and the estimated cost marked with ~", () => {
    const view = buildStatusView(stateWithLive(), { now: LIVE_NOW });
    const perf = view.rows.find((row) => row.name === 'perf')!;
    expect(perf).toMatchObject({
      costUsd: 0.0321,
      costEstimated: true,
      live: { turns: 4, lastTool: 'Bash', estCostUsd: 0.0321, apiRetries: 2 },
      note: 'turn 4 · last tool Bash · 2 API retries (429 rate_limit)',
    });
    const line = renderBoard(view, { width: 140, height: 30 })
      .split('\n')
      .find((l) => l.includes('perf'))!;
    expect(line).toContain('~$0.0321');
    expect(line).toContain('turn 4 · last tool Bash · 2 API retries (429 rate_limit)');
  });

  it('a recorded cost wins over the estimate, and tasks without live fields are shown as before', () => {
    const state = stateWithLive();
    getTask(state.tasks, 'perf')!.cost_usd = 0.05;
    const rows = buildStatusView(state, { now: LIVE_NOW }).rows;
    expect(rows.find((row) => row.name === 'perf')).toMatchObject({ costUsd: 0.05, costEstimated: false });
    expect(rows.find((row) => row.name === 'quality')).toMatchObject({ live: null, costEstimated: false, note: '' });
  });
});
