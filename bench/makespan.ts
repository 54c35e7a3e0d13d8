// Benchmark 1: makespan of the plan runner and background mode against the ideal schedule and `make -jN` on the same DAG of sleeps.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { resolveSessionPaths } from '../scripts/lib/state/session-paths.ts';
import { readState } from '../scripts/lib/state/state-store.ts';
import type { SessionState } from '../scripts/lib/state/schema.ts';
import {
  criticalPathMs,
  greedyMakespanMs,
  idealMakespanMs,
  makefile,
  planYaml,
  randomDag,
  totalWorkMs,
  type BenchTask,
} from './lib/dag.ts';
import { startCommand, startScript, tempProject, waitFor } from './lib/procs.ts';

/** One DAG size and worker count, run three ways side by side. */
export interface MakespanRow {
  tasks: number;
  workers: number;
  seed: number;
  criticalPathMs: number;
  totalWorkMs: number;
  idealMs: number;
  /** Zero-overhead greedy list schedule in id order: the part of the gap that is the DAG's. */
  greedyMs: number;
  makeMs: number;
  /** From starting `orchestrate` to its exit. */
  planWallMs: number;
  /** First task started to last task ended, from the state. */
  planSpanMs: number;
  /**
   * From starting the first agent process until every task has ended: the exit of poll-session
   * --expect N, started beside them (a queued task's own process exits at once; another process
   * starts its agent later).
   */
  backgroundWallMs: number;
  backgroundSpanMs: number;
  /** Exit code of poll-session --expect N, run beside the background agents. */
  pollExit: number | null;
  /** `xargs -P<workers>` running the same sleeps, for DAGs without dependencies (else null). */
  xargsMs: number | null;
  /** A name for the configuration (e.g. "independent"); null for the seeded random DAGs. */
  label: string | null;
  problems: string[];
}

const TIMEOUT_MS = 10 * 60_000;

/** First start to last end in a finished session (ms), and what did not complete. */
function span(state: SessionState | null, dag: readonly BenchTask[]): { spanMs: number; problems: string[] } {
  const problems: string[] = [];
  if (!state) return { spanMs: NaN, problems: ['no session state'] };
  let first = Infinity;
  let last = -Infinity;
  for (const task of dag) {
    const record = state.tasks[task.id];
    if (record?.status !== 'completed') {
      problems.push(`${task.id} ${record?.status ?? 'missing'}`);
      continue;
    }
    first = Math.min(first, Date.parse(record.started_at!));
    last = Math.max(last, Date.parse(record.ended_at!));
  }
  return { spanMs: last - first, problems };
}

async function runMake(dag: readonly BenchTask[], workers: number): Promise<number> {
  const project = await tempProject('make');
  try {
    await writeFile(path.join(project.dir, 'Makefile'), makefile(dag));
    const child = startCommand('make', [`-j${workers}`, '-s', 'all'], project.dir);
    const code = await waitFor(child, TIMEOUT_MS);
    if (code !== 0) throw new Error(`make failed (${code}): ${child.stderr}`);
    return Date.now() - child.spawnedAt;
  } finally {
    await project.remove();
  }
}

/** The same independent sleeps through `xargs -P<workers>` (no shell): the issue's peer for tasks without dependencies. */
async function runXargs(dag: readonly BenchTask[], workers: number): Promise<number> {
  const project = await tempProject('xargs');
  try {
    const child = startCommand('xargs', ['-P', String(workers), '-n', '1', 'sleep'], project.dir);
    child.proc.stdin!.end(dag.map((task) => (task.durationMs / 1000).toFixed(3)).join('\n') + '\n');
    const code = await waitFor(child, TIMEOUT_MS);
    if (code !== 0) throw new Error(`xargs failed (${code}): ${child.stderr}`);
    return Date.now() - child.spawnedAt;
  } finally {
    await project.remove();
  }
}

async function runPlan(dag: readonly BenchTask[], workers: number): Promise<{ wallMs: number; spanMs: number; problems: string[] }> {
  const project = await tempProject('plan');
  try {
    await writeFile(path.join(project.dir, 'plan.yaml'), planYaml(dag));
    const child = startScript('orchestrate', ['plan.yaml', '--workers', String(workers), '--agent', 'mock'], project.dir);
    const code = await waitFor(child, TIMEOUT_MS);
    const wallMs = Date.now() - child.spawnedAt;
    const result = span(await readState(resolveSessionPaths({ cwd: project.dir })), dag);
    if (code !== 0) result.problems.unshift(`orchestrate exit ${code}: ${child.stderr.slice(-300)}`);
    return { wallMs, ...result };
  } finally {
    await project.remove();
  }
}

