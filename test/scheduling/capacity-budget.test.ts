// The rate-limit-adaptive limit (AIMD) and the session budget: pure transitions on literal states, and how decide() obeys them.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  capacityLabel,
  configureCapacity,
  effectiveLimit,
  noteCompletion,
  noteRateLimit,
  retryMayStart,
} from '../../scripts/lib/scheduling/capacity.ts';
import { agentBudgetShare, budgetPicture, taskReserve } from '../../scripts/lib/scheduling/budget.ts';
import { decide, type IdentityCheck } from '../../scripts/lib/scheduling/scheduling.ts';
import { applyBudgetStops, setStatus } from '../../scripts/lib/scheduling/transitions.ts';
import { SessionStateSchema, type SessionState, type TaskRecordInput } from '../../scripts/lib/state/schema.ts';
import type { StateTransaction } from '../../scripts/lib/state/state-store.ts';
import { withBudgetCap } from '../../scripts/lib/agents/claude-agent.ts';
import { session, t } from '../support/literal-session.ts';
import { run, tempProject } from '../support/project.ts';
import { buildStatusView } from '../../scripts/lib/progress/status-view.ts';
import { renderBoard } from '../../scripts/lib/progress/board.ts';
import { formatEventLine } from '../../scripts/lib/progress/event-lines.ts';
import { buildReportData } from '../../scripts/lib/report/report-data.ts';
import { renderSummary } from '../../scripts/lib/report/session-summary.ts';

const alive: IdentityCheck = () => 'alive';

/** A transaction at `seconds` after the literal sessions' epoch that records its events. */
function tx(state: SessionState, seconds: number) {
  const events: Array<{ type: string; [key: string]: unknown }> = [];
  const transaction: StateTransaction = {
    state,
    archiveCurrent: () => {},
    emit: (type, fields) => void events.push({ type, ...fields }),
    now: new Date(t(seconds)),
  };
  return { tx: transaction, events };
}

const rateLimit = { status: 429, error: 'rate_limit', resetAt: null };

