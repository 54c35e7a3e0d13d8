// The rate-limit-adaptive worker limit (AIMD) of a session: halved when an agent hits a 429/529, grown back by 1 after a quiet period with completions.
import type { SessionState } from '../state/model.ts';
import type { StateTransaction } from '../state/state-store.ts';
import { MAX_TIMER_MS } from '../state/model.ts';

/**
 * Environment variables read when a session is created (openSession), so tests and impatient users
 * can shorten the quiet period and the decrease window: `DTO_CAPACITY_QUIET_MS`, `DTO_CAPACITY_WINDOW_MS`
 * (whole milliseconds, 0 .. 2^31-1). Kept in the session (`capacity.quiet_ms`, `capacity.window_ms`).
 */
export const CAPACITY_ENV = { quietMs: 'DTO_CAPACITY_QUIET_MS', windowMs: 'DTO_CAPACITY_WINDOW_MS' } as const;

/** Longest launch pause a reported reset time may cause (ms): 6 hours; a later reset time is capped to it. */
export const MAX_PAUSE_MS = 6 * 3600_000;

/** A rate limit an agent saw. */
export interface RateLimitSignal {
  /** HTTP status (429 rate limited, 529 overloaded), or null when only the error kind is known. */
  status: number | null;
  /** The CLI's error kind (`rate_limit`, `overloaded`, ...), or null. */
  error: string | null;
  /** When the limit is known to reset (retry-after, `resetsAt`), or null. */
  resetAt: Date | null;
  /** Which task saw it, for the event. */
  task?: string;
}

/**
 * Whether a `system/api_retry` (or a failed result) is a rate limit in the sense of the AIMD rule:
 * HTTP 429 or 529, or the CLI's error kind `rate_limit` / `overloaded`.
 * Source: references/cli-integration.md, "Streaming events" (fields `error_status`, `error`).
 */
export function isRateLimit(status: number | null | undefined, error: string | null | undefined): boolean {
  return status === 429 || status === 529 || error === 'rate_limit' || error === 'overloaded';
}

/**
 * The session's effective worker limit for NEW starts: `max_workers`, or the lowered `capacity.limit`
 * while adaptation is on. Running agents are never stopped by it.
 * @returns a whole number in [1, max_workers].
 */
export function effectiveLimit(state: SessionState): number {
  const { capacity } = state;
  if (!capacity.adaptive || capacity.limit === null) return state.max_workers;
  return Math.max(1, Math.min(capacity.limit, state.max_workers));
}

/** True while new starts wait for a known reset time (`capacity.pause_until` in the future). */
export function launchesPaused(state: SessionState, now: Date): boolean {
  const until = state.capacity.pause_until;
  return state.capacity.adaptive && until !== null && Date.parse(until) > now.getTime();
}

/** Reads a whole number of ms from the environment, or undefined when unset; a bad value is ignored. */
function envMs(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '' || !/^\d+$/.test(raw.trim())) return undefined;
  const value = Number(raw);
  return value <= MAX_TIMER_MS ? value : undefined;
}

/**
 * Sets a session's adaptation settings: `adaptive` when given (kept once set, like `max_workers`);
 * for a new session the quiet period and decrease window from {@link CAPACITY_ENV} when set.
 * Turning adaptation off resets the limit to `max_workers` and lifts any pause.
 */
export function configureCapacity(
  state: SessionState,
  options: { adaptive?: boolean; fresh: boolean },
  env: NodeJS.ProcessEnv = process.env,
): void {
  const { capacity } = state;
  if (options.fresh) {
    capacity.quiet_ms = envMs(env, CAPACITY_ENV.quietMs) ?? capacity.quiet_ms;
    capacity.window_ms = envMs(env, CAPACITY_ENV.windowMs) ?? capacity.window_ms;
  }
  if (options.adaptive === undefined) return;
  capacity.adaptive = options.adaptive;
  if (!options.adaptive) {
    capacity.limit = null;
    capacity.pause_until = null;
    capacity.rate_limited_since = null;
  }
}

/**
 * Records a rate limit seen by an agent, inside a state transaction (the multiplicative decrease).
 *
 * - The limit halves (rounded down, at least 1), unless it was lowered less than `window_ms` ago:
 *   several agents reporting the same burst lower it once, not down to 1 at once.
 * - A known reset time in the future (at most {@link MAX_PAUSE_MS} ahead) pauses new starts until
 *   then (`pause_until`, never moved earlier).
 * - Every report counts in `hits` and restarts the quiet period (`last_hit_at`).
 *
 * With adaptation off only `hits` is counted. Emits a `capacity` event (old, new, why) when the
 * limit or the pause changed.
 * @returns true when the limit or the pause changed.
 */
