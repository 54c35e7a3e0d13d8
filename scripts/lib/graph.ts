// The task graph as plain data (Record<task, dependencies>): validation, cycles, topological order, batches, critical path.
import { OrchestratorError } from './errors.ts';

/** A DAG as plain data: each task name mapped to the names it depends on. */
export type TaskGraph = Record<string, readonly string[]>;

/**
 * Finds a dependency cycle.
 * @returns the cycle as a path that starts and ends on the same task (`['A', 'C', 'B', 'A']`,
 *   meaning A depends on C, C on B, B on A), or null when the graph is acyclic.
 *   Unknown dependencies are ignored here (see {@link validateGraph}).
 */
export function findCycle(graph: TaskGraph): string[] | null {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    state.set(node, 'visiting');
    stack.push(node);
    for (const dep of graph[node] ?? []) {
      if (!(dep in graph)) continue;
      const seen = state.get(dep);
      if (seen === 'visiting') return [...stack.slice(stack.indexOf(dep)), dep];
      if (seen === undefined) {
        const cycle = visit(dep);
        if (cycle) return cycle;
      }
    }
    stack.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of Object.keys(graph)) {
    if (state.has(node)) continue;
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return null;
}

/**
 * Checks that every dependency names a task of the graph and that there is no cycle.
 * @throws OrchestratorError `invalid_plan` naming the unknown dependency, or `dependency_cycle`
 *   with the cycle's path, e.g. "T-01 -> T-03 -> T-02 -> T-01".
 */
export function validateGraph(graph: TaskGraph): void {
  for (const [node, deps] of Object.entries(graph)) {
    for (const dep of deps) {
      if (!(dep in graph)) {
        throw new OrchestratorError(
          'invalid_plan',
          `Task ${node} depends on ${JSON.stringify(dep)}, which is not a task of the plan. Known tasks: ${Object.keys(graph).join(', ')}.`,
        );
      }
      if (dep === node) throw new OrchestratorError('dependency_cycle', `Task ${node} depends on itself: ${node} -> ${node}.`);
    }
  }
  const cycle = findCycle(graph);
  if (cycle) {
    throw new OrchestratorError(
      'dependency_cycle',
      `The plan's dependencies form a cycle: ${cycle.join(' -> ')}. Remove one of these dependencies so the tasks form a DAG.`,
    );
  }
}

/**
 * Groups tasks into topological batches (Kahn's algorithm by in-degree): batch 1 has no
 * dependencies, batch k depends only on earlier batches. Within a batch, input order is kept.
 * Dependencies outside the graph are ignored (they are already done, or validated elsewhere).
 * @throws OrchestratorError `dependency_cycle` if the graph has a cycle.
 */
export function topologicalBatches(graph: TaskGraph): string[][] {
  const nodes = Object.keys(graph);
  const remaining = new Map(nodes.map((node) => [node, (graph[node] ?? []).filter((dep) => dep in graph).length]));
  const dependants = new Map<string, string[]>(nodes.map((node) => [node, []]));
  for (const node of nodes) for (const dep of graph[node] ?? []) if (dep in graph) dependants.get(dep)!.push(node);
  const batches: string[][] = [];
  let current = nodes.filter((node) => remaining.get(node) === 0);
  let placed = 0;
  while (current.length > 0) {
    batches.push(current);
    placed += current.length;
    const next = new Set<string>();
    for (const node of current) {
      for (const child of dependants.get(node)!) {
        const left = remaining.get(child)! - 1;
        remaining.set(child, left);
        if (left === 0) next.add(child);
      }
    }
    current = nodes.filter((node) => next.has(node));
  }
  if (placed !== nodes.length) validateGraph(graph);
  return batches;
}

/** The tasks in one topological order (the batches, flattened). */
export function topologicalOrder(graph: TaskGraph): string[] {
  return topologicalBatches(graph).flat();
}

/**
 * The critical path: the chain of dependent tasks with the largest total duration, which bounds
 * the makespan of any schedule, even with unlimited workers.
 *
 * @param durations - each task's duration (ms); missing tasks count as 0.
 * @returns the path from first to last task, and its length (ms).
 */
export function criticalPath(graph: TaskGraph, durations: Record<string, number>): { path: string[]; lengthMs: number } {
  const finish = new Map<string, number>();
  const via = new Map<string, string | null>();
  for (const node of topologicalOrder(graph)) {
    let best = 0;
    let bestDep: string | null = null;
    for (const dep of graph[node] ?? []) {
      if (!(dep in graph)) continue;
      const value = finish.get(dep)!;
      if (value > best || bestDep === null) {
        best = value;
        bestDep = dep;
      }
    }
    finish.set(node, best + (durations[node] ?? 0));
    via.set(node, bestDep);
  }
  let end: string | null = null;
  for (const [node, value] of finish) if (end === null || value > finish.get(end)!) end = node;
  const path: string[] = [];
  for (let node = end; node !== null; node = via.get(node) ?? null) path.unshift(node);
  return { path, lengthMs: end === null ? 0 : finish.get(end)! };
}
