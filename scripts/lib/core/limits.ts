// Limits every floor shares: the longest delay a timer can hold.

/**
 * The longest delay a timer can hold (ms): 2^31 - 1, about 24.8 days. Node's `setTimeout` turns a
 * longer delay into 1 ms (with a TimeoutOverflowWarning), so a bigger duration would fire at once;
 * every duration read from a flag, a plan or the state is bounded by it.
 * Source: Node.js docs, timers, `setTimeout` ("When delay is larger than 2147483647 ... set to 1").
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
