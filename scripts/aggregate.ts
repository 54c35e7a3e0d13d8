/**
 * aggregate: merge the session's results into one report, in dependency (topological) order, with the DAG and timeline as Mermaid diagrams.
 *
 * Usage:   "$S/scripts/run" aggregate [--out FILE] [--json] [--html] [--session_dir DIR]
 * Example: "$S/scripts/run" aggregate --html
 *          (S is this skill's folder; `--help` prints the absolute path of this install's launcher.)
 * Reads:   <cwd>/.agent/sessions/latest.yaml (without the lock), events.jsonl beside it, and each task's result file.
 * Writes:  FILE (default .agent/final_output.md) and, with --html, the same path ending in .html; by temporary file and rename.
 * Exit:    0 written; 1 written, but a completed task is unverified or contradicted (the summary names it and why);
 *          2 usage error or no session.
 */
import { runMain, type CommandSpec } from './lib/cli/cli.ts';
import { flag, parseOptionsOrShowHelp } from './lib/cli/options.ts';
import { EXIT } from './lib/core/errors.ts';
import { DEFAULT_FINAL_OUTPUT, resolveSessionPaths, SESSION_DIR_FLAG } from './lib/state/session-paths.ts';
import { checkLines, rehearsalBanner, verdictsClean } from './lib/report/report-checks.ts';
import { writeFinalReport } from './lib/report/final-report.ts';
import { launcherCommand } from './lib/launcher/dist.ts';
import { renderSummary } from './lib/report/session-summary.ts';

/** The command line: flags, `--help` text and examples. */
export const spec = {
  name: 'aggregate',
  summary:
    'Writes the final report of the current session: an execution summary (completed X of Y, failures with reasons, makespan, ' +
    'sum of durations, achieved parallelism, critical path, cost), a task table, a Mermaid flowchart of the DAG coloured by status, ' +
    "a Mermaid gantt chart of when each task ran, then each task's result in topological order. It also reports what to check " +
    'before presenting the results: permission denials (per task, with the tools), completed tasks with an empty answer, and ' +
    "every completed task's verdict that is not `verified` (unverified: success claimed without evidence; contradicted: the " +
    'receipts or the check disprove the answer), with its evidence; when ' +
    'any task ran with a mock agent, the report and the summary open with a REHEARSAL banner: no real work was done.',
  usage: '[--out FILE] [--json] [--html] [--session_dir DIR]',
  flags: {
    out: flag.string({ placeholder: 'FILE', description: `Report path (default ${DEFAULT_FINAL_OUTPUT}).`, default: DEFAULT_FINAL_OUTPUT }),
    json: flag.boolean({ description: 'Print the summary as JSON on stdout (fields in references/events.md) instead of text.' }),
    html: flag.boolean({ description: 'Also write a self-contained HTML page of the report (FILE with .html), diagrams drawn offline.' }),
    session_dir: SESSION_DIR_FLAG,
  },
  examples: [
    launcherCommand('aggregate'),
    launcherCommand('aggregate', '--html --out docs/analysis.md'),
    launcherCommand('aggregate', '--json > summary.json'),
  ],
  notes: [
    '--json adds "checks": { rehearsal, simulated_tasks, permission_denials: [{ task, count, tools }], empty_results, ' +
      'unverified: [{ task, evidence }], contradicted: [{ task, evidence }] }; each task has its receipts, receipt_path and verdict.',
    'Files: reads .agent/sessions/latest.yaml, events.jsonl and the result files; writes FILE and, with --html, FILE.html.',
    'Exit codes: 0 report written; 1 report written, but a completed task is unverified (success claimed without evidence) or ' +
      'contradicted (its receipts or check disprove it), named in the summary with the evidence; 2 usage error or no session.',
  ],
} satisfies CommandSpec;

/** Writes the report (and the HTML page); returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const parsed = parseOptionsOrShowHelp(argv, spec);
  if (!parsed) return EXIT.ok;
  const { options } = parsed;
  const paths = resolveSessionPaths({ sessionDir: options.session_dir });
  const { data, checks, reportPath, htmlPath } = await writeFinalReport(paths, { outFile: options.out, html: options.html });
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ...data, checks, report_path: reportPath, html_path: htmlPath }, null, 2)}\n`);
  } else {
    const banner = rehearsalBanner(checks, data.total);
    if (banner) process.stdout.write(`${banner}\n`);
    process.stdout.write(renderSummary(data, { variant: 'block' }));
    process.stdout.write(
      `${checkLines(checks, data.total)
        .filter((line) => line !== banner)
        .join('\n')}\n`,
    );
    process.stdout.write(`Wrote ${reportPath}${htmlPath ? ` and ${htmlPath}` : ''}.\n`);
  }
  return verdictsClean(checks) ? EXIT.ok : EXIT.taskFailed;
}

if (process.argv[1]?.endsWith('aggregate.ts')) runMain(main);
