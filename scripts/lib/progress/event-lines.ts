// One progress line per event, as poll-session prints them off a terminal (the seeds' event-driven progress).
import type { EventType, SessionEvent } from '../state/events.ts';
import { getTask, type SessionState } from '../state/model.ts';
import { countOf, formatClock, formatDuration } from '../core/format.ts';
import { STATUS_ICONS } from '../state/status-icons.ts';
import type { ProgressEvent } from './run-tracker.ts';

/** What {@link formatEventLine} needs beyond the event. */
export interface LineContext {
  /** When the session started (ISO 8601): lines are stamped `[mm:ss]` from it. Null stamps the UTC time of day. */
  sessionStart: string | null;
  /** Print `waiting` events too (default false: they are many and the status table shows the same). */
  showWaiting?: boolean;
  /** Fallback for a `waiting` event that does not carry `waiting_on` (e.g. the task's record). */
  waitingOn?: (task: string) => readonly string[] | undefined;
}

/** Longest error text put on a line (characters); the rest is cut with `…`. */
export const MAX_REASON_CHARS = 240;

/**
 * Formats one event as a progress line, without a trailing newline, e.g.
 * `[00:03] ✅ T-01-scan completed by Agent-01 in 1.8 s`.
 *
 * @returns the line, or null for events that are not worth a line (`waiting`, unless asked).
 */
export function formatEventLine(event: ProgressEvent, ctx: LineContext): string | null {
  const text = describeEvent(event, ctx);
  return text === null ? null : `${stamp(event.ts, ctx.sessionStart)} ${text}`;
}

function describeEvent(event: ProgressEvent, ctx: LineContext): string | null {
  if (event.type === 'batch_completed') {
    const counts = Object.entries(event.counts)
      .map(([status, n]) => `${n} ${status}`)
      .join(', ');
    const tasks = countOf(event.tasks.length, 'task');
    const time = event.duration_ms === null ? '' : ` in ${formatDuration(event.duration_ms)}`;
    return `═══ Batch ${event.batch} of ${event.batches} completed: ${tasks}${time} (${counts}) ═══`;
  }
  const e: SessionEvent = event;
  const task = e.task ?? '?';
  const agent = e.agent ?? 'agent';
  const attempt = typeof e.attempt === 'number' ? e.attempt : null;
  const reason = e.error ? `: ${oneLine(e.error)}` : '';
  switch (e.type) {
    case 'session_started':
      return `═══ Session ${e.session_id} started${typeof e.previous_session_id === 'string' ? ` (session ${e.previous_session_id} archived)` : ''} ═══`;
    case 'session_archived':
      return `Session ${e.session_id} archived`;
    case 'registered': {
      const deps = Array.isArray(e.depends_on) && e.depends_on.length > 0 ? `, depends on ${(e.depends_on as string[]).join(', ')}` : '';
      return `${STATUS_ICONS.pending} ${task} registered (${agent}${deps})`;
    }
    case 'waiting': {
      // Every task behind a full worker pool waits: a line each would bury the rest. The status table shows what each waits on.
      if (!ctx.showWaiting) return null;
      const on = Array.isArray(e.waiting_on) ? (e.waiting_on as string[]) : (ctx.waitingOn?.(task) ?? []);
      return `${STATUS_ICONS.waiting} ${task} waiting${on.length > 0 ? ` on ${on.join(', ')}` : ''} (${agent})`;
    }
    case 'started':
      return `${STATUS_ICONS.running} ${task} started by ${agent}${attempt !== null && attempt > 1 ? ` (attempt ${attempt})` : ''}`;
    case 'retrying':
      return `${STATUS_ICONS.retrying} ${task} retrying${attempt !== null ? ` after attempt ${attempt}` : ''} (${agent})${reason}`;
    case 'completed':
      return `${STATUS_ICONS.completed} ${task} completed by ${agent} in ${formatDuration(e.duration_ms)}${attempt !== null && attempt > 1 ? ` (attempt ${attempt})` : ''}${verdictText(e)}`;
    case 'failed':
      return `${STATUS_ICONS.failed} ${task} failed${e.duration_ms !== null && e.duration_ms !== undefined ? ` after ${formatDuration(e.duration_ms)}` : ''} (${agent})${reason || ': no reason recorded'}`;
    case 'skipped':
      return `${STATUS_ICONS.skipped} ${task} skipped (${agent})${reason}`;
    case 'cancelled':
      return `${STATUS_ICONS.cancelled} ${task} cancelled (${agent})${reason}`;
    case 'merge_failed':
      return `${STATUS_ICONS.merge_failed} ${task} merge failed (${agent})${reason}`;
    case 'replaced':
      return `⚠️ ${agent} replaced, restarting ${task}${attempt !== null ? ` as attempt ${attempt}` : ''}${e.error ? ` (previous agent: ${oneLine(e.error)})` : ''}`;
    case 'capacity':
      // The session's adaptive worker limit changed (scheduling/capacity.ts).
      return `⚙️ worker limit ${String(e.old_limit)} → ${String(e.new_limit)} of ${String(e.max_workers)}${typeof e.why === 'string' ? `: ${oneLine(e.why)}` : ''}`;
    case 'budget':
      return `💰 budget reached${reason}`;
    case 'conflict_predicted': {
      const paths = Array.isArray(e.paths) ? (e.paths as string[]) : [];
      return paths.length > 0
        ? `⚠️ ${task} (${agent}): its work so far would conflict with the integration branch in ${paths.join(', ')}`
        : `${task} (${agent}): no merge conflict predicted any more`;
    }
    default:
      return `${task} ${String(e.type)}`;
  }
}

