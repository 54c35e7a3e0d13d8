// What a claude agent adds up over its tries: usage totals, live progress, rate-limit reports in order, and the state fields they fill.
import type { AgentContext } from './agent-types.ts';
import type { ClaudeUsage } from './claude-result.ts';
import type { LiveProgress, StreamRateLimit } from './claude-stream.ts';
import { errorMessage } from '../core/errors.ts';
import type { TaskRecord } from '../state/model.ts';

/**
 * Progress of all tries of one task: the tries that ended (their last figures) plus the current one.
 * Cost is null as soon as any try's is unknown.
 */
export function combineProgress(done: LiveProgress | null, current: LiveProgress): LiveProgress {
  if (!done) return current;
  return {
    ...current,
    turns: done.turns + current.turns,
    input_tokens: done.input_tokens + current.input_tokens,
    output_tokens: done.output_tokens + current.output_tokens,
    cache_creation_input_tokens: done.cache_creation_input_tokens + current.cache_creation_input_tokens,
    cache_read_input_tokens: done.cache_read_input_tokens + current.cache_read_input_tokens,
    est_cost_usd:
      done.est_cost_usd === null || current.est_cost_usd === null
        ? null
        : Math.round((done.est_cost_usd + current.est_cost_usd) * 1e6) / 1e6,
    api_retries: done.api_retries + current.api_retries,
    last_tool: current.last_tool ?? done.last_tool,
    last_api_error: current.last_api_error ?? done.last_api_error,
  };
}

/**
 * Calls `record` at most once per `intervalMs` (the first change at once, later ones after the
 * interval, the latest progress winning), never two calls at a time; `flush` records the last
 * progress now and waits for it. Failures go to `log`, never to the caller.
 */
export function throttled(
  record: ((progress: LiveProgress) => Promise<void>) | undefined,
  intervalMs: number,
  log: (line: string) => void,
) {
  let last = -Infinity;
  let timer: NodeJS.Timeout | undefined;
  let pending: LiveProgress | null = null;
  let chain: Promise<void> = Promise.resolve();
  const send = () => {
    clearTimeout(timer);
    timer = undefined;
    const progress = pending;
    pending = null;
    if (!progress || !record) return;
    last = Date.now();
    chain = chain.then(() => record(progress)).catch((error: unknown) => log(`progress not recorded: ${errorMessage(error)}`));
  };
  return {
    update(progress: LiveProgress) {
      if (!record) return;
      pending = progress;
      const wait = last + intervalMs - Date.now();
      if (wait <= 0) send();
      else timer ??= setTimeout(send, wait);
    },
    async flush(progress: LiveProgress) {
      pending = progress;
      send();
      await chain;
    },
  };
}

/**
 * Adds one try's usage to the running totals: cost (USD) and tokens are summed over tries; turns,
 * session id and denials are the last try's; models are collected.
 */
export function addUsage(totals: ClaudeUsage | null, usage: ClaudeUsage): ClaudeUsage {
  if (!totals) return usage;
  return {
    ...usage,
    cost_usd: Math.round((totals.cost_usd + usage.cost_usd) * 1e6) / 1e6,
    input_tokens: totals.input_tokens + usage.input_tokens,
    output_tokens: totals.output_tokens + usage.output_tokens,
    cache_creation_input_tokens: totals.cache_creation_input_tokens + usage.cache_creation_input_tokens,
    cache_read_input_tokens: totals.cache_read_input_tokens + usage.cache_read_input_tokens,
    models: [...new Set([...totals.models, ...usage.models])],
  };
}

/** The state-record fields of the totals (schema fields of real agents). */
export function recordFields(totals: ClaudeUsage | null): Partial<TaskRecord> {
  if (!totals) return {};
  const { cost_usd, input_tokens, output_tokens, num_turns, claude_session_id, permission_denials } = totals;
  return { cost_usd, input_tokens, output_tokens, num_turns, claude_session_id, permission_denials };
}

export function quote(text: string): string {
  return text
    .trim()
    .split('\n')
    .map((line) => `> ${line}`)
    .join('\n');
}

/**
 * Passes rate limits on to the session one at a time, in order (capacity.ts halves its limit); a
 * report that fails is only logged. `reported()` resolves once every report made so far is done.
 */
export function rateLimitReporter(ctx: AgentContext, log: (line: string) => void) {
  let reports: Promise<void> = Promise.resolve();
  return {
    report: (signal: StreamRateLimit) => {
      if (!ctx.reportRateLimit) return;
      reports = reports
        .then(() => ctx.reportRateLimit!(signal))
        .catch((error: unknown) => log(`[${ctx.agent}] ${ctx.taskName}: rate limit not recorded: ${errorMessage(error)}`));
    },
    reported: () => reports,
  };
}
