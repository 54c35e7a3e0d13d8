// Per-model API prices, to estimate an agent's cost while it runs (the CLI's own `total_cost_usd` replaces the estimate at the end).

/** Prices of one model in US dollars per million tokens (MTok). */
export interface ModelPrice {
  /** Base input tokens. */
  input: number;
  /** Output tokens. */
  output: number;
  /** Cache writes (the 5-minute cache, which Claude Code uses by default). */
  cacheWrite: number;
  /** Cache hits and refreshes. */
  cacheRead: number;
}

/**
 * Prices by model-id prefix, in $/MTok. Source: Anthropic, "Pricing", table "Model pricing"
 * (https://platform.claude.com/docs/en/about-claude/pricing), read 2026-11-30. Only models whose
 * four prices that table lists are here; any other model gets no estimate (null), never a guess.
 * Long-context, batch and 1-hour-cache rates are not applied (the estimate is a live hint; the
 * CLI's `total_cost_usd` is the figure kept).
 */
export const PRICE_TABLE: ReadonlyMap<string, ModelPrice> = new Map([
  ['claude-fable-5-1', { input: 10, output: 50, cacheWrite: 12.5, cacheRead: 0.25 }],
  ['claude-mythos-5-1', { input: 10, output: 50, cacheWrite: 12.5, cacheRead: 0.25 }],
  ['claude-fable-5', { input: 10, output: 50, cacheWrite: 12.5, cacheRead: 1 }],
  ['claude-mythos-5', { input: 10, output: 50, cacheWrite: 12.5, cacheRead: 1 }],
  ['claude-opus-5', { input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 }],
  ['claude-opus-4-8', { input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 }],
  ['claude-opus-4-7', { input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 }],
  ['claude-opus-4-6', { input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 }],
  ['claude-opus-4-5', { input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 }],
  ['claude-opus-4-1', { input: 15, output: 75, cacheWrite: 18.75, cacheRead: 1.5 }],
  ['claude-opus-4', { input: 15, output: 75, cacheWrite: 18.75, cacheRead: 1.5 }],
  ['claude-sonnet-4-6', { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 }],
  ['claude-sonnet-4-5', { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 }],
  ['claude-sonnet-4', { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 }],
  ['claude-3-7-sonnet', { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 }],
  ['claude-haiku-4-5', { input: 1, output: 5, cacheWrite: 1.25, cacheRead: 0.1 }],
  ['claude-3-5-haiku', { input: 0.8, output: 4, cacheWrite: 1, cacheRead: 0.08 }],
  ['claude-3-opus', { input: 15, output: 75, cacheWrite: 18.75, cacheRead: 1.5 }],
  ['claude-3-haiku', { input: 0.25, output: 1.25, cacheWrite: 0.3, cacheRead: 0.03 }],
]);

const SUFFIX = /^(?:-\d{8}|-latest|@\S*)?(?:-v\d+(?::\d+)?)?$/;

/**
 * The prices of a model id as the API reports it (`claude-sonnet-4-5-20250929`, `claude-opus-4-1`,
 * a Bedrock or Vertex id containing one of those): the longest table key the id starts with, after
 * dropping a provider prefix (`anthropic.`, `us.anthropic.`) and a `[1m]` suffix.
 * @returns the prices, or null for a model not in {@link PRICE_TABLE} (aliases such as `sonnet` included).
 */
export function priceOf(model: string | null | undefined): ModelPrice | null {
  if (!model) return null;
  const id = model
    .toLowerCase()
    .replace(/\[.*\]$/, '')
    .replace(/^(?:[a-z]{2,4}\.)?anthropic\./, '');
  let best: string | null = null;
  for (const key of PRICE_TABLE.keys()) {
    // What may follow the family: nothing, a date, `-latest`, a Vertex `@date` or a Bedrock `-v1:0`; never a version
    // number (`claude-opus-4-9` is not `claude-opus-4`).
    if (id.startsWith(key) && SUFFIX.test(id.slice(key.length)) && (best === null || key.length > best.length)) best = key;
  }
  return best === null ? null : PRICE_TABLE.get(best)!;
}

/** Token counts of one API call (the Messages API's `usage`). */
export interface TokenUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/**
 * Estimated cost of one call in US dollars: tokens x $/MTok of {@link priceOf}.
 * @returns dollars, or null when the model has no known price.
 */
export function estimateCostUsd(model: string | null | undefined, usage: TokenUsage): number | null {
  const price = priceOf(model);
  if (!price) return null;
  return (
    (usage.input_tokens * price.input +
      usage.output_tokens * price.output +
      usage.cache_creation_input_tokens * price.cacheWrite +
      usage.cache_read_input_tokens * price.cacheRead) /
    1e6
  );
}
