#!/usr/bin/env -S npx tsx
/**
 * bench: measures the orchestrator itself with mock agents of known durations, and writes bench/RESULTS.md.
 *
 * Usage:   npm run bench [-- --quick] [--only makespan,overhead,lock,memory,reaction,pollbytes,startcost] [--out FILE] [--no_build]
 * Example: npm run bench -- --quick
 * Runs:    scripts/build first (prebuilt agents), then each benchmark in turn; every child is started with
 *          node (prebuilt JavaScript or --import tsx), never npx. Speed is judged by ratios measured side
 *          by side in the same run (ours / ideal, ours / make -jN), not by single wall times.
 * Writes:  bench/RESULTS.md (or --out), with the machine, Node version and date; temporary projects under the OS temp dir.
 * Exit:    0 when it ran (targets missed are reported, not failed), 2 on a usage error.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { buildDist } from '../scripts/lib/launcher/build.ts';
import { isDistFresh } from '../scripts/lib/launcher/dist.ts';
import { benchLock, type LockRow } from './lock-writers.ts';
import { benchMakespan, type MakespanRow } from './makespan.ts';
import { benchMemory, type MemoryRow } from './memory.ts';
import { benchOverhead, type OverheadRow } from './overhead.ts';
import { benchReaction, type ReactionRow } from './reaction.ts';
import { benchPollBytes, renderPollBytes, type PollBytesRow } from './poll-bytes.ts';
import { benchStartCost, type StartCostRow } from './startcost.ts';
import { machineInfo, type MachineInfo } from './lib/machine.ts';
import { markdownTable, mb, ms, ratio } from './lib/stats.ts';

const SECTIONS = ['makespan', 'overhead', 'lock', 'memory', 'reaction', 'pollbytes', 'startcost'] as const;
type Section = (typeof SECTIONS)[number];

interface Results {
  machine: MachineInfo;
  mode: 'quick' | 'full';
  launcher: string;
  seconds: number;
  makespan?: MakespanRow[];
  overhead?: OverheadRow[];
  lock?: LockRow[];
  memory?: MemoryRow[];
  reaction?: ReactionRow;
  pollBytes?: PollBytesRow[];
  startCost?: StartCostRow[];
}

/** The targets, each judged on this run's numbers. */
interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
  why: string;
}

