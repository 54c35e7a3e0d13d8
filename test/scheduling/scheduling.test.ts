import { describe, expect, it } from 'vitest';
import { busySlots, compareForSlot, fileConflicts, taskOf } from '../../scripts/lib/scheduling/scheduling.ts';
import { session } from '../support/literal-session.ts';

describe('scheduling rules', () => {
  it('orders tasks for a slot by priority, then registration order', () => {
    const state = session(2, { low: { priority: 'P3' }, mid: { priority: 'P1' }, top: { priority: 'P0' }, mid2: { priority: 'P1' } });
    const order = Object.keys(state.tasks).sort((a, b) => compareForSlot(taskOf(state, a)!, taskOf(state, b)!));
    expect(order).toEqual(['top', 'mid', 'mid2', 'low']);
  });

  it('counts running and retrying tasks as busy slots, nothing else', () => {
    const state = session(2, {
      a: { status: 'running' },
      b: { status: 'retrying' },
      c: {},
      d: { status: 'waiting' },
      e: { status: 'completed' },
    });
    expect(busySlots(state)).toBe(2);
  });

  it('serialises tasks that declare the same file, in registration order', () => {
    const state = session(5, { a: { files: ['src/x.ts'] }, b: { files: ['./src/x.ts', 'y'] }, c: { files: ['z'] } });
    expect(fileConflicts(state, 'b')).toEqual(['a']);
    expect(fileConflicts(state, 'a')).toEqual([]);
    state.tasks.a!.status = 'completed';
    expect(fileConflicts(state, 'b')).toEqual([]);
  });

  it('finds no task named toString, constructor or __proto__ unless one is registered', () => {
    const state = session(5, { hasOwnProperty: { files: ['f'] } });
    expect(taskOf(state, 'toString')).toBeUndefined();
    expect(taskOf(state, '__proto__')).toBeUndefined();
    expect(fileConflicts(state, 'constructor')).toEqual([]);
    expect(taskOf(state, 'hasOwnProperty')?.agent).toBe('Agent-01');
  });
});
