// Reading `claude -p --output-format stream-json --verbose` as it comes: turns, last tool, tokens, an estimated cost, API retries, the Claude session id.
import { estimateCostUsd, type TokenUsage } from './price-table.ts';
import type { ReceiptSummary } from '../verification/receipts.ts';

/**
 * What an agent has done so far, from its event stream (the task's `live` field; see schema.ts).
 * Token counts are the API's: `input_tokens` excludes cache reads and writes.
 */
export interface LiveProgress {
  /** Assistant messages so far (distinct `message.id`s; the result's `num_turns` at the end). */
  turns: number;
  /** Name of the last tool the agent called (`Bash`, `Edit`, ...), or null. */
  last_tool: string | null;
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  /**
   * US dollars: estimated from usage and the price table (price-table.ts) while the run goes on;
   * the result's `total_cost_usd` once it ended. Null while any model used has no known price.
   */
  est_cost_usd: number | null;
  /** `system/api_retry` events seen (the CLI's own retries of an API call). */
  api_retries: number;
  /** The last retry's reason, e.g. `429 rate_limit` or `connection`, or null. */
  last_api_error: string | null;
  /** When the last line was read (ISO time). */
  last_event_at: string;
  /** The receipts so far, over every attempt (task field `receipts`), when the runner collects them. */
  receipts?: ReceiptSummary;
}

/**
 * A rate limit read from the stream: a `system/api_retry` with HTTP 429/529 or error
 * `rate_limit`/`overloaded` (its `retry_delay_ms` gives the reset time), or a `rate_limit_event`
 * whose status is `rejected` (its `resetsAt`, seconds or ms since the epoch or an ISO time).
 */
export interface StreamRateLimit {
  status: number | null;
  error: string | null;
  /** When the limit is known to reset, or null. */
  resetAt: Date | null;
}

/** Loose views of the stream's lines: only the fields read here, each checked before use. */
type Line = Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;
}

function tokens(usage: unknown): TokenUsage {
  const u = isRecord(usage) ? usage : {};
  return {
    input_tokens: count(u.input_tokens),
    output_tokens: count(u.output_tokens),
    cache_creation_input_tokens: count(u.cache_creation_input_tokens),
    cache_read_input_tokens: count(u.cache_read_input_tokens),
  };
}

/**
 * Follows one run's stream-json output, line by line (see references/cli-integration.md,
 * "Streaming events"; observed on Claude Code 2.1.330). Usage of consecutive `assistant` lines can
 * share a `message.id` and is not final there: per id the last usage counts, never the sum. The
 * `result` line's `total_cost_usd`, `usage` and `num_turns` replace the running figures. Lines that
 * are not JSON objects (a warning, a stray print) are ignored: they still count as output.
 */
export class StreamTracker {
  #messages = new Map<string, { model: string | null; usage: TokenUsage }>();
  #anonymous = 0;
  #lastTool: string | null = null;
  #retries = 0;
  #lastApiError: string | null = null;
  #lastEventAt: Date;
  #sessionId: string | null = null;
  #final: { turns: number | null; cost: number | null; usage: TokenUsage | null } | null = null;
  #rateLimits: StreamRateLimit[] = [];
  readonly #now: () => Date;
  readonly #receipts: { take(line: Line): boolean } | null;

  /**
   * @param now - clock, for tests.
   * @param receipts - also given every parsed line (claude-receipts.ts `ReceiptCollector`), so each line is parsed once.
   */
  constructor(now: () => Date = () => new Date(), receipts: { take(line: Line): boolean } | null = null) {
    this.#now = now;
    this.#lastEventAt = now();
    this.#receipts = receipts;
  }

  /** The Claude session id (`system/init`, or any line's `session_id`), for `--resume`; null until seen. */
  get sessionId(): string | null {
    return this.#sessionId;
  }

  /** The rate limits read since the last call (see {@link StreamRateLimit}), oldest first; the list is emptied. */
  takeRateLimits(): StreamRateLimit[] {
    const taken = this.#rateLimits;
    this.#rateLimits = [];
    return taken;
  }

  /** True once a `result` line was read. */
  get ended(): boolean {
    return this.#final !== null;
  }

