// The fast check of a state (state-check.ts) against the zod schema it stands in for: it may refuse more, never accept more,
// and what it accepts reads as the schema reads it. Also: the zod-free defaults (model.ts) are exactly the schema's.
import { describe, expect, it } from 'vitest';
import {
  checkCanonicalState,
  BUDGET,
  CAPACITY,
  LIVE_PROGRESS,
  SESSION_STATE,
  TASK_MERGE,
  TASK_RECORD,
} from '../../scripts/lib/state/state-check.ts';
import {
  BudgetSchema,
  CapacitySchema,
  LiveProgressSchema,
  SessionStateSchema,
  TaskMergeSchema,
  TaskRecordSchema,
  type SessionState,
} from '../../scripts/lib/state/schema.ts';
import { seededRandom as random } from '../../bench/lib/dag.ts';
import { defaultBudget, defaultCapacity, newSessionState, newTaskRecord, TASK_STATUSES } from '../../scripts/lib/state/model.ts';

type Rng = () => number;
const pick = <T>(rng: Rng, values: readonly T[]): T => values[Math.floor(rng() * values.length)]!;
const maybe = <T>(rng: Rng, value: () => T): T | null => (rng() < 0.5 ? null : value());
const iso = (rng: Rng) => new Date(Date.UTC(2020 + Math.floor(rng() * 10), 0, 1) + Math.floor(rng() * 3e10)).toISOString();
const NAMES = ['a', 'T-01', '__proto__', 'constructor', 'toString', 'x.y_z-1', 'hasOwnProperty'];

/** Values of many kinds, in range and out: what a mutation puts where a field was. */
function oddValue(rng: Rng): unknown {
  return pick(rng, [
    null,
    undefined,
    -1,
    0,
    1.5,
    2 ** 31,
    2 ** 53,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    -0,
    '',
    'x',
    'Agent-1',
    'Agent-007',
    '2026-13-01T00:00:00.000Z',
    '2026-02-29T00:00:00.000Z',
    '2024-02-29T23:59:59.999Z',
    '2026-01-01T00:00:00Z',
    '2026-01-01T00:00:00.000+01:00',
    '2026-01-01T24:00:00.000Z',
    'P9',
    'mock',
    'running',
    true,
    false,
    [],
    ['a'],
    [''],
    ['../x'],
    {},
    { argv: ['node'], cwd: '/' },
    { script: 's', args: [], cwd: '/' },
    { pid: 1, start: null, host: null },
  ]);
}

/** A task record in the schema's input form, with random but mostly valid values. */
function taskInput(rng: Rng): Record<string, unknown> {
  return {
    status: pick(rng, TASK_STATUSES),
    agent: `Agent-${String(1 + Math.floor(rng() * 200)).padStart(2, '0')}`,
    goal: pick(rng, ['', 'Review the code', 'é: "quoted" # not a comment\nsecond line']),
    depends_on: rng() < 0.5 ? [] : [pick(rng, NAMES)],
    priority: pick(rng, ['P0', 'P1', 'P2', 'P3']),
    files: rng() < 0.5 ? [] : ['src/a.ts'],
    runner: pick(rng, ['mock', 'claude']),
    pid: maybe(rng, () => 2 + Math.floor(rng() * 1e6)),
    pid_start: maybe(rng, () => String(Math.floor(rng() * 1e9))),
    host: maybe(rng, () => 'host'),
    agent_child: maybe(rng, () => ({ pid: 5, start: null, host: 'h' })),
    attempts: Math.floor(rng() * 3),
    max_attempts: 1 + Math.floor(rng() * 3),
    registered_at: iso(rng),
    started_at: maybe(rng, () => iso(rng)),
    heartbeat_at: maybe(rng, () => iso(rng)),
    duration_ms: maybe(rng, () => rng() * 1e5),
    launch: maybe(rng, () =>
      rng() < 0.8 ? { script: 'spawn-agent-mock', args: ['--goal', 'g'], cwd: '/p' } : { argv: ['node', 'x'], cwd: '/p' },
    ),
    cost_usd: maybe(rng, () => rng()),
    live: maybe(rng, () => ({
      turns: 2,
      last_tool: 'Bash',
      input_tokens: 10,
      output_tokens: 3,
      est_cost_usd: null,
      api_retries: 0,
      last_api_error: null,
      last_event_at: iso(rng),
    })),
    merge: maybe(rng, () => ({
      branch: 'dto/s/tasks/a',
      status: pick(rng, ['merged', 'conflict']),
      diff_stat: { files: 1, insertions: 2, deletions: 0 },
    })),
    attempt_hosts: rng() < 0.7 ? [] : [{ attempt: 1, host: 'w1' }],
  };
}