/** One spawn-agent-mock per task, all started at once, plus poll-session --expect N (background mode); exported for side-by-side experiments. */
export async function runBackground(
  dag: readonly BenchTask[],
  workers: number,
): Promise<{ wallMs: number; spanMs: number; problems: string[]; pollExit: number | null }> {
  const project = await tempProject('bg');
  try {
    const agents = dag.map((task) =>
      startScript(
        'spawn-agent-mock',
        [
          '--task_name',
          task.id,
          '--goal',
          `bench task ${task.id}`,
          '--delay_ms',
          String(task.durationMs),
          ...(task.dependsOn.length > 0 ? ['--depends_on', task.dependsOn.join(',')] : []),
          '--max_workers',
          String(workers),
          '--session_id',
          'bench',
          '--quiet',
        ],
        project.dir,
      ),
    );
    const poll = startScript('poll-session', ['--expect', String(dag.length), '--timeout', String(TIMEOUT_MS / 1000)], project.dir);
    const codes = await Promise.all(agents.map((agent) => waitFor(agent, TIMEOUT_MS)));
    const pollExit = await waitFor(poll, TIMEOUT_MS).catch(() => null);
    const wallMs = Date.now() - agents[0]!.spawnedAt;
    const result = span(await readState(resolveSessionPaths({ cwd: project.dir })), dag);
    const failed = codes.filter((code) => code !== 0).length;
    if (pollExit !== 0) result.problems.unshift(`poll-session exit ${pollExit}`);
    if (failed > 0)
      result.problems.unshift(`${failed} agent(s) exited non-zero: ${agents.find((a) => a.stderr)?.stderr.slice(-300) ?? ''}`);
    return { wallMs, ...result, pollExit };
  } finally {
    await project.remove();
  }
}

/**
 * Runs each (tasks, workers) configuration three ways, one right after the other: make -jN,
 * orchestrate (the plan runner) and one spawn-agent-mock per task (background mode).
 */
export async function benchMakespan(options: {
  sizes: number[];
  workers: number[];
  seed: number;
  /** Also run `tasks` independent tasks of `durationMs` each on `workers`, beside xargs -P (the issue's 40 x 0.5 s on 4). */
  independent?: { tasks: number; durationMs: number; workers: number };
  log: (line: string) => void;
}): Promise<MakespanRow[]> {
  const rows: MakespanRow[] = [];
  const configs: Array<{ dag: BenchTask[]; seed: number; workers: number[]; label: string | null }> = [];
  if (options.independent) {
    const { tasks, durationMs, workers } = options.independent;
    const dag = Array.from({ length: tasks }, (_, i) => ({
      id: `T${String(i + 1).padStart(3, '0')}`,
      durationMs,
      dependsOn: [] as string[],
    }));
    configs.push({ dag, seed: 0, workers: [workers], label: `independent ${durationMs / 1000} s` });
  }
  for (const tasks of options.sizes) {
    const seed = options.seed + tasks;
    configs.push({ dag: randomDag({ tasks, seed }), seed, workers: options.workers, label: null });
  }
  for (const { dag, seed, label } of configs) {
    const tasks = dag.length;
    for (const workers of configs.find((c) => c.dag === dag)!.workers) {
      options.log(`makespan: ${label ?? 'random DAG'}, ${tasks} tasks, ${workers} workers (seed ${seed}) ...`);
      const xargsMs = dag.every((task) => task.dependsOn.length === 0) ? await runXargs(dag, workers) : null;
      const makeMs = await runMake(dag, workers);
      const plan = await runPlan(dag, workers);
      const background = await runBackground(dag, workers);
      rows.push({
        tasks,
        workers,
        seed,
        criticalPathMs: criticalPathMs(dag),
        totalWorkMs: totalWorkMs(dag),
        idealMs: idealMakespanMs(dag, workers),
        greedyMs: greedyMakespanMs(dag, workers),
        makeMs,
        planWallMs: plan.wallMs,
        planSpanMs: plan.spanMs,
        backgroundWallMs: background.wallMs,
        backgroundSpanMs: background.spanMs,
        pollExit: background.pollExit,
        xargsMs,
        label,
        problems: [...plan.problems.map((p) => `plan: ${p}`), ...background.problems.map((p) => `background: ${p}`)],
      });
      const row = rows.at(-1)!;
      options.log(
        `  ideal ${row.idealMs} ms,${row.xargsMs === null ? '' : ` xargs ${row.xargsMs} ms,`} make ${row.makeMs} ms, plan ${row.planWallMs} ms, background ${row.backgroundWallMs} ms` +
          (row.problems.length ? `; problems: ${row.problems.slice(0, 3).join('; ')}` : ''),
      );
    }
  }
  return rows;
}
