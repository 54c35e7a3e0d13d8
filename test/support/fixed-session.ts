// Test fixtures: sessions with fixed ISO times (a live one for the board, a finished one for the report) and their events.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import type { SessionEvent } from '../../scripts/lib/state/events.ts';
import { writeResultFile } from '../../scripts/lib/execution/result-file.ts';
import { SessionStateSchema, type SessionState, type TaskRecordInput } from '../../scripts/lib/state/schema.ts';

/** 2026-01-15T10:00:00Z plus `seconds`, as ISO 8601. */
export function at(seconds: number): string {
  return new Date(Date.UTC(2026, 0, 15, 10, 0, 0) + Math.round(seconds * 1000)).toISOString();
}

function task(fields: Partial<TaskRecordInput> & Pick<TaskRecordInput, 'status' | 'agent'>): TaskRecordInput {
  return { goal: 'goal', registered_at: at(0.5), runner: 'claude', max_attempts: 1, attempts: 1, ...fields };
}

/** The board's "now" for {@link liveState}: 10:00:09. */
export const LIVE_NOW = Date.parse(at(9));

/** A session in the middle of its run: every status but skipped/cancelled, some costs reported. */
export function liveState(): SessionState {
  return SessionStateSchema.parse({
    version: 1,
    session_id: 'live-fixture',
    created_at: at(0),
    updated_at: at(8),
    max_workers: 3,
    tasks: {
      scan: task({
        status: 'completed',
        agent: 'Agent-01',
        started_at: at(1),
        ended_at: at(3.5),
        duration_ms: 2500,
        cost_usd: 0.0123,
        input_tokens: 1200,
        output_tokens: 340,
      }),
      lint: task({
        status: 'retrying',
        agent: 'Agent-02',
        started_at: at(2),
        attempts: 1,
        max_attempts: 3,
        error: 'claude timed out after 30 s',
        next_retry_at: at(11),
      }),
      quality: task({
        status: 'running',
        agent: 'Agent-03',
        depends_on: ['scan'],
        started_at: at(3.6),
        heartbeat_at: at(8),
        attempts: 2,
        max_attempts: 4,
        cost_usd: 0.0456,
      }),
      security: task({
        status: 'failed',
        agent: 'Agent-04',
        depends_on: ['scan'],
        started_at: at(3.7),
        ended_at: at(5.7),
        duration_ms: 2000,
        error: 'claude exited with code 1: API error (overloaded)',
      }),
      perf: task({ status: 'running', agent: 'Agent-05', depends_on: ['scan'], started_at: at(3.8), heartbeat_at: at(8) }),
      report: task({
        status: 'waiting',
        agent: 'Agent-06',
        depends_on: ['quality', 'security', 'perf'],
        on_dep_failure: 'run',
        attempts: 0,
        waiting_on: ['quality', 'perf'],
      }),
      docs: task({ status: 'pending', agent: 'Agent-07', depends_on: ['report'], attempts: 0 }),
    },
  });
}

/**
 * A finished session: scan, then quality (retried once), security (failed) and perf in parallel,
 * then report (skipped because security failed). Result files are written under `resultsDir`.
 */
export function finishedState(resultsDir: string): SessionState {
  const result = (name: string) => path.join(resultsDir, `${name}.md`);
  return SessionStateSchema.parse({
    version: 1,
    session_id: 'done-fixture',
    created_at: at(0),
    updated_at: at(9.8),
    max_workers: 5,
    tasks: {
      scan: task({
        status: 'completed',
        agent: 'Agent-01',
        started_at: at(1),
        ended_at: at(3.5),
        duration_ms: 2500,
        cost_usd: 0.0123,
        input_tokens: 1200,
        output_tokens: 340,
        result_path: result('scan'),
      }),
      quality: task({
        status: 'completed',
        agent: 'Agent-02',
        depends_on: ['scan'],
        attempts: 2,
        max_attempts: 3,
        started_at: at(5.6),
        ended_at: at(7.6),
        duration_ms: 2000,
        cost_usd: 0.0456,
        input_tokens: 3000,
        output_tokens: 900,
        result_path: result('quality'),
      }),
      security: task({
        status: 'failed',
        agent: 'Agent-03',
        depends_on: ['scan'],
        started_at: at(3.7),
        ended_at: at(5.7),
        duration_ms: 2000,
        cost_usd: 0.01,
        input_tokens: 800,
        output_tokens: 20,
        error: 'claude exited with code 1: API error (overloaded)',
        result_path: result('security'),
      }),
      perf: task({
        status: 'completed',
        agent: 'Agent-04',
        runner: 'mock',
        depends_on: ['scan'],
        started_at: at(3.8),
        ended_at: at(9.8),
        duration_ms: 6000,
        result_path: result('perf'),
      }),
      report: task({
        status: 'skipped',
        agent: 'Agent-05',
        depends_on: ['quality', 'security', 'perf'],
        attempts: 0,
        ended_at: at(9.8),
        error: 'dependency security failed',
      }),
    },
  });
}