describe('the adaptive limit (AIMD)', () => {
  it('halves on a rate limit, once per burst: reports within the window lower nothing more', () => {
    const state = session(8, {});
    const first = tx(state, 10);
    expect(noteRateLimit(first.tx, state, { ...rateLimit, task: 'a' })).toBe(true);
    expect(effectiveLimit(state)).toBe(4);
    // Four more agents saw the same burst within the 5 s window.
    for (const task of ['b', 'c', 'd', 'e']) noteRateLimit(tx(state, 12).tx, state, { ...rateLimit, task });
    expect(effectiveLimit(state)).toBe(4);
    expect(state.capacity.hits).toBe(5);
    expect(first.events).toEqual([
      expect.objectContaining({
        type: 'capacity',
        old_limit: 8,
        new_limit: 4,
        why: expect.stringMatching(/HTTP 429 rate_limit seen by a: limit halved/),
      }),
    ]);
    // After the window a new report halves again, and never below 1.
    noteRateLimit(tx(state, 16).tx, state, rateLimit);
    expect(effectiveLimit(state)).toBe(2);
    noteRateLimit(tx(state, 22).tx, state, rateLimit);
    noteRateLimit(tx(state, 28).tx, state, rateLimit);
    expect(effectiveLimit(state)).toBe(1);
    expect(state.capacity.rate_limited_since).toBe(t(10));
  });

  it('grows by 1 at a completion only after a quiet period, back to max_workers, then is no longer rate limited', () => {
    const state = session(4, {});
    state.capacity.quiet_ms = 30_000;
    noteRateLimit(tx(state, 0).tx, state, rateLimit);
    expect(effectiveLimit(state)).toBe(2);
    expect(noteCompletion(tx(state, 20).tx, state)).toBe(false);
    const grown = tx(state, 31);
    expect(noteCompletion(grown.tx, state)).toBe(true);
    expect(effectiveLimit(state)).toBe(3);
    expect(grown.events).toEqual([expect.objectContaining({ type: 'capacity', old_limit: 2, new_limit: 3 })]);
    // The quiet period counts again from that change.
    expect(noteCompletion(tx(state, 40).tx, state)).toBe(false);
    expect(noteCompletion(tx(state, 62).tx, state)).toBe(true);
    expect(effectiveLimit(state)).toBe(4);
    expect(state.capacity).toMatchObject({ limit: null, rate_limited_since: null });
    expect(noteCompletion(tx(state, 100).tx, state)).toBe(false);
  });

  it('a completion that grows the limit logs the capacity change, then the completion, in one transaction', () => {
    const state = session(4, { a: { status: 'running', started_at: t(0) } });
    state.capacity.quiet_ms = 30_000;
    noteRateLimit(tx(state, 0).tx, state, rateLimit);
    const done = tx(state, 31);
    setStatus(done.tx, state, 'a', 'completed');
    expect(effectiveLimit(state)).toBe(3);
    expect(done.events.map((e) => e.type)).toEqual(['capacity', 'completed']);
  });

  it('a rate limit right after the limit grew halves it at once (the window counts from the last decrease only)', () => {
    const state = session(8, {});
    state.capacity.quiet_ms = 1000;
    noteRateLimit(tx(state, 0).tx, state, rateLimit);
    noteCompletion(tx(state, 10).tx, state);
    expect(effectiveLimit(state)).toBe(5);
    noteRateLimit(tx(state, 10.5).tx, state, rateLimit);
    expect(effectiveLimit(state)).toBe(2);
  });

  it('a known reset time pauses new starts and retries until then; decide starts nothing meanwhile', () => {
    const state = session(4, { a: {}, b: {} });
    const paused = tx(state, 10);
    noteRateLimit(paused.tx, state, { status: 429, error: 'rate_limit', resetAt: new Date(t(40)) });
    expect(paused.events[0]).toMatchObject({ type: 'capacity', pause_until: t(40) });
    expect(decide(state, { now: new Date(t(20)), identity: alive }).start).toEqual([]);
    expect(retryMayStart(state, new Date(t(20)))).toBe(false);
    expect(capacityLabel(state, 0, new Date(t(20)))).toBe(
      'workers 0/4 (rate limited to 2, since 10:00:10; new starts paused until 10:00:40)',
    );
    expect(decide(state, { now: new Date(t(41)), identity: alive }).start).toEqual(['a', 'b']);
    expect(retryMayStart(state, new Date(t(41)))).toBe(true);
  });

  it('decide obeys the lowered limit for new starts and never stops running agents', () => {
    const tasks: Record<string, Partial<TaskRecordInput>> = {
      r1: { status: 'running', pid: 100, heartbeat_at: t(9) },
      r2: { status: 'retrying', pid: 100, heartbeat_at: t(9) },
      r3: { status: 'running', pid: 100, heartbeat_at: t(9) },
      w1: {},
      w2: {},
    };
    const state = session(8, tasks);
    expect(decide(state, { now: new Date(t(10)), identity: alive }).start).toEqual(['w1', 'w2']);
    state.capacity.limit = 4;
    const decision = decide(state, { now: new Date(t(10)), identity: alive });
    expect(decision.start).toEqual(['w1']);
    expect(decision.fail).toEqual([]);
    expect(decision.stop).toEqual([]);
    state.capacity.limit = 2;
    expect(decide(state, { now: new Date(t(10)), identity: alive }).start).toEqual([]);
    // A retry may start again only while fewer agents run than the limit (r2 retrying does not count).
    expect(retryMayStart(state, new Date(t(10)))).toBe(false);
    state.capacity.limit = 3;
    expect(retryMayStart(state, new Date(t(10)))).toBe(true);
  });

  it('with --adaptive off the limit stays max_workers: rate limits are only counted', () => {
    const state = session(8, {});
    configureCapacity(state, { adaptive: false, fresh: true }, {});
    const off = tx(state, 10);
    expect(noteRateLimit(off.tx, state, { ...rateLimit, resetAt: new Date(t(60)) })).toBe(false);
    expect(effectiveLimit(state)).toBe(8);
    expect(state.capacity).toMatchObject({ hits: 1, pause_until: null, limit: null });
    expect(off.events).toEqual([]);
    expect(capacityLabel(state, 3)).toBe('workers 3/8');
  });

  it('the quiet period and the decrease window of a new session come from the environment; bad values are ignored', () => {
    const state = session(8, {});
    configureCapacity(state, { fresh: true }, { DTO_CAPACITY_QUIET_MS: '2000', DTO_CAPACITY_WINDOW_MS: 'soon' });
    expect(state.capacity).toMatchObject({ quiet_ms: 2000, window_ms: 5000, adaptive: true });
  });

  it('a state file written before these fields loads with adaptation on, no budget', () => {
    const old = SessionStateSchema.parse({ version: 1, session_id: 's', created_at: t(0), updated_at: t(0), tasks: {} });
    expect(old.capacity).toMatchObject({ adaptive: true, limit: null, pause_until: null, hits: 0 });
    expect(old.budget).toMatchObject({ usd: null, on_budget: 'finish', reached_at: null });
  });
});