export function noteRateLimit(tx: StateTransaction, state: SessionState, signal: RateLimitSignal): boolean {
  const { capacity } = state;
  const now = tx.now;
  capacity.hits += 1;
  if (!capacity.adaptive) return false;
  capacity.last_hit_at = now.toISOString();
  const old = effectiveLimit(state);
  const what = [signal.status === null ? null : `HTTP ${signal.status}`, signal.error].filter(Boolean).join(' ') || 'rate limit';
  const reasons: string[] = [];
  const lastDecrease = capacity.last_decrease_at === null ? null : Date.parse(capacity.last_decrease_at);
  const inWindow = lastDecrease !== null && capacity.limit !== null && now.getTime() - lastDecrease < capacity.window_ms;
  let next = old;
  if (!inWindow) {
    next = Math.max(1, Math.floor(old / 2));
    capacity.limit = next;
    capacity.rate_limited_since ??= now.toISOString();
    capacity.last_decrease_at = now.toISOString();
    if (next !== old) {
      capacity.last_change_at = now.toISOString();
      reasons.push(`${what}${signal.task ? ` seen by ${signal.task}` : ''}: limit halved`);
    }
  }
  let pause: string | null = null;
  if (signal.resetAt !== null) {
    const until = Math.min(signal.resetAt.getTime(), now.getTime() + MAX_PAUSE_MS);
    const current = capacity.pause_until === null ? 0 : Date.parse(capacity.pause_until);
    if (until > now.getTime() && until > current) {
      capacity.pause_until = new Date(until).toISOString();
      pause = capacity.pause_until;
      reasons.push(`new starts paused until ${pause} (reset time reported)`);
    }
  }
  if (next === old && pause === null) return false;
  tx.emit('capacity', {
    task: signal.task,
    old_limit: old,
    new_limit: next,
    max_workers: state.max_workers,
    pause_until: capacity.pause_until,
    why: reasons.join('; '),
  });
  return true;
}

/**
 * The additive increase, at a task's completion inside the transaction that records it: once no
 * rate limit was seen for `quiet_ms` (since the last report and the last change), a lowered limit
 * grows by 1; back at `max_workers` it is cleared (`limit: null`, no longer rate limited).
 * Emits a `capacity` event when it grew. @returns true when it grew.
 */
export function noteCompletion(tx: StateTransaction, state: SessionState): boolean {
  const { capacity } = state;
  if (!capacity.adaptive || capacity.limit === null) return false;
  const now = tx.now.getTime();
  const since = Math.max(
    capacity.last_hit_at === null ? 0 : Date.parse(capacity.last_hit_at),
    capacity.last_change_at === null ? 0 : Date.parse(capacity.last_change_at),
  );
  if (now - since < capacity.quiet_ms) return false;
  const old = effectiveLimit(state);
  const next = old + 1;
  if (next >= state.max_workers) {
    capacity.limit = null;
    capacity.rate_limited_since = null;
  } else {
    capacity.limit = next;
  }
  capacity.last_change_at = tx.now.toISOString();
  tx.emit('capacity', {
    old_limit: old,
    new_limit: Math.min(next, state.max_workers),
    max_workers: state.max_workers,
    pause_until: capacity.pause_until,
    why: `no rate limit for ${Math.round((now - since) / 1000)} s and a task completed: limit grown by 1`,
  });
  return true;
}

/**
 * Whether a task of this session that is `retrying` may start its next try now: new tries obey the
 * effective limit and the pause like new starts, counting the agents `running` (the retrying ones
 * hold their slots meanwhile, so no new task takes them). Used by an agent after its backoff.
 */
export function retryMayStart(state: SessionState, now: Date): boolean {
  if (launchesPaused(state, now)) return false;
  const running = Object.values(state.tasks).filter((task) => task.status === 'running').length;
  return running < effectiveLimit(state);
}

/** The board's words for the limit: `workers 2/5 (rate limited, since 12:01:07)` (`busy` tasks hold slots). */
export function capacityLabel(state: SessionState, busy: number, now: Date = new Date()): string {
  const limit = effectiveLimit(state);
  const notes: string[] = [];
  const { capacity } = state;
  if (capacity.adaptive && capacity.limit !== null && capacity.rate_limited_since !== null) {
    notes.push(`rate limited${limit < state.max_workers ? ` to ${limit}` : ''}, since ${capacity.rate_limited_since.slice(11, 19)}`);
  }
  if (launchesPaused(state, now)) notes.push(`new starts paused until ${capacity.pause_until!.slice(11, 19)}`);
  return `workers ${busy}/${state.max_workers}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`;
}
