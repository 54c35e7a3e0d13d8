// Reading claude's stream-json output: progress figures (turns, last tool, tokens, estimated cost, API retries), the price table, line splitting, the live task field.
import { describe, expect, it } from 'vitest';
import { lineSplitter, StreamTracker } from '../../scripts/lib/agents/claude-stream.ts';
import { applyLiveProgress } from '../../scripts/lib/agents/live-progress.ts';
import { estimateCostUsd, priceOf } from '../../scripts/lib/agents/price-table.ts';
import { SessionStateSchema, STATE_VERSION } from '../../scripts/lib/state/schema.ts';
import { getTask } from '../../scripts/lib/state/model.ts';
import { resolveSessionPaths } from '../../scripts/lib/state/session-paths.ts';
import { createSessionState, readState, updateState, type StateTransaction } from '../../scripts/lib/state/state-store.ts';
import { TaskRecordSchema } from '../../scripts/lib/state/schema.ts';
import { tempDir } from '../support/claude-fixtures.ts';

const T0 = new Date('2026-11-30T12:00:00.000Z');

function assistant(id: string, model: string, usage: Record<string, number>, content: unknown[] = [{ type: 'text', text: 'x' }]) {
  return JSON.stringify({ type: 'assistant', message: { id, model, role: 'assistant', content, usage }, session_id: 'sess-1' });
}

const usage = (input: number, output: number, write = 0, read = 0) => ({
  input_tokens: input,
  output_tokens: output,
  cache_creation_input_tokens: write,
  cache_read_input_tokens: read,
});

describe('StreamTracker', () => {
  it('usage of lines sharing a message id is taken once (the last), not summed per line', () => {
    const tracker = new StreamTracker(() => T0);
    tracker.push(assistant('msg_1', 'claude-sonnet-4-5-20250929', usage(1000, 1)));
    tracker.push(
      assistant('msg_1', 'claude-sonnet-4-5-20250929', usage(1000, 100), [{ type: 'tool_use', id: 't1', name: 'Read', input: {} }]),
    );
    tracker.push(assistant('msg_2', 'claude-sonnet-4-5-20250929', usage(2000, 200, 400, 1000)));
    const progress = tracker.progress();
    expect(progress).toMatchObject({
      turns: 2,
      last_tool: 'Read',
      input_tokens: 3000,
      output_tokens: 300,
      cache_creation_input_tokens: 400,
      cache_read_input_tokens: 1000,
    });
    // Sonnet 4.5: $3 in, $15 out, $3.75 cache write, $0.30 cache read per MTok.
    const expected = (3000 * 3 + 300 * 15 + 400 * 3.75 + 1000 * 0.3) / 1e6;
    expect(progress.est_cost_usd).toBeCloseTo(expected, 9);
  });

  it('the session id comes from system/init; api_retry lines are counted with the last reason', () => {
    const tracker = new StreamTracker(() => T0);
    expect(tracker.sessionId).toBeNull();
    tracker.push(JSON.stringify({ type: 'system', subtype: 'init', session_id: 'abc-123', model: 'claude-opus-4-5' }));
    expect(tracker.sessionId).toBe('abc-123');
    tracker.push(
      JSON.stringify({
        type: 'system',
        subtype: 'api_retry',
        attempt: 1,
        max_retries: 10,
        retry_delay_ms: 500,
        error_status: 529,
        error: 'overloaded',
      }),
    );
    tracker.push(
      JSON.stringify({
        type: 'system',
        subtype: 'api_retry',
        attempt: 2,
        max_retries: 10,
        retry_delay_ms: 900,
        error_status: null,
        error: 'connection',
      }),
    );
    expect(tracker.progress()).toMatchObject({ api_retries: 2, last_api_error: 'connection', turns: 0, est_cost_usd: 0 });
  });

  it('a model without a known price gives no estimate (null), never a guess', () => {
    const tracker = new StreamTracker(() => T0);
    tracker.push(assistant('m1', 'claude-sonnet-4-5', usage(10, 10)));
    tracker.push(assistant('m2', 'claude-stub', usage(10, 10)));
    expect(tracker.progress().est_cost_usd).toBeNull();
  });

  it("the result's total_cost_usd, usage and num_turns replace the running figures", () => {
    const tracker = new StreamTracker(() => T0);
    tracker.push(assistant('m1', 'claude-haiku-4-5', usage(10, 10)));
    expect(tracker.ended).toBe(false);
    tracker.push(
      JSON.stringify({
        type: 'result',
        subtype: 'success',
        is_error: false,
        num_turns: 4,
        total_cost_usd: 0.75,
        usage: usage(500, 60),
        session_id: 's',
      }),
    );
    expect(tracker.ended).toBe(true);
    expect(tracker.progress()).toMatchObject({ turns: 4, est_cost_usd: 0.75, input_tokens: 500, output_tokens: 60 });
  });

  it('lines that are not JSON objects change nothing but still count as output (last_event_at)', () => {
    let now = T0;
    const tracker = new StreamTracker(() => now);
    now = new Date(T0.getTime() + 5000);
    expect(tracker.push('warning: something')).toBe(false);
    expect(tracker.push('[1,2]')).toBe(false);
    expect(tracker.push('{"type":"assistant","message":"not an object"}')).toBe(true);
    expect(tracker.progress()).toMatchObject({ turns: 1, input_tokens: 0, last_event_at: '2026-11-30T12:00:05.000Z' });
  });
});

