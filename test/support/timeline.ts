// Test helper: facts about when tasks ran, from the recorded start and end times.
import type { SessionState } from '../../scripts/lib/state/schema.ts';

/** Most tasks running at the same instant, from started_at/ended_at (an end at t frees before a start at t). */
export function maxOverlap(state: SessionState): number {
  const points: Array<[number, number]> = [];
  for (const task of Object.values(state.tasks)) {
    if (!task.started_at || !task.ended_at) continue;
    points.push([Date.parse(task.started_at), 1], [Date.parse(task.ended_at), -1]);
  }
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let max = 0;
  for (const [, delta] of points) max = Math.max(max, (current += delta));
  return max;
}

/** Task names ordered by start time. */
export function startOrder(state: SessionState): string[] {
  return Object.entries(state.tasks)
    .filter(([, task]) => task.started_at)
    .sort(([, a], [, b]) => Date.parse(a.started_at!) - Date.parse(b.started_at!))
    .map(([name]) => name);
}