/** A whole state in the schema's input form. */
function stateInput(rng: Rng): Record<string, unknown> {
  const tasks: Record<string, unknown> = {};
  const count = Math.floor(rng() * 5);
  for (let i = 0; i < count; i++)
    Object.defineProperty(tasks, pick(rng, NAMES), { value: taskInput(rng), enumerable: true, configurable: true, writable: true });
  return {
    version: 1,
    session_id: 'session-1',
    created_at: iso(rng),
    updated_at: iso(rng),
    max_workers: 1 + Math.floor(rng() * 8),
    plan_path: maybe(rng, () => 'plan.md'),
    integration: maybe(rng, () => ({ branch: 'b', base: 'x', tip: 'y' })),
    capacity: rng() < 0.5 ? {} : { limit: 2, rate_limited_since: iso(rng), hits: 3 },
    budget: rng() < 0.5 ? {} : { usd: 1.5, on_budget: 'stop' },
    tasks,
  };
}

/** Every (object, key) path of a value, for mutations. */
function objectsIn(value: unknown, out: Array<Record<string, unknown>> = []): Array<Record<string, unknown>> {
  if (value !== null && typeof value === 'object') {
    if (!Array.isArray(value)) out.push(value as Record<string, unknown>);
    for (const child of Object.values(value)) objectsIn(child, out);
  }
  return out;
}

/** One random change: a value replaced, a key removed or added, two keys swapped, a task name made invalid. */
function mutate(rng: Rng, state: unknown): void {
  const objects = objectsIn(state);
  const target = pick(rng, objects);
  const keys = Object.keys(target);
  const kind = rng();
  if (kind < 0.55 && keys.length > 0) {
    Object.defineProperty(target, pick(rng, keys), { value: oddValue(rng), enumerable: true, configurable: true, writable: true });
  } else if (kind < 0.7 && keys.length > 0) {
    delete target[pick(rng, keys)];
  } else if (kind < 0.8) {
    Object.defineProperty(target, pick(rng, ['extra', '__proto__', 'status']), {
      value: oddValue(rng),
      enumerable: true,
      configurable: true,
      writable: true,
    });
  } else if (kind < 0.9 && keys.length > 1) {
    // Two fields change places: same fields, another order.
    const entries = Object.entries(target);
    const i = Math.floor(rng() * entries.length);
    const j = Math.floor(rng() * entries.length);
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
    for (const key of keys) delete target[key];
    for (const [key, value] of entries) Object.defineProperty(target, key, { value, enumerable: true, configurable: true, writable: true });
  } else {
    const tasks = (state as { tasks?: unknown }).tasks;
    if (tasks && typeof tasks === 'object')
      Object.defineProperty(tasks, pick(rng, ['', '.hidden', 'a b', '../x']), { value: {}, enumerable: true, configurable: true });
  }
}

