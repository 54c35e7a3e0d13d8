// A seeded random DAG of 100 tasks whose agents are all started at once, in a shuffled order, under --max_workers 4:
// every task runs exactly once, never before its dependencies ended, and never more than 4 at once.
import { describe, expect, it } from 'vitest';
import { randomDag, seededRandom } from '../../bench/lib/dag.ts';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { run, start, tempProject } from '../support/project.ts';
import { maxOverlap } from '../support/timeline.ts';

const TASKS = 100;
const WORKERS = 4;
const SEED = 20261201;

describe('background mode: a random DAG started in random order', () => {
  it(
    `${TASKS} agents of a seeded random DAG started at once in shuffled order, --max_workers ${WORKERS}: each runs once, after its dependencies, at most ${WORKERS} at once`,
    { timeout: 600_000 },
    async () => {
      const project = await tempProject('dto-random-dag-');
      const dag = randomDag({ tasks: TASKS, seed: SEED, minMs: 20, maxMs: 120, window: 12, maxDeps: 3, edgeProbability: 0.2 });
      // Fisher-Yates with the same seeded generator: dependants are often started before their dependencies.
      const random = seededRandom(SEED + 1);
      const order = [...dag];
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const startedBeforeADependency = order.filter((task, i) => task.dependsOn.some((dep) => order.findIndex((t) => t.id === dep) > i));
      expect(startedBeforeADependency.length).toBeGreaterThan(10);
      const results = await Promise.all(
        order.map((task) =>
          start(
            'spawn-agent-mock',
            [
              '--task_name',
              task.id,
              '--goal',
              `goal ${task.id}`,
              '--session_id',
              'random-dag',
              '--quiet',
              '--max_workers',
              String(WORKERS),
              '--delay_ms',
              String(task.durationMs),
              '--dep_timeout',
              '600',
              ...(task.dependsOn.length > 0 ? ['--depends_on', task.dependsOn.join(',')] : []),
            ],
            project.dir,
          ),
        ),
      );
      expect(results.map((r) => r.exitCode)).toEqual(order.map(() => 0));
      const poll = await run('poll-session', ['--timeout', '540'], project.dir);
      expect(poll.exitCode, poll.all).toBe(0);
      const state = (await project.state())!;
      expect(Object.keys(state.tasks).sort()).toEqual(dag.map((t) => t.id).sort());
      expect(Object.values(state.tasks).filter((t) => t.status === 'completed' && t.attempts === 1)).toHaveLength(TASKS);
      const events = await readEvents(project.paths.eventsPath);
      expect(events.filter((e) => e.type === 'started')).toHaveLength(TASKS);
      expect(events.filter((e) => e.type === 'completed')).toHaveLength(TASKS);
      // Dependencies ended before their dependants started: by the event log's order, and by the recorded times.
      const at = (type: string, task: string) => events.findIndex((e) => e.type === type && e.task === task);
      const early = dag.filter((task) => task.dependsOn.some((dep) => at('completed', dep) > at('started', task.id)));
      expect(early.map((t) => t.id)).toEqual([]);
      const lateTimes = dag.filter((task) =>
        task.dependsOn.some((dep) => Date.parse(state.tasks[dep]!.ended_at!) > Date.parse(state.tasks[task.id]!.started_at!)),
      );
      expect(lateTimes.map((t) => t.id)).toEqual([]);
      expect(maxOverlap(state)).toBeLessThanOrEqual(WORKERS);
    },
  );
});