function checkTargets(r: Results): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const row of r.makespan ?? []) {
    const at = `${row.tasks} tasks, ${row.workers} workers`;
    const greedy = row.greedyMs / row.idealMs;
    const dagGap = `the ideal is a lower bound: a zero-overhead greedy schedule of this DAG already takes ${ratio(greedy)} of it`;
    const planIdeal = row.planWallMs / row.idealMs;
    checks.push({
      target: `plan runner <= 1.05x ideal (${at})`,
      measured: `${ratio(planIdeal)} (${ms(row.planWallMs)} / ${ms(row.idealMs)})`,
      met: planIdeal <= 1.05,
      why:
        planIdeal <= 1.05
          ? ''
          : `${dagGap}; ours / greedy = ${ratio(row.planWallMs / row.greedyMs)}, of which ${ms(row.planWallMs - row.planSpanMs)} is process start, plan load and registration`,
    });
    const bgIdeal = row.backgroundWallMs / row.idealMs;
    checks.push({
      target: `background mode <= 1.15x ideal (${at})`,
      measured: `${ratio(bgIdeal)} (${ms(row.backgroundWallMs)} / ${ms(row.idealMs)})`,
      met: bgIdeal <= 1.15,
      why:
        bgIdeal <= 1.15
          ? ''
          : `${dagGap}; ${row.tasks} agent processes start at once on ${r.machine.cores} cores (${ms(row.backgroundWallMs - row.backgroundSpanMs)} outside the first-start-to-last-end span)`,
    });
    if (row.xargsMs !== null) {
      const bgXargs = row.backgroundWallMs / row.xargsMs;
      checks.push({
        target: `background mode <= 1.3x xargs -P${row.workers} (${at}, ${row.label ?? 'no dependencies'})`,
        measured: `${ratio(bgXargs)} (${ms(row.backgroundWallMs)} / ${ms(row.xargsMs)})`,
        met: bgXargs <= 1.3,
        why:
          bgXargs <= 1.3
            ? ''
            : `xargs starts each sleep in ~1 ms; here ${row.tasks} Node processes start at once on ${r.machine.cores} cores and no task can start before it is registered (${ms(row.backgroundWallMs - row.backgroundSpanMs)} outside the span)`,
      });
    }
    if (row.tasks === 100) {
      const bgMake = row.backgroundWallMs / row.makeMs;
      checks.push({
        target: `background mode <= 1.3x make -j${row.workers} (${at})`,
        measured: `${ratio(bgMake)} (${ms(row.backgroundWallMs)} / ${ms(row.makeMs)})`,
        met: bgMake <= 1.3,
        why:
          bgMake <= 1.3
            ? ''
            : `${row.tasks} Node processes start at once on ${r.machine.cores} cores: a task cannot start before it and its dependencies are registered, and the registrations spread over seconds`,
      });
    }
    const planMake = row.planWallMs / row.makeMs;
    checks.push({
      target: `plan runner <= make -j${row.workers} + 5% (${at})`,
      measured: `${ratio(planMake)} (${ms(row.planWallMs)} / ${ms(row.makeMs)})`,
      met: planMake <= 1.05,
      why:
        planMake <= 1.05
          ? ''
          : `make starts each sleep in ~1 ms; ours pays one Node start (${ms(row.planWallMs - row.planSpanMs)} outside the span) and a locked state write per transition; make's greedy order also differs`,
    });
  }
  const one = r.overhead?.find((row) => row.agents === 1 && row.launcher !== 'tsx');
  if (one) {
    checks.push({
      target: 'spawn to running < 250 ms median, one agent',
      measured: `${ms(one.startMedianMs)} median, ${ms(one.startP95Ms)} p95`,
      met: one.startMedianMs < 250,
      why: one.startMedianMs < 250 ? '' : `launcher ${one.launcher}: run scripts/build so agents start from prebuilt JavaScript`,
    });
  }
  const paused64 = r.lock?.find((row) => row.writers === 64 && row.pausedHolders > 0);
  if (paused64) {
    const met = paused64.lostUpdates === 0 && paused64.problems.length === 0;
    checks.push({
      target: '64 concurrent writers, lock holders paused past the old 3 s stale time: no lost update',
      measured: `${paused64.lostUpdates} lost, ${paused64.pausedHolders} pauses of ${(paused64.pauseMs / 1000).toFixed(1)} s`,
      met,
      why: met ? '' : paused64.problems.join('; '),
    });
  }
  const lock64 = r.lock?.find((row) => row.writers === 64 && row.pausedHolders === 0);
  if (lock64) {
    const met = lock64.lostUpdates === 0 && lock64.updatesPerSecond >= 150;
    const floor = r.lock?.find((row) => row.label.startsWith('1 process, no lock') && row.tasksInState === 64);
    checks.push({
      target: '64 concurrent writers: no lost update, >= 150 updates/s',
      measured: `${lock64.lostUpdates} lost, ${lock64.updatesPerSecond.toFixed(0)} updates/s`,
      met,
      why: met
        ? ''
        : `one process without the lock reaches ${floor ? floor.updatesPerSecond.toFixed(0) : '?'} updates/s on the same state; ${lock64.attemptsPerUpdate.toFixed(1)} lock attempts per update`,
    });
  }
  for (const row of r.memory ?? []) {
    const met = row.peakSumKB <= 600 * 1024 && row.problems.length === 0;
    checks.push({
      target: `${row.tasks} tasks registered with --max_workers ${row.workers}: <= 600 MB RSS summed over the orchestrator's processes (peak once registered, sampled every 100 ms)`,
      measured: `${mb(row.peakSumKB)} peak over at most ${row.peakProcesses} processes (start-up burst of ${row.tasks} processes at once: ${mb(row.burstPeakSumKB)})`,
      met,
      why: met ? '' : row.problems.join('; ') || `launcher ${row.launcher}; a bare \`node -e 0\` is about 40 MB on this machine`,
    });
  }
  if (r.reaction) {
    checks.push({
      target: 'poll-session reacts within 100 ms',
      measured: `${ms(r.reaction.medianMs)} median, ${ms(r.reaction.p95Ms)} p95, ${ms(r.reaction.maxMs)} max`,
      met: r.reaction.p95Ms <= 100,
      why: r.reaction.p95Ms <= 100 ? '' : 'judged on p95; see the reaction row',
    });
  }
  return checks;
}