describe('the session budget', () => {
  const C = 0.01;
  /** `done` completed tasks costing C each, `running` running ones (no estimate yet), `waiting` queued ones. */
  function budgeted(
    usd: number,
    done: number,
    running: number,
    waiting: number,
    maxWorkers = 2,
    extra: Record<string, Partial<TaskRecordInput>> = {},
  ): SessionState {
    const tasks: Record<string, Partial<TaskRecordInput>> = {};
    for (let i = 0; i < done; i++) tasks[`d${i}`] = { status: 'completed', cost_usd: C };
    for (let i = 0; i < running; i++) tasks[`r${i}`] = { status: 'running', pid: 100, heartbeat_at: t(9) };
    for (let i = 0; i < waiting; i++) tasks[`w${i}`] = {};
    const state = session(maxWorkers, { ...tasks, ...extra });
    state.budget.usd = usd;
    return state;
  }

  it('the reserve is learned from completed tasks; before any, budget / (2 x max_workers)', () => {
    expect(taskReserve(budgeted(0.06, 0, 0, 3))).toBeCloseTo(0.015, 9);
    expect(taskReserve(budgeted(0.06, 2, 0, 3))).toBeCloseTo(C, 9);
    const explicit = budgeted(0.06, 2, 0, 3);
    explicit.budget.reserve_usd = 0.002;
    expect(taskReserve(explicit)).toBe(0.002);
  });

  it('starts a task only while spent + running estimates + a reserve stays below the budget', () => {
    // 3 spent, one running (counted at the reserve, 1), one more makes 5 < 6: it starts.
    expect(decide(budgeted(0.06, 3, 1, 3), { now: new Date(t(10)), identity: alive }).start).toEqual(['w0']);
    // 4 spent + 1 running + 1 more = 6, not below 6 (the CLI would stop a run at its cap): waits, skips nothing yet.
    const waits = decide(budgeted(0.06, 4, 1, 3), { now: new Date(t(10)), identity: alive });
    expect(waits).toMatchObject({ start: [], skip: [] });
    expect(waits.wait.map((w) => w.name)).toEqual(['w0', 'w1', 'w2']);
    // Several starts in one decision each take a reserve: 2 spent, 8 workers free, room for 3 more only.
    expect(decide(budgeted(0.06, 2, 0, 6, 8), { now: new Date(t(10)), identity: alive }).start).toEqual(['w0', 'w1', 'w2']);
  });

  it('once the budget is reached, every waiting task is skipped with a reason that says so, dependants too', () => {
    const state = budgeted(0.06, 6, 0, 2, 2, { after: { depends_on: ['w0'] } });
    const decision = decide(state, { now: new Date(t(10)), identity: alive });
    expect(decision.start).toEqual([]);
    expect(decision.skip.map((s) => s.name).sort()).toEqual(['after', 'w0', 'w1']);
    expect(decision.skip[0]!.reason).toMatch(/^budget: \$0\.0600 of \$0\.0600 spent/);
    const applied = tx(state, 10);
    expect(applyBudgetStops(applied.tx, state, decision)).toEqual([]);
    expect(applied.events).toEqual([expect.objectContaining({ type: 'budget', budget_usd: 0.06 })]);
    expect(state.budget.reached_at).toBe(t(10));
  });

  it('with on_budget stop, running agents are stopped (cancelled) once the money gone reaches the budget; with finish they run on', () => {
    const state = budgeted(0.06, 5, 1, 1);
    state.tasks.r0!.live = {
      turns: 2,
      last_tool: null,
      input_tokens: 1,
      output_tokens: 1,
      est_cost_usd: 0.012,
      api_retries: 0,
      last_api_error: null,
      last_event_at: t(9),
    };
    expect(decide(state, { now: new Date(t(10)), identity: alive }).stop).toEqual([]);
    state.budget.on_budget = 'stop';
    const decision = decide(state, { now: new Date(t(10)), identity: alive });
    expect(decision.stop).toEqual([{ name: 'r0', reason: 'budget: $0.0620 of $0.0600 spent (--on_budget stop)' }]);
    const applied = tx(state, 10);
    expect(applyBudgetStops(applied.tx, state, decision)).toEqual(['r0']);
    expect(state.tasks.r0).toMatchObject({ status: 'cancelled', error: 'budget: $0.0620 of $0.0600 spent (--on_budget stop)' });
  });

  it("an agent's share is the budget less what is spent and what the other running agents are expected to cost", () => {
    const state = budgeted(0.06, 3, 2, 0);
    // 0.06 - 3 spent - 1 other running at the reserve (0.01) = 0.02.
    expect(agentBudgetShare(state, 'r0')).toBeCloseTo(0.02, 9);
    expect(agentBudgetShare(session(2, { a: {} }), 'a')).toBeNull();
    expect(budgetPicture(state)).toMatchObject({ budgetUsd: 0.06 });
  });

  it('the claude argv gets --max-budget-usd = min(own cap, share less earlier tries), replacing every other one', () => {
    const base = ['-p', '--output-format', 'stream-json', '--verbose'];
    expect(withBudgetCap([...base, '--model', 'm'], 0.05, 0)).toEqual([...base, '--max-budget-usd', '0.05', '--model', 'm']);
    expect(withBudgetCap([...base, '--max-budget-usd', '0.02'], 0.05, 0)).toEqual([...base, '--max-budget-usd', '0.02']);
    expect(withBudgetCap([...base, '--max-budget-usd', '0.5', '--', '--max-budget-usd=0.9'], 0.05, 0.01)).toEqual([
      ...base,
      '--max-budget-usd',
      '0.04',
      '--',
    ]);
    expect(withBudgetCap([...base, '--max-budget-usd', '0.5'], null, 0)).toEqual([...base, '--max-budget-usd', '0.5']);
  });
});

