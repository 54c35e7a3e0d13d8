// Exponential backoff with full jitter: how long to wait before the next try of a transient failure.

/** Default base of the backoff (ms): the first retry waits up to this long. */
export const DEFAULT_BACKOFF_BASE_MS = 5000;

/** Longest wait before one retry, whatever the base and the retry number (ms): 5 minutes. */
export const BACKOFF_CAP_MS = 5 * 60_000;

/**
 * The delay before retry number `retry` (1 for the first retry), with "full jitter":
 *
 *     delay = random() * min(capMs, baseMs * 2 ** (retry - 1))
 *
 * Spreading retries uniformly over the whole window keeps many agents that hit the same rate limit
 * at the same moment from retrying in lockstep. Formula from Marc Brooker, "Exponential Backoff And
 * Jitter", AWS Architecture Blog, 2015 (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
 *
 * @param retry - 1-based retry number (the try that failed was try number `retry`).
 * @param baseMs - window of the first retry (ms); 0 retries at once.
 * @param capMs - largest window (ms). @default {@link BACKOFF_CAP_MS}
 * @param random - a source of numbers in [0, 1). @default Math.random
 * @returns a whole number of milliseconds in [0, min(capMs, baseMs * 2 ** (retry - 1))].
 * @example backoffDelay(3, 1000, BACKOFF_CAP_MS, () => 0.5) // 2000 (half of the 4000 ms window)
 */
export function backoffDelay(retry: number, baseMs: number, capMs = BACKOFF_CAP_MS, random: () => number = Math.random): number {
  const window = Math.min(capMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(random() * window);
}
