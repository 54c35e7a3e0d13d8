// Test fixture: a 40-task session for poll-session --attention: one failure (and its skipped dependant), a stall, a rate-limit pause
// of 10 minutes and one of 30 s, the rest completed; with running tasks (no pid, never reaped) for watches that hit their limit.
import type { SessionEvent } from '../../scripts/lib/state/events.ts';
import { SessionStateSchema, type SessionState, type TaskRecordInput } from '../../scripts/lib/state/schema.ts';
import { at } from './fixed-session.ts';

/** Task `i`'s name: `T-07`. */
export const T = (i: number) => `T-${String(i).padStart(2, '0')}`;
/** Task `i`'s agent: `Agent-07`. */
export const A = (i: number) => `Agent-${String(i).padStart(2, '0')}`;
/** The error of a stalled claude agent's `retrying` event, as agents/claude-result.ts and claude-agent.ts write it. */
export const STALL =
  'stalled: no output for 300 s, the claude process tree was terminated (--stall_timeout 300); resuming Claude session 1f2e, retry 1 of 2 in 0.0 s';

/** 40 tasks: T-07 failed (T-08, which depends on it, skipped), the rest completed; with `running`, those stay running (no pid: never reaped). */
export function fortyState(running: number[] = []): SessionState {
  const tasks: Record<string, TaskRecordInput> = {};
  for (let i = 1; i <= 40; i++) {
    const base = { agent: A(i), goal: 'g', registered_at: at(0.5), runner: 'claude' as const, attempts: 1, max_attempts: 3 };
    if (running.includes(i)) tasks[T(i)] = { ...base, status: 'running', started_at: at(1), heartbeat_at: at(1) };
    else if (i === 7)
      tasks[T(i)] = { ...base, status: 'failed', started_at: at(1), ended_at: at(4), error: 'claude exited with code 1: API error' };
    else if (i === 8)
      tasks[T(i)] = { ...base, status: 'skipped', attempts: 0, depends_on: [T(7)], ended_at: at(4), error: `dependency ${T(7)} failed` };
    else tasks[T(i)] = { ...base, status: 'completed', started_at: at(1), ended_at: at(2 + i / 10), duration_ms: 1000 + i * 100 };
  }
  tasks[T(8)]!.depends_on = [T(7)];
  return SessionStateSchema.parse({ version: 1, session_id: 'forty', created_at: at(0), updated_at: at(6), max_workers: 8, tasks });
}

/** An event of the session `forty`, `seconds` after its start. */
export function ev(seconds: number, type: SessionEvent['type'], fields: Partial<SessionEvent> = {}): SessionEvent {
  return { ts: at(seconds), session_id: 'forty', type, ...fields };
}

/** The log of {@link fortyState}: every kind of event, of which only a stall, a long pause and the failure need the model. */
export function fortyEvents(): SessionEvent[] {
  const events: SessionEvent[] = [ev(0, 'session_started', { max_workers: 8, previous_session_id: null })];
  for (let i = 1; i <= 40; i++) events.push(ev(0.5, 'registered', { task: T(i), agent: A(i), depends_on: i === 8 ? [T(7)] : [] }));
  events.push(ev(0.6, 'waiting', { task: T(8), agent: A(8), waiting_on: [T(7)] }));
  for (let i = 1; i <= 40; i++) if (i !== 8) events.push(ev(1, 'started', { task: T(i), agent: A(i), attempt: 1 }));
  events.push(
    ev(1.5, 'retrying', { task: T(5), agent: A(5), attempt: 1, error: STALL }),
    ev(1.6, 'retrying', { task: T(6), agent: A(6), attempt: 1, error: 'rate limited (429); retry 1 of 2 in 2.0 s' }),
    ev(1.7, 'capacity', {
      task: T(6),
      old_limit: 8,
      new_limit: 4,
      max_workers: 8,
      pause_until: at(31.7),
      why: 'HTTP 429 seen by T-06: limit halved',
    }),
    ev(1.8, 'capacity', {
      task: T(9),
      old_limit: 4,
      new_limit: 2,
      max_workers: 8,
      pause_until: at(601.8),
      why: 'HTTP 429 rate_limit seen by T-09: limit halved; new starts paused until later (reset time reported)',
    }),
    ev(2, 'conflict_predicted', { task: T(10), agent: A(10), paths: [] }),
    ev(4, 'failed', { task: T(7), agent: A(7), attempt: 1, duration_ms: 3000, error: 'claude exited with code 1: API error' }),
    ev(4, 'skipped', { task: T(8), agent: A(8), attempt: 0, duration_ms: null, error: `dependency ${T(7)} failed` }),
  );
  for (let i = 1; i <= 40; i++)
    if (i !== 7 && i !== 8) events.push(ev(2 + i / 10, 'completed', { task: T(i), agent: A(i), attempt: 1, duration_ms: 1000 + i * 100 }));
  return events;
}