describe('what the board, the events and the report show', () => {
  it('the board header says the session is rate limited and since when; the budget beside the cost', () => {
    const state = session(5, {
      a: { status: 'running', pid: 100, heartbeat_at: t(9), started_at: t(1) },
      b: { status: 'running', pid: 100, heartbeat_at: t(9), started_at: t(1) },
      c: {},
    });
    noteRateLimit(tx(state, 7).tx, state, rateLimit);
    state.budget.usd = 0.4;
    const view = buildStatusView(state, { now: Date.parse(t(10)) });
    const header = renderBoard(view, { width: 160, height: 20 }).split('\n')[0]!;
    expect(header).toContain('workers 2/5 (rate limited to 2, since 10:00:07)');
    expect(header).toContain('$0.0000 of $0.4000 budget');
  });

  it('capacity and budget events read as lines', () => {
    const base = { ts: t(5), session_id: 's' };
    expect(
      formatEventLine(
        { ...base, type: 'capacity', old_limit: 8, new_limit: 4, max_workers: 8, why: 'HTTP 429 rate_limit seen by a: limit halved' },
        { sessionStart: t(0) },
      ),
    ).toBe('[00:05] ⚙️ worker limit 8 → 4 of 8: HTTP 429 rate_limit seen by a: limit halved');
    expect(formatEventLine({ ...base, type: 'budget', error: 'budget: $0.4200 of $0.4000 spent' }, { sessionStart: t(0) })).toBe(
      '[00:05] 💰 budget reached: budget: $0.4200 of $0.4000 spent',
    );
  });

  it('the report (aggregate --json, poll-session --json) carries the capacity object and budget, spent and overshoot', () => {
    const state = session(8, { a: { status: 'completed', cost_usd: 0.25 }, b: { status: 'completed', cost_usd: 0.2 } });
    state.budget.usd = 0.4;
    noteRateLimit(tx(state, 3).tx, state, rateLimit);
    const data = buildReportData(state, { now: Date.parse(t(10)) });
    expect(data.capacity).toMatchObject({ adaptive: true, limit: 4, effective_limit: 4, hits: 1, rate_limited_since: t(3) });
    expect(data.budget).toEqual({ usd: 0.4, on_budget: 'finish', spent_usd: 0.45, overshoot_usd: 0.05, reached_at: null });
    const text = renderSummary(data, { variant: 'block' });
    expect(text).toContain('Budget: $0.4000, spent $0.4500, overshoot $0.0500 (--on_budget finish)');
    expect(text).toContain('Rate limits: 1 seen by the agents; worker limit now 4 of 8 (adaptive)');
  });
});

