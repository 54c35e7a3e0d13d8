// The shape of an events.jsonl line, apart from the code that writes and reads them.

/** Kinds of events. Field names are stable: see `references/workflow.md`. */
export type EventType =
  | 'session_started'
  | 'session_archived'
  | 'registered'
  | 'waiting'
  | 'started'
  | 'retrying'
  | 'completed'
  | 'failed'
  | 'skipped'
  | 'cancelled'
  /** An isolated task's work did not merge (scripts/lib/isolation/): conflicting paths or the gate's output in `error`. */
  | 'merge_failed'
  | 'replaced'
  /** The session's effective worker limit changed (scheduling/capacity.ts): old, new, why. */
  | 'capacity'
  /** The session budget was reached (scheduling/budget.ts): budget, spent. */
  | 'budget'
  /** A running isolated task's work so far would conflict with the integration branch (`paths`; empty: no longer). */
  | 'conflict_predicted';

/** One event line. `ts` is ISO 8601; other fields depend on `type`. */
export interface SessionEvent {
  ts: string;
  session_id: string;
  type: EventType;
  task?: string;
  agent?: string;
  pid?: number | null;
  attempt?: number;
  duration_ms?: number | null;
  error?: string | null;
  [key: string]: unknown;
}
