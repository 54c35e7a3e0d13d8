// The append-only event log (`events.jsonl`) beside the state file: one JSON object per line.
import { appendFile, readFile } from 'node:fs/promises';

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
  | 'replaced';

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

/** Appends events, one line each, in a single write (O_APPEND, so concurrent writers do not interleave lines). */
export async function appendEvents(eventsPath: string, events: SessionEvent[]): Promise<void> {
  if (events.length === 0) return;
  await appendFile(eventsPath, events.map((event) => JSON.stringify(event)).join('\n') + '\n', 'utf8');
}

/**
 * Reads the event log; a missing file is an empty log and a torn last line is ignored.
 * @returns the events in the order they were written.
 */
export async function readEvents(eventsPath: string): Promise<SessionEvent[]> {
  let text: string;
  try {
    text = await readFile(eventsPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const events: SessionEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      events.push(JSON.parse(line) as SessionEvent);
    } catch {
      // A line being written right now; the next read sees it whole.
    }
  }
  return events;
}