describe('the poll-session slice line', () => {
  it('says the session is rate limited while the adaptive limit is below max_workers', () => {
    const state = session(8, { a: { status: 'running', pid: 100, heartbeat_at: t(9), started_at: t(1) } });
    const line = () =>
      renderSummary(buildReportData(state, { now: Date.parse(t(10)) }), {
        variant: 'poll',
        outcome: 'active',
        now: Date.parse(t(10)),
        exitCode: 3,
        nextCommand: 'aggregate',
      });
    expect(line()).not.toContain('rate limited');
    noteRateLimit(tx(state, 5).tx, state, rateLimit);
    expect(line()).toMatch(/^\[poll\] 0\/1 completed, 1 running, 0 waiting, 0 failed; rate limited: at most 4 of 8 workers; /);
  });
});

describe('the flags', () => {
  it.each([
    [['--adaptive', 'maybe'], /--adaptive/],
    [['--budget_usd', '-1'], /--budget_usd/],
    [['--budget_usd', 'lots'], /--budget_usd/],
    [['--on_budget', 'panic'], /--on_budget/],
  ])('spawn-agent-mock refuses %j with exit 2, a message naming the flag, and no session written', async (flags, pattern) => {
    const project = await tempProject();
    const result = await run('spawn-agent-mock', ['--task_name', 'a', '--goal', 'g', ...flags], project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(pattern);
    expect(await project.state()).toBeNull();
  });

  it('--adaptive off, --budget_usd and --on_budget are kept in the session; a later agent without them keeps them', async () => {
    const project = await tempProject();
    const first = await run(
      'spawn-agent-mock',
      ['--task_name', 'a', '--goal', 'g', '--delay_ms', '10', '--adaptive', 'off', '--budget_usd', '2.5', '--on_budget', 'stop'],
      project.dir,
    );
    expect(first.exitCode).toBe(0);
    expect(await run('spawn-agent-mock', ['--task_name', 'b', '--goal', 'g', '--delay_ms', '10'], project.dir)).toMatchObject({
      exitCode: 0,
    });
    const state = (await project.state())!;
    expect(state.capacity.adaptive).toBe(false);
    expect(state.budget).toMatchObject({ usd: 2.5, on_budget: 'stop' });
  });
});

describe('orchestrate flags', () => {
  it('refuses a bad --budget_usd before anything starts, also with --detach', async () => {
    const project = await tempProject();
    await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - id: a\n    goal: g\n');
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--detach', '--budget_usd', '0'], project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/--budget_usd/);
    expect(await project.state()).toBeNull();
  });

  it('a plan run with --budget_usd and --adaptive off records them in its session', async () => {
    const project = await tempProject();
    await writeFile(path.join(project.dir, 'plan.yaml'), 'tasks:\n  - id: a\n    goal: g\n    delay_ms: 10\n');
    const result = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--budget_usd', '3', '--adaptive', 'off'], project.dir);
    expect(result.exitCode, result.all).toBe(0);
    expect((await project.state())!).toMatchObject({ budget: { usd: 3, on_budget: 'finish' }, capacity: { adaptive: false } });
  });
});