describe('the fast state check', () => {
  it('lists the fields of every object of the schema, in the schema order', () => {
    expect(SESSION_STATE.keys).toEqual(Object.keys(SessionStateSchema.shape));
    expect(TASK_RECORD.keys).toEqual(Object.keys(TaskRecordSchema.shape));
    expect(CAPACITY.keys).toEqual(Object.keys(CapacitySchema.shape));
    expect(BUDGET.keys).toEqual(Object.keys(BudgetSchema.shape));
    expect(LIVE_PROGRESS.keys).toEqual(Object.keys(LiveProgressSchema.shape));
    expect(TASK_MERGE.keys).toEqual(Object.keys(TaskMergeSchema.shape));
  });

  it('takes every state the schema writes (so agents never load zod for their own files), and reads it as the schema does', () => {
    const rng = random(1);
    let taken = 0;
    for (let i = 0; i < 3000; i++) {
      const parsed = SessionStateSchema.safeParse(stateInput(rng));
      if (!parsed.success) continue;
      const json = JSON.stringify(parsed.data);
      const copy = JSON.parse(json) as unknown;
      const fast = checkCanonicalState(copy);
      expect(fast, `state ${i}`).toBeDefined();
      expect(JSON.stringify(fast)).toBe(json);
      expect(Object.getPrototypeOf(fast!.tasks)).toBe(null);
      expect(Object.keys(fast!.tasks)).toEqual(Object.keys(parsed.data.tasks));
      taken++;
    }
    expect(taken).toBeGreaterThan(2500);
  });

  it('never takes what the schema refuses, nor reads anything differently (20,000 mutated states)', () => {
    const rng = random(2);
    let refusedBySchema = 0;
    let takenByBoth = 0;
    for (let i = 0; i < 20_000; i++) {
      const parsed = SessionStateSchema.safeParse(stateInput(rng));
      if (!parsed.success) continue;
      const state = JSON.parse(JSON.stringify(parsed.data)) as unknown;
      const changes = 1 + Math.floor(rng() * 2);
      for (let k = 0; k < changes; k++) mutate(rng, state);
      const schema = SessionStateSchema.safeParse(structuredClone(state));
      const fast = checkCanonicalState(state);
      if (!schema.success) refusedBySchema++;
      if (fast === undefined) continue;
      expect(schema.success, `mutated state ${i} was taken by the fast check but refused by the schema`).toBe(true);
      expect(JSON.stringify(fast), `mutated state ${i}`).toBe(JSON.stringify(schema.data));
      takenByBoth++;
    }
    // The mutations reach both sides: many are refused, and some are still valid as they are.
    expect(refusedBySchema).toBeGreaterThan(4_000);
    expect(takenByBoth).toBeGreaterThan(200);
  });

  it('takes ISO times only as toISOString writes real ones (a subset of the schema’s)', () => {
    const rng = random(3);
    const base = SessionStateSchema.parse(stateInput(random(4)));
    for (let i = 0; i < 20_000; i++) {
      const digits = '2026-02-29T23:59:60.000Z'.replace(/\d/g, () => String(Math.floor(rng() * 10)));
      const state = { ...JSON.parse(JSON.stringify(base)), updated_at: digits } as unknown;
      const fast = checkCanonicalState(state) !== undefined;
      const schema = SessionStateSchema.safeParse(state).success;
      if (fast) expect(schema, digits).toBe(true);
    }
  });
});

describe('the zod-free defaults', () => {
  it('a new task record is what the schema fills in, field for field and in order', () => {
    const rng = random(5);
    for (let i = 0; i < 500; i++) {
      const given = {
        status: pick(rng, TASK_STATUSES),
        agent: 'Agent-01',
        goal: 'g',
        registered_at: iso(rng),
        ...(rng() < 0.5 ? { depends_on: ['a'], priority: 'P0' as const, attempts: 2 } : {}),
      };
      expect(JSON.stringify(newTaskRecord(given))).toBe(JSON.stringify(TaskRecordSchema.parse(given)));
    }
  });

  it('a new session, its capacity and its budget are what the schema fills in', () => {
    const now = '2026-12-01T00:00:00.000Z';
    const fresh: SessionState = newSessionState({ sessionId: 's-1', now, maxWorkers: 3 });
    const schema = SessionStateSchema.parse({ version: 1, session_id: 's-1', created_at: now, updated_at: now, max_workers: 3, tasks: {} });
    expect(JSON.stringify(fresh)).toBe(JSON.stringify(schema));
    expect(JSON.stringify(defaultCapacity())).toBe(JSON.stringify(CapacitySchema.parse({})));
    expect(JSON.stringify(defaultBudget())).toBe(JSON.stringify(BudgetSchema.parse({})));
    expect(checkCanonicalState(fresh)).toBe(fresh);
  });
});