/** The events of {@link finishedState}, in the order they were written. */
export function finishedEvents(): SessionEvent[] {
  const e = (seconds: number, type: SessionEvent['type'], fields: Partial<SessionEvent> = {}): SessionEvent => ({
    ts: at(seconds),
    session_id: 'done-fixture',
    type,
    ...fields,
  });
  return [
    e(0, 'session_started', { max_workers: 5, previous_session_id: null }),
    e(0.5, 'registered', { task: 'scan', agent: 'Agent-01', depends_on: [] }),
    e(0.5, 'registered', { task: 'quality', agent: 'Agent-02', depends_on: ['scan'] }),
    e(0.5, 'registered', { task: 'security', agent: 'Agent-03', depends_on: ['scan'] }),
    e(0.5, 'registered', { task: 'perf', agent: 'Agent-04', depends_on: ['scan'] }),
    e(0.5, 'registered', { task: 'report', agent: 'Agent-05', depends_on: ['quality', 'security', 'perf'] }),
    e(0.6, 'waiting', { task: 'report', agent: 'Agent-05', attempt: 0, waiting_on: ['quality', 'security', 'perf'] }),
    e(1, 'started', { task: 'scan', agent: 'Agent-01', attempt: 1 }),
    e(3.5, 'completed', { task: 'scan', agent: 'Agent-01', attempt: 1, duration_ms: 2500 }),
    e(3.6, 'started', { task: 'quality', agent: 'Agent-02', attempt: 1 }),
    e(3.7, 'started', { task: 'security', agent: 'Agent-03', attempt: 1 }),
    e(3.8, 'started', { task: 'perf', agent: 'Agent-04', attempt: 1 }),
    e(4.6, 'retrying', { task: 'quality', agent: 'Agent-02', attempt: 1, error: 'rate limited (429)' }),
    e(5.6, 'started', { task: 'quality', agent: 'Agent-02', attempt: 2 }),
    e(5.7, 'failed', {
      task: 'security',
      agent: 'Agent-03',
      attempt: 1,
      duration_ms: 2000,
      error: 'claude exited with code 1: API error (overloaded)',
    }),
    e(7.6, 'completed', { task: 'quality', agent: 'Agent-02', attempt: 2, duration_ms: 2000 }),
    e(9.8, 'completed', { task: 'perf', agent: 'Agent-04', attempt: 1, duration_ms: 6000 }),
    e(9.8, 'skipped', { task: 'report', agent: 'Agent-05', attempt: 0, duration_ms: null, error: 'dependency security failed' }),
  ];
}

/** Writes the result files of {@link finishedState} (security's says why it failed; report has none). */
export async function writeFinishedResults(state: SessionState): Promise<void> {
  for (const [name, record] of Object.entries(state.tasks)) {
    if (!record.result_path) continue;
    const failed = record.status === 'failed';
    await writeResultFile(
      record.result_path,
      {
        task: name,
        agent: record.agent,
        status: failed ? 'failed' : 'completed',
        session_id: state.session_id,
        attempt: record.attempts,
        runner: record.runner,
        started_at: record.started_at,
        ended_at: record.ended_at!,
        duration_ms: record.duration_ms,
        depends_on: record.depends_on,
      },
      failed
        ? `# ${name}: failed\n\nThe API was overloaded.\n`
        : `# ${name}\n\n## Findings\nNothing alarming in ${name}; see <b>details</b>.\n`,
    );
  }
}

/** Writes a state (and optionally events) into a session folder, as the scripts would. */
export async function writeSession(dir: string, state: SessionState, events: SessionEvent[] = []): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'latest.yaml'), YAML.stringify(state));
  if (events.length > 0) await writeFile(path.join(dir, 'events.jsonl'), events.map((event) => JSON.stringify(event)).join('\n') + '\n');
}
