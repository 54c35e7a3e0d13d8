import { describe, expect, it } from 'vitest';
import { criticalPath, findCycle, topologicalBatches, topologicalOrder, validateGraph } from '../scripts/lib/graph.ts';

describe('task graph', () => {
  it('orders a chain', () => {
    expect(topologicalBatches({ c: ['b'], b: ['a'], a: [] })).toEqual([['a'], ['b'], ['c']]);
  });

  it('batches a diamond', () => {
    const graph = { A: [], B: ['A'], C: ['A'], D: ['B', 'C'] };
    expect(topologicalBatches(graph)).toEqual([['A'], ['B', 'C'], ['D']]);
    expect(topologicalOrder(graph)).toEqual(['A', 'B', 'C', 'D']);
  });

  it('keeps plan order inside a wide fan-out batch', () => {
    const graph: Record<string, string[]> = { root: [] };
    for (let i = 1; i <= 20; i++) graph[`leaf-${i}`] = ['root'];
    graph.join = Object.keys(graph).filter((k) => k !== 'root');
    const batches = topologicalBatches(graph);
    expect(batches).toHaveLength(3);
    expect(batches[1]).toEqual(Array.from({ length: 20 }, (_, i) => `leaf-${i + 1}`));
    expect(batches[2]).toEqual(['join']);
  });

  it('reports the path of a cycle', () => {
    const graph = { 'T-01': ['T-03'], 'T-02': ['T-01'], 'T-03': ['T-02'], 'T-04': [] };
    expect(findCycle(graph)).toEqual(['T-01', 'T-03', 'T-02', 'T-01']);
    expect(() => validateGraph(graph)).toThrow('T-01 -> T-03 -> T-02 -> T-01');
    expect(() => topologicalBatches(graph)).toThrow(/cycle: T-01 -> T-03 -> T-02 -> T-01/);
  });

  it('refuses self-dependencies and unknown dependencies', () => {
    expect(() => validateGraph({ a: ['a'] })).toThrow('a -> a');
    expect(() => validateGraph({ a: ['ghost'] })).toThrow(/depends on "ghost", which is not a task/);
    expect(findCycle({ a: [] })).toBeNull();
  });

  it('finds the critical path and its length', () => {
    const graph = { scan: [], quality: ['scan'], security: ['scan'], perf: ['scan'], report: ['quality', 'security', 'perf'] };
    const durations = { scan: 1800, quality: 2000, security: 3200, perf: 2500, report: 1500 };
    expect(criticalPath(graph, durations)).toEqual({ path: ['scan', 'security', 'report'], lengthMs: 6500 });
    expect(criticalPath({}, {})).toEqual({ path: [], lengthMs: 0 });
  });
});
