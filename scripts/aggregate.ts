#!/usr/bin/env -S npx tsx
/**
 * aggregate: merge the session's results into one report, in dependency (topological) order.
 *
 * Usage:   npx tsx scripts/aggregate.ts [--out FILE] [--session_dir DIR]
 * Example: npx tsx scripts/aggregate.ts --out .agent/final_output.md
 * Reads:   <cwd>/.agent/sessions/latest.yaml (without the lock) and each task's result file.
 * Writes:  FILE (default .agent/final_output.md), by temporary file and rename.
 * Exit:    0 written, 2 usage error or no session.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseCommandLine, renderHelp, runMain, stringFlag, type CommandSpec } from './lib/cli.ts';
import { EXIT } from './lib/errors.ts';
import { formatDuration } from './lib/format.ts';
import { renderReport } from './lib/report.ts';
import { summarize } from './lib/session-summary.ts';
import { DEFAULT_FINAL_OUTPUT, resolveSessionPaths } from './lib/session-paths.ts';
import { requireState } from './lib/state-store.ts';

export const spec: CommandSpec = {
  name: 'aggregate',
  summary:
    'Writes the final report of the current session: a summary (counts, makespan, sum of durations, achieved parallelism, ' +
    'critical path), a table of tasks, then each task\'s result in topological order.',
  usage: '[--out FILE] [--session_dir DIR]',
  flags: {
    out: { type: 'string', placeholder: 'FILE', description: `Report path (default ${DEFAULT_FINAL_OUTPUT}).` },
    session_dir: { type: 'string', placeholder: 'DIR', description: 'Session folder (default .agent/sessions).' },
  },
  examples: ['npx tsx scripts/aggregate.ts', 'npx tsx scripts/aggregate.ts --out docs/analysis.md'],
  notes: ['Exit codes: 0 report written, 2 usage error or no session.'],
};

/** Writes the report; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const parsed = parseCommandLine(argv, spec);
  if (parsed.help) {
    process.stdout.write(renderHelp(spec));
    return EXIT.ok;
  }
  const paths = resolveSessionPaths({ sessionDir: stringFlag(parsed.flags, 'session_dir') });
  const outFile = path.resolve(stringFlag(parsed.flags, 'out') ?? DEFAULT_FINAL_OUTPUT);
  const state = await requireState(paths);
  const report = await renderReport(state, outFile);
  await mkdir(path.dirname(outFile), { recursive: true });
  const tmp = `${outFile}.${process.pid}.tmp`;
  await writeFile(tmp, report, 'utf8');
  await rename(tmp, outFile);
  const summary = summarize(state);
  process.stdout.write(
    `Wrote ${outFile}: ${summary.counts.completed} of ${summary.total} tasks completed, makespan ${formatDuration(summary.makespanMs)}, ` +
      `parallelism ${summary.parallelism === null ? '-' : summary.parallelism.toFixed(2) + 'x'}.\n`,
  );
  return EXIT.ok;
}

if (process.argv[1]?.endsWith('aggregate.ts')) runMain(main);