/** The results as Markdown (the same text is printed and written to RESULTS.md). */
export function renderResults(r: Results): string {
  const m = r.machine;
  const out: string[] = [
    '# Benchmark results',
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}. Node ${m.node}. Date ${m.date}. ` +
      `Load average at start ${m.load}. Mode ${r.mode}; agents launched with ${r.launcher}; ${Math.round(r.seconds)} s in all.`,
    '',
    'Generated by `npm run bench` (bench/run.ts). Ratios are measured side by side in one run; single wall times on a shared machine are noisy.',
  ];
  if (r.makespan?.length) {
    out.push(
      '',
      '## 1. Makespan against the ideal and make -jN',
      '',
      'Seeded random DAGs, durations 0.5-1.5 s. Ideal = max(critical path, total work / workers). Greedy = a zero-overhead list schedule in plan order. ' +
        '"wall" is from starting the command(s) to the exit of the last process; "span" is first task started to last task ended, from the state.',
      '',
      markdownTable(
        [
          'DAG',
          'tasks',
          'workers',
          'ideal',
          'greedy',
          'xargs -PN',
          'make -jN',
          'plan wall',
          'plan span',
          'plan / ideal',
          'plan / make',
          'bg wall',
          'bg span',
          'bg / ideal',
          'bg / make',
        ],
        r.makespan.map((row) => [
          row.label ?? `random, seed ${row.seed}`,
          String(row.tasks),
          String(row.workers),
          ms(row.idealMs),
          ms(row.greedyMs),
          row.xargsMs === null ? '-' : ms(row.xargsMs),
          ms(row.makeMs),
          ms(row.planWallMs),
          ms(row.planSpanMs),
          ratio(row.planWallMs / row.idealMs),
          ratio(row.planWallMs / row.makeMs),
          ms(row.backgroundWallMs),
          ms(row.backgroundSpanMs),
          ratio(row.backgroundWallMs / row.idealMs),
          ratio(row.backgroundWallMs / row.makeMs),
        ]),
      ),
    );
    const problems = r.makespan.flatMap((row) => row.problems.map((p) => `${row.tasks}/${row.workers}: ${p}`));
    if (problems.length) out.push('', `Problems: ${problems.slice(0, 8).join('; ')}`);
  }
  if (r.overhead?.length) {
    out.push(
      '',
      '## 2. Overhead per agent',
      '',
      'Mock agents of 1 s started at once (one process each). Start = spawn call to `running` visible in the state; ' +
        "end = the agent's end (`ended_at`) to `completed` visible in the state (an outside observer reads the file on every change).",
      '',
      markdownTable(
        ['agents at once', 'launcher', 'samples', 'start median', 'start p95', 'end median', 'end p95'],
        r.overhead.map((row) => [
          String(row.agents),
          row.launcher,
          String(row.samples),
          ms(row.startMedianMs),
          ms(row.startP95Ms),
          ms(row.endMedianMs),
          ms(row.endP95Ms),
        ]),
      ),
    );
    const problems = r.overhead.flatMap((row) => row.problems);
    if (problems.length) out.push('', `Problems: ${problems.slice(0, 8).join('; ')}`);
  }
  if (r.lock?.length) {
    out.push(
      '',
      '## 3. The lock',
      '',
      "Each update: take the lock, read and validate the state, add 1 to a shared counter and to the writer's own task, write a temporary file, rename, append an event, release. " +
        'Writers start together once loaded. Lost updates = expected minus counted. In the "holders paused" run, the bench reads the lock owner\'s pid from the lock file ' +
        'and stops that process (SIGSTOP) while it holds the lock, longer than the old 3 s stale time, then resumes it; its seconds include the pauses, during which nobody may commit.',
      '',
      markdownTable(
        ['run', 'tasks in state', 'updates', 'seconds', 'updates/s', 'lost', 'lock attempts / update'],
        r.lock.map((row) => [
          row.label,
          String(row.tasksInState),
          String(row.totalUpdates),
          row.seconds.toFixed(2),
          row.updatesPerSecond.toFixed(0),
          String(row.lostUpdates),
          Number.isNaN(row.attemptsPerUpdate) ? '-' : row.attemptsPerUpdate.toFixed(2),
        ]),
      ),
    );
    const problems = r.lock.flatMap((row) => row.problems);
    if (problems.length) out.push('', `Problems: ${problems.slice(0, 8).join('; ')}`);
  }
  if (r.memory?.length) {
    out.push(
      '',
      '## 4. Memory while tasks wait',
      '',
      'N spawn-agent-mock tasks started at once with --max_workers W, plus poll-session: a task that cannot start is queued and its process exits, ' +
        'so waiting tasks hold no process. RSS (VmRSS) summed over every process whose working directory is the project, sampled every 100 ms; ' +
        'the peak once every task is registered (what the registered tasks hold), and over the whole run (the N processes starting at once included).',
      '',
      markdownTable(
        [
          'tasks',
          'workers',
          'launcher',
          'peak RSS sum, registered',
          'processes',
          'peak RSS sum, with start-up',
          'processes',
          'samples',
          'wall',
        ],
        r.memory.map((row) => [
          String(row.tasks),
          String(row.workers),
          row.launcher,
          mb(row.peakSumKB),
          String(row.peakProcesses),
          mb(row.burstPeakSumKB),
          String(row.burstPeakProcesses),
          String(row.samples),
          ms(row.wallMs),
        ]),
      ),
    );
  }
  if (r.reaction) {
    const row = r.reaction;
    out.push(
      '',
      '## 5. poll-session reaction time',
      '',
      'poll-session as it is in this tree, stdout to a pipe; from a committed state change (state renamed, event appended) to the first stdout chunk naming the task.',
      '',
      markdownTable(
        ['samples', 'median', 'p95', 'max', 'the write itself (median)'],
        [[String(row.samples), ms(row.medianMs), ms(row.p95Ms), ms(row.maxMs), ms(row.writeMedianMs)]],
      ),
    );
    if (row.problems.length) out.push('', `Problems: ${row.problems.join('; ')}`);
  }
  if (r.pollBytes?.length) {
    out.push(
      '',
      '## 6. What a model reads while it waits (poll-session slices)',
      '',
      'A 30-minute, 20-task run read in 90 s slices, scaled down: 20 mock tasks of 4 slices each on 4 workers (about 20 slices), one ' +
        '`poll-session --timeout S` process per slice until exit 0; bytes of stdout per call. Targets: 3 kB per call, 40 kB per run.',
      '',
      renderPollBytes(r.pollBytes),
    );
  }
  if (r.startCost?.length) {
    out.push(
      '',
      '## 7. CPU of one agent start',
      '',
      'What each `spawn-agent-mock ... &` costs when its task is queued (a dependency never registered: register, decide, exit), ' +
        'in a session already holding 20 tasks; the starts run one after the other in a POSIX shell, whose `times` builtin gives the CPU ' +
        '(user + system) of every process they ran. Dozens of these at once share the cores with the running agents, so this CPU is what ' +
        'delays the first tasks of a burst. "Above Node" subtracts Node starting an empty file.',
      '',
      markdownTable(
        ['started as', 'starts', 'CPU per start', 'above Node', 'wall per start'],
        r.startCost.map((row) => [
          row.label,
          String(row.starts),
          ms(row.cpuPerStartMs),
          row.aboveNodeMs === null ? '-' : ms(row.aboveNodeMs),
          ms(row.wallPerStartMs),
        ]),
      ),
    );
    const problems = r.startCost.flatMap((row) => row.problems);
    if (problems.length) out.push('', `Problems: ${problems.slice(0, 8).join('; ')}`);
  }
  const checks = checkTargets(r);
  if (checks.length) {
    out.push(
      '',
      '## Targets',
      '',
      markdownTable(
        ['target', 'measured', 'result', 'why, when missed'],
        checks.map((c) => [c.target, c.measured, c.met ? 'met' : 'MISSED', c.why || '-']),
      ),
    );
  }
  return `${out.join('\n')}\n`;
}

/** Runs the benchmarks; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      out: { type: 'string' },
      no_build: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      'Usage: npm run bench [-- --quick] [--only makespan,overhead,lock,memory,reaction,pollbytes,startcost] [--out FILE] [--no_build]\n',
    );
    return 0;
  }
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : [...SECTIONS];
  const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length) {
    process.stderr.write(`error: unknown section(s) ${unknown.join(', ')}; expected some of ${SECTIONS.join(', ')}\n`);
    return 2;
  }
  const want = (s: Section) => only.includes(s);
  const quick = Boolean(values.quick);
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const began = Date.now();
  if (!values.no_build && process.env.DTO_LAUNCH !== 'tsx') {
    const built = await buildDist();
    log(`scripts/build: ${built.scripts.length} scripts prebuilt in ${built.ms} ms (${built.outDir})`);
    // Keep using these bundles even if someone edits a source while the benchmark runs.
    process.env.DTO_LAUNCH = 'dist';
  }
  const launcher = isDistFresh('spawn-agent-mock') ? 'prebuilt JavaScript (dist/)' : 'node --import tsx';
  const results: Results = { machine: machineInfo(), mode: quick ? 'quick' : 'full', launcher, seconds: 0 };
  log(
    `bench (${results.mode}) on ${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node}; agents: ${launcher}`,
  );

  if (want('makespan')) {
    results.makespan = await benchMakespan({
      sizes: quick ? [24] : [24, 100],
      workers: [4, 8],
      seed: 20261122,
      independent: { tasks: 40, durationMs: 500, workers: 4 },
      log,
    });
  }
  if (want('overhead')) {
    const levels = quick
      ? [
          { agents: 1, rounds: 5 },
          { agents: 10, rounds: 1 },
          { agents: 50, rounds: 1 },
          { agents: 1, rounds: 3, launcher: 'tsx' as const },
        ]
      : [
          { agents: 1, rounds: 10 },
          { agents: 10, rounds: 3 },
          { agents: 50, rounds: 2 },
          { agents: 1, rounds: 5, launcher: 'tsx' as const },
        ];
    results.overhead = await benchOverhead({ levels: launcher.startsWith('prebuilt') ? levels : levels.filter((l) => !l.launcher), log });
  }
  if (want('lock'))
    results.lock = await benchLock({ writers: [8, 32, 64], updatesEach: 20, pause: { count: quick ? 2 : 4, ms: 3500 }, log });
  if (want('memory')) results.memory = await benchMemory({ tasks: 100, workers: 4, delayMs: quick ? 200 : 500, log });
  if (want('reaction')) results.reaction = await benchReaction({ samples: quick ? 15 : 40, log });
  if (want('pollbytes')) results.pollBytes = await benchPollBytes({ sliceS: 0.5, log });
  if (want('startcost'))
    results.startCost = await benchStartCost({ starts: quick ? 10 : 30, preload: 20, tsx: launcher.startsWith('prebuilt'), log });
  results.seconds = (Date.now() - began) / 1000;

  const text = renderResults(results);
  const out = path.resolve(values.out ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'RESULTS.md'));
  await writeFile(out, text);
  process.stdout.write(`\n${text}\nWritten to ${out}\n`);
  return 0;
}

if (process.argv[1]?.endsWith('run.ts')) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`error: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(2);
    },
  );
}
