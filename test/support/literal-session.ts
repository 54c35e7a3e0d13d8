// Test helper: a session state written as a literal (task records with only the fields a test cares about).
import { SessionStateSchema, type SessionState, type TaskRecordInput } from '../../scripts/lib/state/schema.ts';

/** 2026-11-22T10:00:00Z plus `seconds`, as ISO 8601. */
export function t(seconds: number): string {
  return new Date(Date.UTC(2026, 10, 22, 10, 0, 0) + seconds * 1000).toISOString();
}

/** A state with `maxWorkers` and the given tasks, registered in the order written (Agent-01, Agent-02, ...). */
export function session(maxWorkers: number, tasks: Record<string, Partial<TaskRecordInput>>, leaseMs = 30_000): SessionState {
  let n = 0;
  return SessionStateSchema.parse({
    version: 1,
    session_id: 's',
    created_at: t(0),
    updated_at: t(0),
    max_workers: maxWorkers,
    lease_ms: leaseMs,
    tasks: Object.fromEntries(
      Object.entries(tasks).map(([name, task]) => [
        name,
        { status: 'pending', agent: `Agent-${String(++n).padStart(2, '0')}`, goal: name, registered_at: t(0), ...task },
      ]),
    ),
  });
}