  /**
   * Reads one output line.
   * @returns true when the line changed the progress (a message, a tool call, a retry, the result).
   */
  push(text: string): boolean {
    this.#lastEventAt = this.#now();
    let line: unknown;
    try {
      line = JSON.parse(text);
    } catch {
      return false;
    }
    if (!isRecord(line)) return false;
    if (typeof line.session_id === 'string' && line.session_id !== '' && this.#sessionId === null) this.#sessionId = line.session_id;
    const changed = this.#read(line);
    return this.#receipts ? this.#receipts.take(line) || changed : changed;
  }

  #read(line: Line): boolean {
    switch (line.type) {
      case 'assistant':
        return this.#assistant(line);
      case 'system':
        if (line.subtype === 'api_retry') {
          this.#retries++;
          const status = typeof line.error_status === 'number' ? line.error_status : null;
          const error = typeof line.error === 'string' ? line.error : null;
          this.#lastApiError = [status === null ? null : String(status), error].filter(Boolean).join(' ') || 'unknown';
          if (status === 429 || status === 529 || error === 'rate_limit' || error === 'overloaded') {
            const delay = typeof line.retry_delay_ms === 'number' && line.retry_delay_ms > 0 ? line.retry_delay_ms : null;
            this.#rateLimits.push({ status, error, resetAt: delay === null ? null : new Date(this.#now().getTime() + delay) });
          }
          return true;
        }
        return false;
      case 'rate_limit_event': {
        const info = isRecord(line.rate_limit_info) ? line.rate_limit_info : line;
        if (info.status !== 'rejected') return false;
        this.#rateLimits.push({ status: 429, error: 'rate_limit', resetAt: resetTime(info.resetsAt) });
        return true;
      }
      case 'tool_progress':
        if (typeof line.tool_name === 'string' && line.tool_name !== '') this.#lastTool = line.tool_name;
        return false;
      case 'result': {
        const usage = isRecord(line.usage) ? tokens(line.usage) : null;
        const cost = typeof line.total_cost_usd === 'number' && line.total_cost_usd >= 0 ? line.total_cost_usd : null;
        const turns = typeof line.num_turns === 'number' && line.num_turns >= 0 ? line.num_turns : null;
        this.#final = { turns, cost, usage };
        return true;
      }
      default:
        return false;
    }
  }

  #assistant(line: Line): boolean {
    const message = isRecord(line.message) ? line.message : {};
    const id = typeof message.id === 'string' && message.id !== '' ? message.id : `#${++this.#anonymous}`;
    const model = typeof message.model === 'string' ? message.model : null;
    this.#messages.set(id, { model, usage: tokens(message.usage) });
    if (Array.isArray(message.content)) {
      for (const block of message.content) {
        if (isRecord(block) && block.type === 'tool_use' && typeof block.name === 'string' && block.name !== '')
          this.#lastTool = block.name;
      }
    }
    return true;
  }

  /** The progress so far (a fresh object). */
  progress(): LiveProgress {
    const sum: TokenUsage = { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
    let cost: number | null = 0;
    for (const { model, usage } of this.#messages.values()) {
      sum.input_tokens += usage.input_tokens;
      sum.output_tokens += usage.output_tokens;
      sum.cache_creation_input_tokens += usage.cache_creation_input_tokens;
      sum.cache_read_input_tokens += usage.cache_read_input_tokens;
      const one = estimateCostUsd(model, usage);
      cost = cost === null || one === null ? null : cost + one;
    }
    const final = this.#final;
    const totals = final?.usage ?? sum;
    return {
      turns: final?.turns ?? this.#messages.size,
      last_tool: this.#lastTool,
      ...totals,
      est_cost_usd: roundUsd(final?.cost ?? cost),
      api_retries: this.#retries,
      last_api_error: this.#lastApiError,
      last_event_at: this.#lastEventAt.toISOString(),
    };
  }
}

/** A `resetsAt`: seconds (below 1e12) or ms since the epoch, or an ISO time; null when absent or not a time. */
function resetTime(value: unknown): Date | null {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return new Date(value < 1e12 ? value * 1000 : value);
  if (typeof value === 'string' && value !== '') {
    const at = Date.parse(value);
    return Number.isNaN(at) ? null : new Date(at);
  }
  return null;
}

/** Dollars rounded to 1e-6 (a millionth of a dollar), null kept. */
function roundUsd(value: number | null): number | null {
  return value === null ? null : Math.round(value * 1e6) / 1e6;
}

/**
 * Splits a byte stream into lines as it arrives: `push(chunk)` calls `onLine` for every complete
 * line (without the newline, `\r` dropped, blank lines skipped); `end()` delivers a last line without a newline.
 *
 * Linear in the stream's length, however long a line is: only the new chunk is searched for a newline, and the
 * pieces of an unfinished line are kept apart and joined once, when its newline comes. (Appending each chunk to
 * one string and searching it again copied the whole pending line per chunk: a 50 MB result line in 64 KB
 * chunks took minutes.)
 */
export function lineSplitter(onLine: (line: string) => void): { push(chunk: string): void; end(): void } {
  /** The pieces of the line not finished yet. */
  let pieces: string[] = [];
  const deliver = (line: string) => {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (text.trim() !== '') onLine(text);
  };
  return {
    push(chunk) {
      let from = 0;
      for (let at = chunk.indexOf('\n'); at !== -1; at = chunk.indexOf('\n', from)) {
        const tail = chunk.slice(from, at);
        if (pieces.length === 0) deliver(tail);
        else {
          pieces.push(tail);
          const line = pieces.join('');
          pieces = [];
          deliver(line);
        }
        from = at + 1;
      }
      if (from < chunk.length) pieces.push(chunk.slice(from));
    },
    end() {
      const line = pieces.join('');
      pieces = [];
      deliver(line);
    },
  };
}