describe('price table', () => {
  it.each([
    ['claude-sonnet-4-5-20250929', 3],
    ['claude-opus-4-5-20251101', 5],
    ['claude-opus-4-20250514', 15],
    ['claude-opus-4-1', 15],
    ['claude-haiku-4-5', 1],
    ['claude-3-5-haiku-20241022', 0.8],
    ['us.anthropic.claude-sonnet-4-5-20250929-v1:0', 3],
    ['claude-sonnet-4-5@20250929', 3],
  ])('%s costs $%s per MTok of input', (model, input) => {
    expect(priceOf(model)?.input).toBe(input);
  });

  it.each(['sonnet', 'claude-stub', 'claude-opus-4-9', 'gpt-4o', ''])('%j has no price', (model) => {
    expect(priceOf(model)).toBeNull();
    expect(estimateCostUsd(model, usage(1, 1))).toBeNull();
  });
});

describe('lineSplitter', () => {
  it('delivers complete lines across chunk borders, drops \\r and empty lines, and the unterminated last line at the end', () => {
    const lines: string[] = [];
    const split = lineSplitter((line) => lines.push(line));
    split.push('{"a":');
    split.push('1}\r\n\n{"b"');
    expect(lines).toEqual(['{"a":1}']);
    split.push(':2}\nlast');
    split.end();
    expect(lines).toEqual(['{"a":1}', '{"b":2}', 'last']);
  });
  it('is linear in the length of one long line (a 50 MB result line once took minutes): 8x the line costs about 8x, not 64x', () => {
    /** Best of three runs of one line of `size` characters pushed in 64 KB chunks (as the CLI's stdout arrives); ms. */
    const cost = (size: number) => {
      const chunk = 'x'.repeat(64 * 1024);
      let best = Infinity;
      for (let run = 0; run < 3; run++) {
        let got = 0;
        const split = lineSplitter((line) => (got = line.length));
        const began = performance.now();
        for (let sent = 0; sent < size; sent += chunk.length) split.push(chunk);
        split.push('\n');
        best = Math.min(best, performance.now() - began);
        expect(got).toBe(Math.ceil(size / chunk.length) * chunk.length);
      }
      return best;
    };
    const small = cost(2 * 1024 * 1024);
    const large = cost(16 * 1024 * 1024);
    // Linear gives about 8, the old quadratic splitter about 64 (53 measured with the machine busy).
    expect(large / Math.max(small, 0.05)).toBeLessThan(24);
  });
});

describe('applyLiveProgress', () => {
  function stateWith(status: string) {
    return SessionStateSchema.parse({
      version: STATE_VERSION,
      session_id: '20261130-120000-live',
      created_at: T0.toISOString(),
      updated_at: T0.toISOString(),
      tasks: JSON.parse(
        JSON.stringify({ constructor: { agent: 'Agent-01', goal: 'g', status, runner: 'claude', registered_at: T0.toISOString() } }),
      ),
    });
  }
  const tx = { now: T0 } as unknown as StateTransaction;
  const progress = {
    ...new StreamTracker(() => T0).progress(),
    turns: 3,
    last_tool: 'Bash',
    input_tokens: 10,
    output_tokens: 2,
    est_cost_usd: 0.01,
  };

  it('sets the live field of an active task (a name like "constructor" included) and reports no change the second time', () => {
    const state = stateWith('running');
    expect(applyLiveProgress(tx, state, 'constructor', progress)).toBe(true);
    expect(getTask(state.tasks, 'constructor')!.live).toEqual({
      turns: 3,
      last_tool: 'Bash',
      input_tokens: 10,
      output_tokens: 2,
      est_cost_usd: 0.01,
      api_retries: 0,
      last_api_error: null,
      last_event_at: T0.toISOString(),
    });
    expect(applyLiveProgress(tx, state, 'constructor', progress)).toBe(false);
  });

  it('never writes on a task that ended, or one that does not exist', () => {
    const state = stateWith('completed');
    expect(applyLiveProgress(tx, state, 'constructor', progress)).toBe(false);
    expect(getTask(state.tasks, 'constructor')!.live).toBeNull();
    expect(applyLiveProgress(tx, state, 'toString', progress)).toBe(false);
  });

  it('a state file written before the live field existed still loads (live: null)', () => {
    expect(getTask(stateWith('running').tasks, 'constructor')!.live).toBeNull();
  });
});

describe('applyLiveProgress in a state transaction', () => {
  it('the live field is written to latest.yaml and read back; an unchanged report writes nothing', async () => {
    const paths = resolveSessionPaths({ cwd: await tempDir('dto-live-state-') });
    await updateState(paths, (tx) => {
      const state = createSessionState({ sessionId: '20261130-120000-live', now: T0 });
      state.tasks.job = TaskRecordSchema.parse({
        agent: 'Agent-01',
        goal: 'g',
        status: 'running',
        runner: 'claude',
        registered_at: T0.toISOString(),
      });
      tx.state = state;
    });
    const progress = {
      ...new StreamTracker(() => T0).progress(),
      turns: 2,
      last_tool: 'Edit',
      input_tokens: 50,
      output_tokens: 5,
      est_cost_usd: 0.002,
    };
    expect(await updateState(paths, (tx) => applyLiveProgress(tx, tx.state!, 'job', progress))).toBe(true);
    const written = await readState(paths);
    expect(getTask(written!.tasks, 'job')!.live).toMatchObject({ turns: 2, last_tool: 'Edit', est_cost_usd: 0.002 });
    expect(await updateState(paths, (tx) => applyLiveProgress(tx, tx.state!, 'job', progress))).toBe(false);
  });
});
