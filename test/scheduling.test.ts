import { describe, expect, it } from 'vitest';
import { checkDependencies, fileConflicts, runnableTasks } from '../scripts/lib/scheduling.ts';
import { SessionStateSchema, type SessionState, type TaskRecordInput } from '../scripts/lib/schema.ts';

function session(maxWorkers: number, tasks: Record<string, Partial<TaskRecordInput>>): SessionState {
  let n = 0;
  return SessionStateSchema.parse({
    version: 1,
    session_id: 's',
    created_at: '2026-11-22T10:00:00.000Z',
    updated_at: '2026-11-22T10:00:00.000Z',
    max_workers: maxWorkers,
    tasks: Object.fromEntries(
      Object.entries(tasks).map(([name, t]) => [
        name,
        { status: 'pending', agent: `Agent-${String(++n).padStart(2, '0')}`, goal: name, registered_at: '2026-11-22T10:00:00.000Z', ...t },
      ]),
    ),
  });
}

describe('scheduling rules', () => {
  it('gives free slots by priority, then registration order', () => {
    const state = session(2, { low: { priority: 'P3' }, mid: { priority: 'P1' }, top: { priority: 'P0' }, mid2: { priority: 'P1' } });
    expect(runnableTasks(state)).toEqual(['top', 'mid']);
  });

  it('never exceeds the worker limit', () => {
    const state = session(2, { a: { status: 'running' }, b: { status: 'retrying' }, c: {} });
    expect(runnableTasks(state)).toEqual([]);
  });

  it('answers for one candidate only when it is at the head of the queue', () => {
    const state = session(1, { first: {}, second: {} });
    expect(runnableTasks(state, new Set(['second']))).toEqual([]);
    expect(runnableTasks(state, new Set(['first']))).toEqual(['first']);
  });

  it('waits for dependencies and reports failed ones', () => {
    const state = session(5, { a: { status: 'running' }, b: { depends_on: ['a'] }, c: { depends_on: ['ghost'] } });
    expect(checkDependencies(state, 'b')).toEqual({ kind: 'blocked', on: ['a'] });
    expect(checkDependencies(state, 'c')).toEqual({ kind: 'missing', names: ['ghost'] });
    state.tasks.a!.status = 'failed';
    expect(checkDependencies(state, 'b')).toEqual({ kind: 'dependency_failed', dependency: 'a', status: 'failed' });
    state.tasks.b!.on_dep_failure = 'run';
    expect(checkDependencies(state, 'b')).toEqual({ kind: 'ready' });
  });

  it('serialises tasks that declare the same file, in registration order', () => {
    const state = session(5, { a: { files: ['src/x.ts'] }, b: { files: ['./src/x.ts', 'y'] }, c: { files: ['z'] } });
    expect(fileConflicts(state, 'b')).toEqual(['a']);
    expect(fileConflicts(state, 'a')).toEqual([]);
    expect(runnableTasks(state)).toEqual(['a', 'c']);
    state.tasks.a!.status = 'completed';
    expect(runnableTasks(state)).toEqual(['b', 'c']);
  });

  it('counts an unregistered dependency named toString, constructor or __proto__ as missing, and schedules tasks with those names', () => {
    const state = session(5, { a: { depends_on: ['toString', 'constructor', '__proto__'] }, hasOwnProperty: {}, valueOf: { depends_on: ['hasOwnProperty'] } });
    expect(checkDependencies(state, 'a')).toEqual({ kind: 'missing', names: ['toString', 'constructor', '__proto__'] });
    expect(checkDependencies(state, 'toString')).toEqual({ kind: 'missing', names: ['toString'] });
    expect(runnableTasks(state)).toEqual(['hasOwnProperty']);
    expect(fileConflicts(state, 'constructor')).toEqual([]);
  });
});

