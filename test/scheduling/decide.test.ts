// The one scheduling decision: literal session states in, exact decisions out.
import { describe, expect, it } from 'vitest';
import { decide, STARVED_LEASES, type Decision, type IdentityCheck, type RunStateCheck } from '../../scripts/lib/scheduling/scheduling.ts';
import type { TaskRecordInput } from '../../scripts/lib/state/schema.ts';
import { session, t } from '../support/literal-session.ts';

const alive: IdentityCheck = () => 'alive';
const NOW = new Date(t(10));

interface Row {
  name: string;
  maxWorkers: number;
  tasks: Record<string, Partial<TaskRecordInput>>;
  owner?: number;
  identity?: IdentityCheck;
  /** Whether a live owner is stopped; default unknown (the lease alone decides). */
  runState?: RunStateCheck;
  now?: Date;
  expected: Decision;
}

const none = { start: [], skip: [], fail: [], wait: [], stop: [], requeue: [] };

const rows: Row[] = [
  {
    name: 'gives free slots by priority, then registration order, and the rest wait for a slot',
    maxWorkers: 2,
    tasks: { low: { priority: 'P3' }, mid: { priority: 'P1' }, top: { priority: 'P0' }, mid2: { priority: 'P1' } },
    expected: {
      ...none,
      start: ['top', 'mid'],
      wait: [
        { name: 'low', on: [] },
        { name: 'mid2', on: [] },
      ],
    },
  },
  {
    name: 'counts the slots held by every process of the session, a claimed launch (no pid yet) included',
    maxWorkers: 3,
    tasks: {
      planned: { status: 'running', pid: 100, heartbeat_at: t(9) },
      background: { status: 'retrying', pid: 200, heartbeat_at: t(9) },
      claimed: { status: 'running', pid: null, adoption_token: 'x', heartbeat_at: t(9) },
      next: { status: 'waiting' },
    },
    expected: { ...none, wait: [{ name: 'next', on: [] }] },
  },
  {
    name: 'skips a task whose dependency failed, and its dependants in the same decision',
    maxWorkers: 4,
    tasks: { a: { status: 'failed' }, b: { depends_on: ['a'] }, c: { depends_on: ['b'] }, d: { depends_on: ['a'], on_dep_failure: 'run' } },
    expected: {
      ...none,
      start: ['d'],
      skip: [
        { name: 'b', reason: 'dependency a failed' },
        { name: 'c', reason: 'dependency b skipped' },
      ],
    },
  },
  {
    name: 'says a cancelled dependency was cancelled',
    maxWorkers: 1,
    tasks: { a: { status: 'cancelled' }, b: { status: 'waiting', depends_on: ['a'] } },
    expected: { ...none, skip: [{ name: 'b', reason: 'dependency a was cancelled' }] },
  },
  {
    name: 'waits on unfinished and unregistered dependencies until the stored deadline, then fails',
    maxWorkers: 4,
    tasks: {
      a: { status: 'running', pid: 100, heartbeat_at: t(9) },
      b: { depends_on: ['a', 'ghost'], dep_deadline: t(60) },
      late: { depends_on: ['ghost'], dep_deadline: t(5) },
      after: { depends_on: ['late'] },
      forever: { depends_on: ['ghost'] },
    },
    expected: {
      ...none,
      skip: [{ name: 'after', reason: 'dependency late failed' }],
      fail: [{ name: 'late', reason: 'dependency ghost never appeared in the session (waited 5 s)', died: false }],
      wait: [
        { name: 'b', on: ['a', 'ghost'] },
        { name: 'forever', on: ['ghost'] },
      ],
    },
  },
  {
    name: 'keeps a task off a file an earlier or running task declares',
    maxWorkers: 5,
    tasks: { a: { files: ['src/x.ts'] }, b: { files: ['./src/x.ts', 'y'] }, c: { files: ['z'] } },
    expected: { ...none, start: ['a', 'c'], wait: [{ name: 'b', on: ['a'] }] },
  },
  {
    name: 'fails a task whose owner died and gives its slot on in the same decision',
    maxWorkers: 1,
    tasks: { dead: { status: 'running', pid: 4242, heartbeat_at: t(9) }, next: { status: 'waiting' } },
    identity: ({ pid }) => (pid === 4242 ? 'gone' : 'alive'),
    expected: {
      ...none,
      start: ['next'],
      fail: [{ name: 'dead', reason: expect.stringMatching(/^agent process exited without reporting/), died: true }],
    },
  },
  {
    name: 'fails a running task whose lease expired, and queues again a launch claim whose process was never started',
    maxWorkers: 2,
    tasks: {
      hung: { status: 'running', pid: 100, heartbeat_at: t(-40) },
      claimed: { status: 'running', pid: null, adoption_token: 'x', heartbeat_at: t(-25) },
      fresh: { status: 'running', pid: null, adoption_token: 'y', heartbeat_at: t(5) },
      next: {},
    },
    expected: {
      ...none,
      // Queued again in its place (registered before `next`), it takes the slot `hung` freed.
      start: ['claimed'],
      wait: [{ name: 'next', on: [] }],
      fail: [{ name: 'hung', reason: 'agent heartbeat stale for 50 s (lease 30 s)', died: true }],
      requeue: [{ name: 'claimed', reason: 'launched agent never took the task over in 35 s (lease 30 s)' }],
    },
  },
  {
    name: 'keeps a live owner that is not stopped past its lease (a starved machine), fails it once stopped',
    maxWorkers: 2,
    tasks: {
      starved: { status: 'running', pid: 100, heartbeat_at: t(-40) },
      stopped: { status: 'running', pid: 200, heartbeat_at: t(-40) },
      next: {},
    },
    runState: (pid) => (pid === 200 ? 'stopped' : 'running'),
    expected: {
      ...none,
      fail: [{ name: 'stopped', reason: 'agent heartbeat stale for 50 s (lease 30 s): its process (pid 200) is stopped', died: true }],
      start: ['next'],
    },
  },
  {
    name: `takes a live, running owner for hung after ${STARVED_LEASES} leases without a renewal`,
    maxWorkers: 1,
    tasks: { hung: { status: 'running', pid: 100, heartbeat_at: t(10 - STARVED_LEASES * 30 - 1) }, next: {} },
    runState: () => 'running',
    expected: {
      ...none,
      fail: [
        {
          name: 'hung',
          reason: `agent heartbeat stale for ${STARVED_LEASES * 30 + 1} s (lease 30 s): its process (pid 100) is alive but renewed nothing for ${STARVED_LEASES} leases, taken for hung`,
          died: true,
        },
      ],
      start: ['next'],
    },
  },
  {
    name: 'keeps a launch claim past its lease while its started process lives and is not stopped; fails a gone or stopped one',
    maxWorkers: 3,
    tasks: {
      slow: { status: 'running', pid: null, adoption_token: 'a', heartbeat_at: t(-25), launched: { pid: 300, start: '1', host: null } },
      gone: { status: 'running', pid: null, adoption_token: 'b', heartbeat_at: t(9), launched: { pid: 400, start: '1', host: null } },
      stopped: { status: 'running', pid: null, adoption_token: 'c', heartbeat_at: t(-25), launched: { pid: 200, start: '1', host: null } },
      next: {},
    },
    identity: ({ pid }) => (pid === 400 ? 'gone' : 'alive'),
    runState: (pid) => (pid === 200 ? 'stopped' : 'running'),
    expected: {
      ...none,
      fail: [
        { name: 'gone', reason: 'launched agent (pid 400) exited before taking the task over, after 1 s (lease 30 s)', died: true },
        {
          name: 'stopped',
          reason: 'launched agent never took the task over in 35 s (lease 30 s): its process (pid 200) is stopped',
          died: true,
        },
      ],
      start: ['next'],
    },
  },
  {
    name: 'never takes a queued task (no pid, no lease) for dead',
    maxWorkers: 1,
    tasks: {
      busy: { status: 'running', pid: 100, heartbeat_at: t(9) },
      queued: { status: 'waiting', pid: null, heartbeat_at: null, registered_at: t(-3600) },
    },
    expected: { ...none, wait: [{ name: 'queued', on: [] }] },
  },
  {
    name: 'answers an owner with its own tasks and unowned queued ones; a task of another owner ahead keeps its slot',
    maxWorkers: 2,
    owner: 100,
    tasks: {
      theirs: { pid: 200, priority: 'P0' },
      queued: { status: 'waiting', pid: null },
      mine: { pid: 100 },
      theirsToo: { pid: 200, depends_on: ['gone'], dep_deadline: t(1) },
    },
    expected: { ...none, start: ['queued'], wait: [{ name: 'mine', on: [] }] },
  },
  {
    name: 'schedules tasks named toString, constructor and __proto__, and finds no inherited dependency',
    maxWorkers: 5,
    tasks: { a: { depends_on: ['toString', 'constructor', '__proto__'] }, hasOwnProperty: {}, valueOf: { depends_on: ['hasOwnProperty'] } },
    expected: {
      ...none,
      start: ['hasOwnProperty'],
      wait: [
        { name: 'a', on: ['toString', 'constructor', '__proto__'] },
        { name: 'valueOf', on: ['hasOwnProperty'] },
      ],
    },
  },
];

describe('decide: the one scheduling decision', () => {
  it.each(rows)('$name', (row) => {
    const state = session(row.maxWorkers, row.tasks);
    const options = {
      now: row.now ?? NOW,
      owner: row.owner,
      identity: row.identity ?? alive,
      runState: row.runState ?? (() => 'unknown' as const),
    };
    expect(decide(state, options)).toEqual(row.expected);
  });

  it('never starts more tasks than the free slots, whatever the queue', () => {
    for (let workers = 1; workers <= 6; workers++) {
      for (let running = 0; running <= workers; running++) {
        const tasks: Record<string, Partial<TaskRecordInput>> = {};
        for (let i = 0; i < running; i++) tasks[`r${i}`] = { status: 'running', pid: 100, heartbeat_at: t(9) };
        for (let i = 0; i < 10; i++) tasks[`q${i}`] = { status: 'waiting', pid: null };
        const decision = decide(session(workers, tasks), { now: NOW, identity: alive });
        expect(decision.start.length).toBe(workers - running);
        expect(decision.wait.length).toBe(10 - (workers - running));
      }
    }
  });
});
