// The task graph as plain data (task -> dependencies): validation, cycles, topological order, batches, critical path, all in linear time.
import { OrchestratorError } from '../core/errors.ts';

/**
 * A DAG as plain data: each task name mapped to the names it depends on. Either a `Map` or an
 * object whose own keys are the tasks (`Object.fromEntries(...)` or a null-prototype object).
 * Only own keys count: `toString`, `constructor` or `__proto__` are tasks only when they are keys.
 */
export type TaskGraph = ReadonlyMap<string, readonly string[]> | Readonly<Record<string, readonly string[]>>;

/**
 * The graph in index form: tasks numbered 0..n-1 in input order; known dependencies and dependants
 * as compressed adjacency lists (the neighbours of task i are `deps[depStart[i] .. depStart[i+1])`).
 * Dependencies on names that are not tasks are dropped here. Built once per call in
 * O(tasks + edges) with a handful of typed arrays, not one array per task.
 */
interface IndexedGraph {
  names: string[];
  index: Map<string, number>;
  /** Raw dependency lists, in input order (unknown names included). */
  rawDeps: Array<readonly string[]>;
  depStart: Int32Array;
  deps: Int32Array;
  dependantStart: Int32Array;
  dependants: Int32Array;
}

function indexGraph(graph: TaskGraph): IndexedGraph {
  const names: string[] = [];
  const rawDeps: Array<readonly string[]> = [];
  if (graph instanceof Map) {
    for (const [name, list] of graph as ReadonlyMap<string, readonly string[]>) {
      names.push(name);
      rawDeps.push(list ?? []);
    }
  } else {
    const record = graph as Readonly<Record<string, readonly string[]>>;
    // Object.keys lists own keys only; a lookup of an own key never reaches Object.prototype.
    for (const name of Object.keys(record)) {
      names.push(name);
      rawDeps.push(record[name] ?? []);
    }
  }
  const n = names.length;
  const index = new Map<string, number>();
  for (let i = 0; i < n; i++) index.set(names[i]!, i);
  let edges = 0;
  for (const list of rawDeps) edges += list.length;
  const depStart = new Int32Array(n + 1);
  const depsBuffer = new Int32Array(edges);
  const inCount = new Int32Array(n + 1);
  let k = 0;
  for (let i = 0; i < n; i++) {
    depStart[i] = k;
    for (const dep of rawDeps[i]!) {
      const j = index.get(dep);
      if (j === undefined) continue;
      depsBuffer[k++] = j;
      inCount[j]!++;
    }
  }
  depStart[n] = k;
  const deps = depsBuffer.subarray(0, k);
  const dependantStart = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) dependantStart[i + 1] = dependantStart[i]! + inCount[i]!;
  const fill = dependantStart.slice(0, n);
  const dependants = new Int32Array(k);
  for (let i = 0; i < n; i++) for (let e = depStart[i]!; e < depStart[i + 1]!; e++) dependants[fill[deps[e]!]!++] = i;
  return { names, index, rawDeps, depStart, deps, dependantStart, dependants };
}

/** Depth-first search without recursion (a 50,000-task chain would overflow the call stack). */
function cycleIn(g: IndexedGraph): string[] | null {
  const n = g.names.length;
  // 0 unvisited, 1 on the current path, 2 done.
  const state = new Uint8Array(n);
  const positionOnPath = new Int32Array(n).fill(-1);
  const path: number[] = [];
  const nextDep: number[] = [];
  for (let root = 0; root < n; root++) {
    if (state[root] !== 0) continue;
    state[root] = 1;
    positionOnPath[root] = 0;
    path.push(root);
    nextDep.push(0);
    while (path.length > 0) {
      const top = path.length - 1;
      const node = path[top]!;
      const at = g.depStart[node]! + nextDep[top]!;
      if (at < g.depStart[node + 1]!) {
        nextDep[top]!++;
        const dep = g.deps[at]!;
        if (state[dep] === 1) return [...path.slice(positionOnPath[dep]), dep].map((i) => g.names[i]!);
        if (state[dep] === 0) {
          state[dep] = 1;
          positionOnPath[dep] = path.length;
          path.push(dep);
          nextDep.push(0);
        }
        continue;
      }
      state[node] = 2;
      positionOnPath[node] = -1;
      path.pop();
      nextDep.pop();
    }
  }
  return null;
}

/**
 * Finds a dependency cycle, in O(tasks + edges).
 * @returns the cycle as a path that starts and ends on the same task (`['A', 'C', 'B', 'A']`,
 *   meaning A depends on C, C on B, B on A), or null when the graph is acyclic.
 *   Unknown dependencies are ignored here (see {@link validateGraph}).
 */
export function findCycle(graph: TaskGraph): string[] | null {
  return cycleIn(indexGraph(graph));
}

function cycleError(cycle: string[]): OrchestratorError {
  if (cycle.length === 2)
    return new OrchestratorError('dependency_cycle', `Task ${cycle[0]} depends on itself: ${cycle[0]} -> ${cycle[0]}.`);
  // A long cycle is shown by its ends: the message stays readable, the tasks to look at are named.
  const shown =
    cycle.length <= 21
      ? cycle.join(' -> ')
      : `${cycle.slice(0, 10).join(' -> ')} -> ... -> ${cycle.slice(-10).join(' -> ')} (${cycle.length - 1} tasks)`;
  return new OrchestratorError(
    'dependency_cycle',
    `The plan's dependencies form a cycle: ${shown}. Remove one of these dependencies so the tasks form a DAG.`,
  );
}