/** `[mm:ss]` since the session started, or `[HH:MM:SS]` UTC without a start. */
function stamp(ts: string, sessionStart: string | null): string {
  if (sessionStart === null) return `[${ts.slice(11, 19)}]`;
  return `[${formatClock(Date.parse(ts) - Date.parse(sessionStart))}]`;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_REASON_CHARS ? `${flat.slice(0, MAX_REASON_CHARS - 1)}…` : flat;
}

/**
 * The progress line of a task's current status, in the same format poll-session prints its events
 * ({@link formatEventLine}), so background agents and the plan runner print the same lines, e.g.
 * `[00:03] ✅ scan completed by Agent-01 in 1.8 s`. A waiting task's line is always shown.
 *
 * @param state - the session (its start stamps the line).
 * @param at - the line's time (default: now).
 * @returns the line, without a trailing newline.
 */
export function taskLine(state: SessionState, name: string, at: Date = new Date()): string {
  const record = getTask(state.tasks, name);
  const status = record?.status ?? 'cancelled';
  const type: EventType = status === 'pending' ? 'registered' : status === 'running' ? 'started' : status;
  const event: SessionEvent = {
    ts: at.toISOString(),
    session_id: state.session_id,
    type,
    task: name,
    agent: record?.agent,
    attempt: record?.attempts,
    duration_ms: record?.duration_ms ?? null,
    error: status === 'completed' ? null : (record?.error ?? null),
    depends_on: record?.depends_on,
    waiting_on: record?.waiting_on,
  };
  return formatEventLine(event, { sessionStart: state.created_at, showWaiting: true })!;
}

/** `, unverified: no tool call at all` after a completion whose verdict is not `verified`; `` otherwise. */
function verdictText(e: SessionEvent): string {
  if (e.verdict !== 'unverified' && e.verdict !== 'contradicted') return '';
  const evidence = Array.isArray(e.evidence) ? e.evidence.filter((item): item is string => typeof item === 'string') : [];
  return ` — ⚠️ ${e.verdict}${evidence.length > 0 ? `: ${oneLine(evidence.join('; '))}` : ''}`;
}
