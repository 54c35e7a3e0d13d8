// Writing an agent's live progress (turns, last tool, tokens, estimated cost, API retries, receipts so far) into its task record.
import type { LiveProgress } from './claude-stream.ts';
import type { SessionState, TaskRecord } from '../state/model.ts';
import type { StateTransaction } from '../state/state-store.ts';

/** The task field `live` as stored (schema.ts `LiveProgressSchema`). */
export type LiveFields = NonNullable<TaskRecord['live']>;

/** The stored subset of a progress report. */
export function liveFields(progress: LiveProgress): LiveFields {
  return {
    turns: progress.turns,
    last_tool: progress.last_tool,
    input_tokens: progress.input_tokens,
    output_tokens: progress.output_tokens,
    est_cost_usd: progress.est_cost_usd,
    api_retries: progress.api_retries,
    last_api_error: progress.last_api_error,
    last_event_at: progress.last_event_at,
  };
}

/**
 * Sets task `name`'s `live` field (and `receipts`, when the progress carries them), inside a state transaction (`updateState`, or
 * `transitionOwnTask` so only the task's own agent writes it). Only an active task (`running` or
 * `retrying`) is changed: a late report never lands on a task that already ended or was cancelled.
 * Emits no event (the field is a hint that changes every few seconds; events.jsonl stays small).
 *
 * @param tx - the open transaction (unused but for symmetry with the other transitions; no event).
 * @param state - `tx.state`.
 * @returns true when the record changed (then the caller's transaction writes it), false when the
 *   task is unknown, not active, or the figures are the same.
 */
export function applyLiveProgress(_tx: StateTransaction, state: SessionState, name: string, progress: LiveProgress): boolean {
  const record = Object.hasOwn(state.tasks, name) ? state.tasks[name] : undefined;
  if (!record || (record.status !== 'running' && record.status !== 'retrying')) return false;
  const next = liveFields(progress);
  const before = record.live;
  const receipts = progress.receipts ?? record.receipts;
  const sameReceipts = JSON.stringify(receipts) === JSON.stringify(record.receipts);
  if (before && sameReceipts && (Object.keys(next) as Array<keyof LiveFields>).every((key) => before[key] === next[key])) return false;
  record.live = next;
  record.receipts = receipts;
  return true;
}
