import { describe, expect, it } from 'vitest';
import { classifyEvent, releasesNeeded } from '../scripts/lib/background-task.ts';
import type { SessionEvent } from '../scripts/lib/events.ts';
import { createSessionState, type StateTransaction } from '../scripts/lib/state-store.ts';
import { registerTask } from '../scripts/lib/transitions.ts';

const now = new Date('2026-11-22T10:00:00.000Z');
const tx: StateTransaction = { state: null, archiveCurrent: () => {}, emit: () => {}, now };
const state = createSessionState({ sessionId: 's', now });
registerTask(tx, state, { name: 'me', goal: 'g', runner: 'mock', pid: 1, dependsOn: ['dep'] });
const event = (type: string, task?: string): SessionEvent => ({ ts: now.toISOString(), session_id: 's', type: type as SessionEvent['type'], task });

describe('which events wake a waiting background agent', () => {
  it.each([
    // [event, task, verdict, what it means]
    ['completed', 'other', 'blocked', 'ignore'],
    ['completed', 'dep', 'blocked', 'now'],
    ['registered', 'dep', 'missing', 'now'],
    ['registered', 'other', 'missing', 'ignore'],
    ['started', 'dep', 'blocked', 'now'],
    ['cancelled', 'me', 'blocked', 'now'],
    ['completed', 'other', 'ready', 'ended'],
    ['failed', 'other', 'ready', 'ended'],
    ['skipped', 'other', 'ready', 'ended'],
    ['registered', 'other', 'ready', 'ignore'],
    ['replaced', 'other', 'ready', 'now'],
    ['started', 'other', 'ready', 'ignore'],
    ['waiting', 'other', 'ready', 'ignore'],
    ['retrying', 'other', 'ready', 'ignore'],
    ['session_started', undefined, 'blocked', 'now'],
    ['some_new_kind', 'other', 'blocked', 'now'],
  ] as const)('%s of %s while %s: %s', (type, task, kind, expected) => {
    const verdict = kind === 'blocked' ? { kind, on: ['dep'] } : kind === 'missing' ? { kind, names: ['dep'] } : { kind };
    expect(classifyEvent(event(type, task), 'me', verdict, state)).toBe(expected);
  });

  it('a ready task waits for as many tasks to end as stand between it and a free slot', () => {
    const queue = createSessionState({ sessionId: 'q', maxWorkers: 2, now });
    for (const name of ['r1', 'r2', 'w1', 'w2', 'w3', 'late']) registerTask(tx, queue, { name, goal: 'g', runner: 'mock', pid: 1, priority: name === 'late' ? 'P0' : 'P2' });
    queue.tasks.r1!.status = 'running';
    queue.tasks.r2!.status = 'running';
    // Queue in slot order: late (P0), w1, w2, w3; no free slot.
    expect(['late', 'w1', 'w2', 'w3'].map((name) => releasesNeeded(queue, name))).toEqual([1, 2, 3, 4]);
    queue.tasks.r1!.status = 'completed';
    expect(['late', 'w1', 'w2', 'w3'].map((name) => releasesNeeded(queue, name))).toEqual([1, 1, 2, 3]);
  });
});