/** Names for an error message: all of a short list, the first few of a long one. */
function someNames(names: readonly string[], max = 20): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')}, ... (${names.length} in all)`;
}

/**
 * Checks that every dependency names a task of the graph and that there is no cycle, in
 * O(tasks + edges).
 * @throws OrchestratorError `invalid_plan` naming the unknown dependency, or `dependency_cycle`
 *   with the cycle's path, e.g. "T-01 -> T-03 -> T-02 -> T-01".
 */
export function validateGraph(graph: TaskGraph): void {
  const g = indexGraph(graph);
  for (let i = 0; i < g.names.length; i++) {
    const node = g.names[i]!;
    for (const dep of g.rawDeps[i]!) {
      if (!g.index.has(dep)) {
        throw new OrchestratorError(
          'invalid_plan',
          `Task ${node} depends on ${JSON.stringify(dep)}, which is not a task of the plan. Known tasks: ${someNames(g.names)}.`,
        );
      }
      if (dep === node) throw cycleError([node, node]);
    }
  }
  const cycle = cycleIn(g);
  if (cycle) throw cycleError(cycle);
}

function batchesOf(g: IndexedGraph): number[][] {
  const n = g.names.length;
  const remaining = new Int32Array(n);
  for (let i = 0; i < n; i++) remaining[i] = g.depStart[i + 1]! - g.depStart[i]!;
  const batches: number[][] = [];
  let current: number[] = [];
  for (let i = 0; i < n; i++) if (remaining[i] === 0) current.push(i);
  let placed = 0;
  while (current.length > 0) {
    batches.push(current);
    placed += current.length;
    const next: number[] = [];
    for (const node of current) {
      for (let e = g.dependantStart[node]!; e < g.dependantStart[node + 1]!; e++) {
        const child = g.dependants[e]!;
        if (--remaining[child]! === 0) next.push(child);
      }
    }
    // Input order within a batch: sort the indices (a batch of k tasks costs k log k, so the whole
    // is at most n log n, and linear for chains and for graphs of few wide batches).
    current = next.length > 1 ? next.sort((a, b) => a - b) : next;
  }
  if (placed !== n) throw cycleError(cycleIn(g) ?? g.names.filter((_, i) => remaining[i]! > 0));
  return batches;
}

/**
 * Groups tasks into topological batches (Kahn's algorithm by in-degree): batch 1 has no
 * dependencies, batch k depends only on earlier batches. Within a batch, input order is kept.
 * Dependencies outside the graph are ignored (they are already done, or validated elsewhere).
 * Runs in O(tasks + edges) (plus sorting each batch by input order).
 * @throws OrchestratorError `dependency_cycle` if the graph has a cycle.
 */
export function topologicalBatches(graph: TaskGraph): string[][] {
  const g = indexGraph(graph);
  return batchesOf(g).map((batch) => batch.map((i) => g.names[i]!));
}

/** The tasks in one topological order (the batches, flattened). */
export function topologicalOrder(graph: TaskGraph): string[] {
  return topologicalBatches(graph).flat();
}

/**
 * The critical path: the chain of dependent tasks with the largest total duration, which bounds
 * the makespan of any schedule, even with unlimited workers. O(tasks + edges).
 *
 * @param durations - each task's duration (ms), a `Map` or an object (own keys only); missing tasks count as 0.
 * @returns the path from first to last task, and its length (ms).
 * @throws OrchestratorError `dependency_cycle` if the graph has a cycle.
 */
export function criticalPath(
  graph: TaskGraph,
  durations: ReadonlyMap<string, number> | Readonly<Record<string, number>>,
): { path: string[]; lengthMs: number } {
  const g = indexGraph(graph);
  const durationOf = (name: string): number =>
    durations instanceof Map
      ? ((durations as ReadonlyMap<string, number>).get(name) ?? 0)
      : Object.hasOwn(durations, name)
        ? ((durations as Readonly<Record<string, number>>)[name] ?? 0)
        : 0;
  const n = g.names.length;
  const finish = new Float64Array(n);
  const via = new Int32Array(n).fill(-1);
  let end = -1;
  for (const batch of batchesOf(g)) {
    for (const node of batch) {
      let best = 0;
      let bestDep = -1;
      for (let e = g.depStart[node]!; e < g.depStart[node + 1]!; e++) {
        const dep = g.deps[e]!;
        if (finish[dep]! > best || bestDep === -1) {
          best = finish[dep]!;
          bestDep = dep;
        }
      }
      finish[node] = best + durationOf(g.names[node]!);
      via[node] = bestDep;
      // The first task (in topological order) with the largest finish time ends the path.
      if (end === -1 || finish[node] > finish[end]!) end = node;
    }
  }
  const path: string[] = [];
  for (let node = end; node !== -1; node = via[node]!) path.push(g.names[node]!);
  path.reverse();
  return { path, lengthMs: end === -1 ? 0 : finish[end]! };
}
