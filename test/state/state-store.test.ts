import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { OrchestratorError } from '../../scripts/lib/core/errors.ts';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { createSessionState, readState, updateState } from '../../scripts/lib/state/state-store.ts';
import { openSession, registerTask, setStatus } from '../../scripts/lib/scheduling/transitions.ts';
import { listFiles, tempProject } from '../support/project.ts';

describe('state store', () => {
  it('round-trips a session through latest.yaml and logs events', async () => {
    const { paths } = await tempProject();
    expect(await readState(paths)).toBeNull();
    await updateState(paths, (tx) => {
      const state = openSession(tx, { sessionId: 's1', maxWorkers: 3 });
      registerTask(tx, state, { name: 'scan', goal: 'List files', runner: 'mock', pid: process.pid });
      registerTask(tx, state, { name: 'report', goal: 'Write it', runner: 'mock', pid: process.pid, dependsOn: ['scan'], priority: 'P0' });
    });
    await updateState(paths, (tx) => setStatus(tx, tx.state!, 'scan', 'running'));
    const state = await readState(paths);
    expect(state).toMatchObject({
      version: 1,
      session_id: 's1',
      max_workers: 3,
      tasks: {
        scan: { status: 'running', agent: 'Agent-01', attempts: 1, goal: 'List files', error: null },
        report: { status: 'pending', agent: 'Agent-02', depends_on: ['scan'], priority: 'P0', attempts: 0 },
      },
    });
    expect(Date.parse(state!.tasks.scan!.started_at!)).toBeGreaterThan(0);
    const events = await readEvents(paths.eventsPath);
    expect(events.map((e) => [e.type, e.task])).toEqual([
      ['session_started', undefined],
      ['registered', 'scan'],
      ['registered', 'report'],
      ['started', 'scan'],
    ]);
    expect(new Set(events.map((e) => e.session_id))).toEqual(new Set(['s1']));
  });

  it('does not write when nothing changed', async () => {
    const { paths } = await tempProject();
    await updateState(paths, (tx) => void openSession(tx, { sessionId: 's1' }));
    const before = await readFile(paths.statePath, 'utf8');
    await new Promise((r) => setTimeout(r, 5));
    await updateState(paths, () => undefined);
    expect(await readFile(paths.statePath, 'utf8')).toBe(before);
  });

  it('refuses a state that breaks the schema, and leaves the file byte-for-byte intact', async () => {
    const { paths } = await tempProject();
    await mkdir(paths.dir, { recursive: true });
    const bad = 'version: 1\nsession_id: s1\ncreated_at: yesterday\ntasks: {}\n';
    await writeFile(paths.statePath, bad);
    await expect(readState(paths)).rejects.toMatchObject({ code: 'corrupt_state' });
    const error = await updateState(paths, () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OrchestratorError);
    expect((error as OrchestratorError).message).toContain(paths.statePath);
    expect((error as OrchestratorError).message).toContain('left untouched');
    expect((error as OrchestratorError).message).toMatch(/created_at/);
    expect(await readFile(paths.statePath, 'utf8')).toBe(bad);
  });

  it('refuses a file that is not YAML, writing nothing else', async () => {
    const { dir, paths } = await tempProject();
    await mkdir(paths.dir, { recursive: true });
    const garbage = 'tasks: [unclosed\n\u0000\u0001 binary';
    await writeFile(paths.statePath, garbage);
    await expect(updateState(paths, (tx) => void openSession(tx, {}))).rejects.toMatchObject({ code: 'corrupt_state', exitCode: 2 });
    expect(await readFile(paths.statePath, 'utf8')).toBe(garbage);
    expect(await listFiles(dir)).toEqual(['.agent/sessions/latest.yaml']);
  });

  it('archives the previous session when a new one starts, deleting nothing', async () => {
    const { paths, dir } = await tempProject();
    await updateState(paths, (tx) => {
      registerTask(tx, openSession(tx, { sessionId: 'first' }), { name: 'a', goal: 'g', runner: 'mock', pid: 1 });
    });
    await updateState(paths, (tx) => void openSession(tx, { newSession: true }));
    const state = await readState(paths);
    expect(state!.session_id).not.toBe('first');
    expect(state!.tasks).toEqual({});
    expect(await listFiles(dir)).toEqual([
      '.agent/sessions/events.jsonl',
      '.agent/sessions/first.events.jsonl',
      '.agent/sessions/first.yaml',
      '.agent/sessions/latest.yaml',
    ]);
    expect(await readFile(`${paths.dir}/first.yaml`, 'utf8')).toContain('a:');
  });

  it('creates states that validate', () => {
    const state = createSessionState({ sessionId: 'x', maxWorkers: 2 });
    expect(state).toMatchObject({ version: 1, session_id: 'x', max_workers: 2, lease_ms: 30000, tasks: {} });
    expect(() => createSessionState({ sessionId: '../up' })).toThrow(/session_id/);
  });
});
