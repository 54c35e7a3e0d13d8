// Pure scheduling rules over a session state: dependencies, the worker limit, priorities and file conflicts.
import { PRIORITIES, TERMINAL_STATUSES, type SessionState, type TaskRecord } from './schema.ts';

/** Statuses that hold one of the session's worker slots. */
export const SLOT_STATUSES: ReadonlySet<string> = new Set(['running', 'retrying']);

/** What a task's dependencies allow right now. */
export type DependencyVerdict =
  | { kind: 'ready' }
  | { kind: 'blocked'; on: string[] }
  | { kind: 'missing'; names: string[] }
  | { kind: 'dependency_failed'; dependency: string; status: string };

/**
 * A task's record by name, or undefined: an own-property lookup, so names such as `toString`,
 * `constructor` or `__proto__` never find something inherited from Object.prototype.
 */
export function taskOf(state: SessionState, name: string): TaskRecord | undefined {
  return Object.hasOwn(state.tasks, name) ? state.tasks[name] : undefined;
}

/** The registration index of a task (its agent number), the tie-breaker after priority. */
export function registrationIndex(record: TaskRecord): number {
  return Number(record.agent.slice('Agent-'.length));
}

/**
 * Checks a task's explicit dependencies (`depends_on`).
 *
 * A dependency that failed, was skipped or was cancelled gives `dependency_failed` unless the task's
 * `on_dep_failure` is `run`, in which case any ended dependency counts as done.
 */
export function checkDependencies(state: SessionState, name: string): DependencyVerdict {
  const task = taskOf(state, name);
  if (!task) return { kind: 'missing', names: [name] };
  const missing: string[] = [];
  const blocked: string[] = [];
  for (const dep of task.depends_on) {
    const record = taskOf(state, dep);
    if (!record) {
      missing.push(dep);
    } else if (record.status === 'completed') {
      continue;
    } else if (TERMINAL_STATUSES.has(record.status)) {
      if (task.on_dep_failure === 'skip') return { kind: 'dependency_failed', dependency: dep, status: record.status };
    } else {
      blocked.push(dep);
    }
  }
  if (missing.length > 0) return { kind: 'missing', names: missing };
  if (blocked.length > 0) return { kind: 'blocked', on: blocked };
  return { kind: 'ready' };
}

/**
 * Tasks that must end before `name` may run because they declare a file it declares too (the
 * seeds' implicit dependency): any running task sharing a file, and any earlier-registered task
 * sharing one that has not ended. Paths are compared as written after normalising `./`.
 */
export function fileConflicts(state: SessionState, name: string): string[] {
  const task = taskOf(state, name);
  if (!task || task.files.length === 0) return [];
  const mine = new Set(task.files.map(normaliseFile));
  const index = registrationIndex(task);
  const conflicts: string[] = [];
  for (const [other, record] of Object.entries(state.tasks)) {
    if (other === name || TERMINAL_STATUSES.has(record.status)) continue;
    const holds = SLOT_STATUSES.has(record.status) || registrationIndex(record) < index;
    if (holds && record.files.some((file) => mine.has(normaliseFile(file)))) conflicts.push(other);
  }
  return conflicts;
}

function normaliseFile(file: string): string {
  return file.replace(/^(\.\/)+/, '').replace(/\/+/g, '/');
}

/** Number of tasks holding a worker slot. */
export function busySlots(state: SessionState): number {
  return Object.values(state.tasks).filter((task) => SLOT_STATUSES.has(task.status)).length;
}

/**
 * The waiting tasks that may start now, in the order they should: ready dependencies, no file
 * conflict, sorted by priority (P0 first) then registration order, cut to the free worker slots.
 *
 * @param candidates - restrict the answer to these names (e.g. the tasks a process owns); default all.
 */
export function runnableTasks(state: SessionState, candidates?: ReadonlySet<string>): string[] {
  const free = state.max_workers - busySlots(state);
  if (free <= 0) return [];
  const ready = Object.entries(state.tasks)
    .filter(([, task]) => task.status === 'pending' || task.status === 'waiting')
    .filter(([name]) => checkDependencies(state, name).kind === 'ready' && fileConflicts(state, name).length === 0)
    .sort(([, a], [, b]) => compareForSlot(a, b))
    .map(([name]) => name);
  // Slots go in order: a candidate behind others in the queue waits even if it asked first.
  return ready.slice(0, free).filter((name) => !candidates || candidates.has(name));
}

/** Orders tasks for a free slot: priority (P0 first), then registration order. */
export function compareForSlot(a: TaskRecord, b: TaskRecord): number {
  return PRIORITIES.indexOf(a.priority) - PRIORITIES.indexOf(b.priority) || registrationIndex(a) - registrationIndex(b);
}
