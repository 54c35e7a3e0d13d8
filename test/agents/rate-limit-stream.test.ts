// Rate limits read from the CLI's stream-json lines: which lines count as a 429/529 for the session's adaptive limit, and their reset times.
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { StreamTracker } from '../../scripts/lib/agents/claude-stream.ts';
import { createClaudeExecutor } from '../../scripts/lib/agents/claude-agent.ts';
import { fakeProject } from '../support/claude-fixtures.ts';
import { agentContext } from '../support/agent-context.ts';

const NOW = new Date('2026-12-01T12:00:00.000Z');
const line = (value: Record<string, unknown>) => JSON.stringify(value);

describe('rate limits in the event stream', () => {
  it('an api_retry for a 429 or 529 is a rate limit; its retry_delay_ms gives the reset time; other retries are not', () => {
    const tracker = new StreamTracker(() => NOW);
    const retry = { type: 'system', subtype: 'api_retry', attempt: 1, max_retries: 10 };
    tracker.push(line({ ...retry, error_status: 429, error: 'rate_limit', retry_delay_ms: 1000 }));
    tracker.push(line({ ...retry, error_status: 500, error: 'server_error', retry_delay_ms: 600 }));
    tracker.push(line({ ...retry, error_status: null, error: 'overloaded' }));
    tracker.push(line({ ...retry, error_status: null, error: 'unknown', retry_delay_ms: 600 }));
    expect(tracker.takeRateLimits()).toEqual([
      { status: 429, error: 'rate_limit', resetAt: new Date('2026-12-01T12:00:01.000Z') },
      { status: null, error: 'overloaded', resetAt: null },
    ]);
    // Taken once: the list is emptied; the retries are all counted in the live progress.
    expect(tracker.takeRateLimits()).toEqual([]);
    expect(tracker.progress().api_retries).toBe(4);
  });

  it('a rejected rate_limit_event is a rate limit until its resetsAt (seconds, ms or ISO); an allowed one is not', () => {
    const tracker = new StreamTracker(() => NOW);
    tracker.push(line({ type: 'rate_limit_event', rate_limit_info: { status: 'allowed', resetsAt: 1_900_000_000 } }));
    tracker.push(line({ type: 'rate_limit_event', rate_limit_info: { status: 'rejected', resetsAt: 1_800_000_000 } }));
    tracker.push(line({ type: 'rate_limit_event', status: 'rejected', resetsAt: '2026-12-01T13:00:00Z' }));
    tracker.push(line({ type: 'rate_limit_event', status: 'rejected', resetsAt: 'soon' }));
    expect(tracker.takeRateLimits()).toEqual([
      { status: 429, error: 'rate_limit', resetAt: new Date(1_800_000_000 * 1000) },
      { status: 429, error: 'rate_limit', resetAt: new Date('2026-12-01T13:00:00Z') },
      { status: 429, error: 'rate_limit', resetAt: null },
    ]);
  });
});

describe('the claude executor and the session', () => {
  it('a run that ends on a 429 is reported to the session once per try; the budget share goes to the CLI as --max-budget-usd', async () => {
    const p = await fakeProject('rate_limit_then_success');
    const env = { ...p.env, FAKE_CLAUDE_COUNTER: path.join(p.dir, 'counter'), FAKE_CLAUDE_FAILURES: '2' };
    const reports: Array<{ status: number | null; error: string | null }> = [];
    const executor = createClaudeExecutor({
      bin: 'claude',
      args: ['-p', '--output-format', 'stream-json', '--verbose', '--max-budget-usd', '5'],
      env,
      timeoutS: 60,
      retries: 3,
      backoffMs: 1,
    });
    const outcome = await executor(
      agentContext(p.dir, {
        taskName: 'r',
        reportRateLimit: async ({ status, error }) => void reports.push({ status, error }),
        budgetShareUsd: 0.25,
      }),
    );
    expect(outcome.status).toBe('completed');
    expect(reports).toEqual([
      { status: 429, error: 'rate_limit' },
      { status: 429, error: 'rate_limit' },
    ]);
    const calls = await p.calls();
    expect(calls).toHaveLength(3);
    for (const call of calls) {
      const at = call.argv.indexOf('--max-budget-usd');
      expect(call.argv[at + 1]).toBe('0.25');
      expect(call.argv.filter((arg) => arg === '--max-budget-usd')).toHaveLength(1);
    }
  });
});
