// Writing the final report (final_output.md, optionally its HTML page) from the session on disk: what aggregate does, and poll-session --until_done at the end.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../state/atomic-write.ts';
import { readEvents } from '../state/events.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { requireState } from '../state/state-store.ts';
import { checkResults, type ResultChecks } from './report-checks.ts';
import { buildReportData, type ReportData } from './report-data.ts';
import { renderReportHtml } from './report-html.ts';
import { renderReport } from './report.ts';

/** What {@link writeFinalReport} wrote, and the data it wrote it from. */
export interface FinalReport {
  /** The summary of the session (see references/events.md, "The summary object"). */
  data: ReportData;
  checks: ResultChecks;
  /** Absolute path of the Markdown report. */
  reportPath: string;
  /** Absolute path of the HTML page, or null when none was asked for. */
  htmlPath: string | null;
}

/**
 * Reads the session (state without the lock, its events, each task's result file) and writes the report to `outFile`
 * (by temporary file and rename: a failed write leaves the previous report and no temporary file), and with `html`
 * the same path ending in `.html`.
 *
 * @param outFile - the report's path, relative to the current folder or absolute.
 * @param now - the clock (ms since the epoch) the report is dated by.
 * @throws OrchestratorError `no_session` (exit 2) when there is no session, `corrupt_state` for an unusable state file.
 */
export async function writeFinalReport(
  paths: SessionPaths,
  options: { outFile: string; html?: boolean; now?: number },
): Promise<FinalReport> {
  const reportPath = path.resolve(options.outFile);
  const htmlPath = options.html ? `${reportPath.replace(/\.(md|markdown)$/i, '')}.html` : null;
  const state = await requireState(paths);
  const events = (await readEvents(paths.eventsPath)).filter((event) => event.session_id === state.session_id);
  const now = options.now ?? Date.now();
  const checks = await checkResults(state);
  const report = await renderReport(state, reportPath, { events, now, checks });
  await writeAtomically(reportPath, report);
  if (htmlPath) await writeAtomically(htmlPath, await renderReportHtml(report, `Final output: session ${state.session_id}`));
  return { data: buildReportData(state, { events, now }), checks, reportPath, htmlPath };
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, text, { action: 'write the report' });
}
