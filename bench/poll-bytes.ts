/**
 * poll-bytes: how much a model reads when it waits for a run with poll-session in slices (issue 10's targets:
 * at most 3 kB per call for a 20-task session, under 40 kB for a whole 30-minute run read in 90 s slices).
 *
 * Usage:   node --import tsx bench/poll-bytes.ts [--slice_s S]      (or: npm run bench -- --only pollbytes)
 * Example: node --import tsx bench/poll-bytes.ts --slice_s 0.5
 * Writes:  temporary projects (removed at the end). Prints a Markdown table.
 *
 * A 30-minute run read in 90 s slices is 20 slices; bytes depend on the number of events and of slices, not on the
 * clock, so the run is scaled down: 20 mock tasks, 4 workers (5 waves), each task 4 slices long, so the run spans
 * about 20 slices of `slice_s`. Each slice is a separate `poll-session --timeout S` process, as a model's Bash call.
 * The default output (event lines since the previous call, one summary line) is compared with --verbose (status
 * tables, the output before slices existed).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runScript } from '../scripts/lib/launcher/run-script.ts';

/** One way of reading the run. */
export interface PollBytesRow {
  mode: 'slices (default)' | '--verbose';
  tasks: number;
  calls: number;
  /** Largest output of one call (bytes). */
  maxBytes: number;
  medianBytes: number;
  totalBytes: number;
  /** The exit code of the last call (0: every task completed). */
  lastExit: number;
}

/** Options of {@link benchPollBytes}. */
export interface PollBytesOptions {
  /** Length of one slice (s); a task lasts 4 slices. */
  sliceS: number;
  tasks?: number;
  workers?: number;
  log?: (line: string) => void;
}

/** Runs the scaled-down run twice (default output, then --verbose) and measures what each call printed. */
export async function benchPollBytes(options: PollBytesOptions): Promise<PollBytesRow[]> {
  const rows: PollBytesRow[] = [];
  for (const mode of ['slices (default)', '--verbose'] as const) {
    rows.push(await measure(mode, options));
    options.log?.(`poll-bytes ${mode}: ${JSON.stringify(rows.at(-1))}`);
  }
  return rows;
}

async function measure(mode: PollBytesRow['mode'], options: PollBytesOptions): Promise<PollBytesRow> {
  const tasks = options.tasks ?? 20;
  const workers = options.workers ?? 4;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dto-bench-pollbytes-'));
  try {
    const delayMs = Math.round(options.sliceS * 4 * 1000);
    const plan = [
      'tasks:',
      ...Array.from(
        { length: tasks },
        (_, i) => `  - { id: T-${String(i + 1).padStart(2, '0')}-analysis-task, goal: "part ${i + 1}", delay_ms: ${delayMs} }`,
      ),
    ];
    await writeFile(path.join(dir, 'plan.yaml'), plan.join('\n') + '\n');
    const started = await runScript('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', String(workers), '--detach'], {
      cwd: dir,
      reject: false,
    });
    if (started.exitCode !== 0) throw new Error(`orchestrate --detach failed: ${started.stderr}`);
    const sizes: number[] = [];
    let exit = 3;
    while (exit === 3 && sizes.length < 500) {
      const args = ['--timeout', String(options.sliceS), ...(mode === '--verbose' ? ['--verbose'] : [])];
      const call = await runScript('poll-session', args, { cwd: dir, reject: false, stripFinalNewline: false });
      exit = call.exitCode ?? 2;
      sizes.push(Buffer.byteLength(call.stdout));
    }
    const sorted = [...sizes].sort((a, b) => a - b);
    return {
      mode,
      tasks,
      calls: sizes.length,
      maxBytes: sorted.at(-1) ?? 0,
      medianBytes: sorted[Math.floor(sorted.length / 2)] ?? 0,
      totalBytes: sizes.reduce((a, b) => a + b, 0),
      lastExit: exit,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The rows as a Markdown table. */
export function renderPollBytes(rows: PollBytesRow[]): string {
  const lines = [
    '| output | tasks | calls | max bytes / call | median bytes / call | total bytes | last exit |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows)
    lines.push(`| ${r.mode} | ${r.tasks} | ${r.calls} | ${r.maxBytes} | ${r.medianBytes} | ${r.totalBytes} | ${r.lastExit} |`);
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('poll-bytes.ts')) {
  const { values } = parseArgs({ options: { slice_s: { type: 'string' } }, strict: true });
  const sliceS = Number(values.slice_s ?? 0.5);
  const rows = await benchPollBytes({ sliceS, log: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`${renderPollBytes(rows)}\n`);
}
