// Seeded random task DAGs with known durations, their ideal makespan, and the same DAG as a plan and as a Makefile.

/** One task of a benchmark DAG (ids sort in topological order). */
export interface BenchTask {
  id: string;
  /** Work time of the mock agent (ms). */
  durationMs: number;
  dependsOn: string[];
}

/** mulberry32: a small seeded PRNG returning floats in [0, 1). Same seed, same sequence, on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random DAG: task i may depend on up to `maxDeps` of the `window` tasks before it (each with
 * probability `edgeProbability`), so ids are already a topological order. Durations are uniform in
 * [minMs, maxMs], rounded to 10 ms.
 */
export function randomDag(options: {
  tasks: number;
  seed: number;
  minMs?: number;
  maxMs?: number;
  window?: number;
  maxDeps?: number;
  edgeProbability?: number;
}): BenchTask[] {
  const { tasks, seed, minMs = 500, maxMs = 1500, window = 12, maxDeps = 3, edgeProbability = 0.15 } = options;
  const random = seededRandom(seed);
  const width = String(tasks).length;
  const out: BenchTask[] = [];
  for (let i = 0; i < tasks; i++) {
    const deps: string[] = [];
    for (let j = Math.max(0, i - window); j < i && deps.length < maxDeps; j++) {
      if (random() < edgeProbability) deps.push(out[j]!.id);
    }
    out.push({
      id: `t${String(i + 1).padStart(width, '0')}`,
      durationMs: Math.round((minMs + random() * (maxMs - minMs)) / 10) * 10,
      dependsOn: deps,
    });
  }
  return out;
}

/** Length of the longest dependency chain, counting durations (ms). */
export function criticalPathMs(dag: readonly BenchTask[]): number {
  const finish = new Map<string, number>();
  for (const task of dag) finish.set(task.id, Math.max(0, ...task.dependsOn.map((d) => finish.get(d)!)) + task.durationMs);
  return Math.max(...finish.values());
}

/** Sum of all durations (ms). */
export function totalWorkMs(dag: readonly BenchTask[]): number {
  return dag.reduce((sum, task) => sum + task.durationMs, 0);
}

/** The lower bound no schedule can beat: max(critical path, total work / workers) (ms). */
export function idealMakespanMs(dag: readonly BenchTask[], workers: number): number {
  return Math.max(criticalPathMs(dag), totalWorkMs(dag) / workers);
}

/**
 * Makespan of a greedy list schedule with zero overhead, taking ready tasks in id order (what the
 * orchestrator does with equal priorities): how much of the gap to the ideal is the DAG's, not ours (ms).
 */
export function greedyMakespanMs(dag: readonly BenchTask[], workers: number): number {
  const done = new Map<string, number>();
  const running: Array<{ id: string; end: number }> = [];
  const pending = [...dag];
  let now = 0;
  while (pending.length > 0 || running.length > 0) {
    for (let i = 0; i < pending.length && running.length < workers;) {
      const task = pending[i]!;
      if (task.dependsOn.every((d) => (done.get(d) ?? Infinity) <= now)) {
        running.push({ id: task.id, end: now + task.durationMs });
        pending.splice(i, 1);
      } else {
        i++;
      }
    }
    running.sort((a, b) => a.end - b.end);
    const next = running.shift()!;
    now = next.end;
    done.set(next.id, now);
    while (running.length > 0 && running[0]!.end === now) done.set(running.shift()!.id, now);
  }
  return now;
}

/** The DAG as an orchestrate YAML plan (mock agents sleep `delay_ms`). */
export function planYaml(dag: readonly BenchTask[]): string {
  const lines = dag.map(
    (task) =>
      `  - { id: ${task.id}, goal: "bench task ${task.id}", depends_on: [${task.dependsOn.join(', ')}], delay_ms: ${task.durationMs} }`,
  );
  return `tasks:\n${lines.join('\n')}\n`;
}

/** The DAG as a Makefile of `sleep` targets, for `make -jN all`. */
export function makefile(dag: readonly BenchTask[]): string {
  const ids = dag.map((task) => task.id);
  const rules = dag.map(
    (task) => `${task.id}:${task.dependsOn.map((d) => ` ${d}`).join('')}\n\t@sleep ${(task.durationMs / 1000).toFixed(3)}`,
  );
  return `.PHONY: all ${ids.join(' ')}\nall: ${ids.join(' ')}\n\n${rules.join('\n\n')}\n`;
}
