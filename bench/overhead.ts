// Benchmark 2: overhead per agent, from the spawn call to `running` in the state and from the agent's end to `completed`.
import { resolveSessionPaths } from '../scripts/lib/state/session-paths.ts';
import { readState } from '../scripts/lib/state/state-store.ts';
import { median, p95 } from './lib/stats.ts';
import { StateObserver, startScript, tempProject, waitFor, type Child } from './lib/procs.ts';

/** Overhead samples at one level of simultaneity. */
export interface OverheadRow {
  agents: number;
  rounds: number;
  launcher: string;
  /** Spawn call to `running` visible in the state (ms). */
  startMedianMs: number;
  startP95Ms: number;
  /** The agent's end (`ended_at`, taken when its work returned) to `completed` visible in the state (ms). */
  endMedianMs: number;
  endP95Ms: number;
  /** Spawn of the first agent to exit of the last one, minus the work time (ms). */
  wallOverheadMs: number;
  samples: number;
  problems: string[];
}

const DELAY_MS = 1000;

async function oneRound(
  agents: number,
  env: NodeJS.ProcessEnv | undefined,
): Promise<{ start: number[]; end: number[]; wall: number; problems: string[] }> {
  const project = await tempProject('overhead');
  const observer = new StateObserver(project.sessionDir);
  observer.start();
  try {
    const names = Array.from({ length: agents }, (_, i) => `a${String(i + 1).padStart(2, '0')}`);
    const children = new Map<string, Child>();
    for (const name of names) {
      children.set(
        name,
        startScript(
          'spawn-agent-mock',
          [
            '--task_name',
            name,
            '--goal',
            `overhead ${name}`,
            '--delay_ms',
            String(DELAY_MS),
            '--max_workers',
            String(agents),
            '--session_id',
            'overhead',
            '--quiet',
          ],
          project.dir,
          env,
        ),
      );
    }
    const codes = await Promise.all([...children.values()].map((child) => waitFor(child, 5 * 60_000)));
    const wall = Date.now() - Math.min(...[...children.values()].map((c) => c.spawnedAt)) - DELAY_MS;
    await observer.until((o) => names.every((n) => o.when(n, 'completed') !== undefined), 5000).catch(() => {});
    const state = await readState(resolveSessionPaths({ cwd: project.dir }));
    const start: number[] = [];
    const end: number[] = [];
    const problems: string[] = [];
    if (codes.some((code) => code !== 0)) problems.push(`${codes.filter((c) => c !== 0).length} agent(s) exited non-zero`);
    for (const name of names) {
      const running = observer.when(name, 'running');
      const completed = observer.when(name, 'completed');
      const endedAt = state?.tasks[name]?.ended_at;
      if (running === undefined || completed === undefined || !endedAt) {
        problems.push(`${name}: not seen running and completed`);
        continue;
      }
      start.push(running - children.get(name)!.spawnedAt);
      end.push(completed - Date.parse(endedAt));
    }
    return { start, end, wall, problems };
  } finally {
    observer.stop();
    await project.remove();
  }
}

/** Starts `agents` mock agents at once (`rounds` times) and measures the orchestration overhead of each. */
export async function benchOverhead(options: {
  levels: Array<{ agents: number; rounds: number; launcher?: 'tsx' }>;
  log: (line: string) => void;
}): Promise<OverheadRow[]> {
  const rows: OverheadRow[] = [];
  for (const level of options.levels) {
    const env = level.launcher === 'tsx' ? { ...process.env, DTO_LAUNCH: 'tsx' } : undefined;
    const launcher =
      level.launcher ?? (process.env.DTO_LAUNCH === 'tsx' ? 'tsx' : process.env.DTO_LAUNCH === 'dist' ? 'prebuilt' : 'default');
    options.log(`overhead: ${level.agents} agent(s) at once x ${level.rounds} round(s) (${launcher}) ...`);
    const start: number[] = [];
    const end: number[] = [];
    const walls: number[] = [];
    const problems: string[] = [];
    for (let round = 0; round < level.rounds; round++) {
      const result = await oneRound(level.agents, env);
      start.push(...result.start);
      end.push(...result.end);
      walls.push(result.wall);
      problems.push(...result.problems);
    }
    rows.push({
      agents: level.agents,
      rounds: level.rounds,
      launcher,
      startMedianMs: median(start),
      startP95Ms: p95(start),
      endMedianMs: median(end),
      endP95Ms: p95(end),
      wallOverheadMs: median(walls),
      samples: start.length,
      problems: [...new Set(problems)].slice(0, 5),
    });
    const row = rows.at(-1)!;
    options.log(
      `  spawn->running median ${row.startMedianMs} ms p95 ${row.startP95Ms} ms; end->completed median ${row.endMedianMs} ms p95 ${row.endP95Ms} ms`,
    );
  }
  return rows;
}
