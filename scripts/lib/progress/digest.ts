// poll-session --until_done: nothing while it waits, then ONE digest of at most 2 kB, whatever the number of tasks.
import { countOf, oneLineBytes } from '../core/format.ts';
import { buildReportData, type ReportData } from '../report/report-data.ts';
import { endedCounts, formatElapsed, summarize, verdictNote } from '../report/session-summary.ts';
import { TERMINAL_STATUSES, type SessionState, type TaskStatus } from '../state/model.ts';
import type { PassInfo, PollOutcome, ProgressSink } from './poll-loop.ts';

/**
 * Most bytes (UTF-8, final newline included) of the digest: what a model reads once, when the
 * background command ends; a 40-task and a 400-task session cost the same.
 */
export const DIGEST_MAX_BYTES = 2048;

/** Longest reason shown per failure (bytes of UTF-8); the full text is in aggregate's report. */
export const DIGEST_REASON_BYTES = 120;

/** Longest list of paths shown per conflict (bytes of UTF-8). */
const DIGEST_PATHS_BYTES = 100;

/** A skip reason that only names a dependency that did not complete (scheduling.ts): counted, not listed. */
const DEPENDENCY_SKIP = /^dependency \S+ (failed|skipped|was cancelled|merge_failed)$/;

/** The statuses listed as failures, in the order they are listed (skips grouped by reason come before cancellations, which the user asked for). */
const FAILURE_ORDER: readonly TaskStatus[] = ['failed', 'merge_failed', 'skipped', 'cancelled'];

/** Options of {@link createDigestSink} and {@link renderDigest}. */
export interface DigestOptions {
  /** Writes text as is (no newline added). */
  write: (text: string) => void;
  /** The limit (s) that ends the wait with exit 3; undefined when there is none. */
  timeoutS?: number;
  /** `--expect`: tasks the session must have before it can be finished. */
  expect?: number;
  /** The command that writes the report, shown once every task ended (e.g. `"<run>" aggregate`). */
  nextCommand: string;
}

/**
 * `--until_done`: prints nothing while the loop waits (reaping, scheduling and replacing go on as
 * usual) and, at the end, the digest of {@link renderDigest}.
 */
export function createDigestSink(options: DigestOptions): ProgressSink {
  return {
    tickMs: 60_000,
    history() {},
    start() {},
    event() {},
    tick() {},
    finish(pass, outcome, exitCode) {
      options.write(renderDigest(pass, outcome, exitCode, options));
    },
  };
}

/** A list in the digest: a header and one `- ` line per item, each item standing for `count` tasks. */
interface Section {
  header: string;
  items: Array<{ text: string; count: number }>;
}

/**
 * The digest, at most {@link DIGEST_MAX_BYTES} bytes with its final newline, e.g.
 * ```text
 * [until_done] All 40 tasks ended: 36 completed, 2 failed, 2 skipped; 4m12s elapsed; exit 1.
 * Failures (2):
 * - T-03 failed: claude exited with code 1: API error (overloaded)
 * - T-09 failed: timed out after 600 s: the claude process tree was terminated (raise --timeout)
 * Skipped because a dependency did not complete: 2 tasks (not listed).
 * Next: "<run>" aggregate
 * ```
 * with, when they apply, merge conflicts (task, paths, kept branch) and predicted conflicts still
 * showing after the skips, then the budget and the rehearsal note. Lists are cut to fit their share of the bytes
 * (shared fairly between the lists present) and end with `- ... and N more (see aggregate)`.
 * Built from {@link buildReportData} and the state alone: no file is read.
 * @param pass - the last pass, or null when the limit came before any session.
 */
export function renderDigest(pass: PassInfo | null, outcome: PollOutcome, exitCode: number, options: Omit<DigestOptions, 'write'>): string {
  if (pass === null) {
    return `[until_done] No session appeared within ${options.timeoutS} s; exit ${exitCode}.\nStill running: run the same command again (exit ${exitCode}).\n`;
  }
  const data = buildReportData(pass.state, pass);
  const ended = outcome === 'completed' || outcome === 'failed';
  const failures = failureSection(data, pass.replacing);
  const outcomeText = outcomeLine(data, pass, ended, exitCode, options);
  const skips = failures.dependencySkips;
  const skipLine = skips > 0 ? [`Skipped because a dependency did not complete: ${countOf(skips, 'task')} (not listed).`] : [];
  const tail = limitLines(data, pass.state);
  const next = ended ? `Next: ${options.nextCommand}` : `Still running: run the same command again (exit ${exitCode}).`;
  const sections = [failures.section, conflictSection(data), predictedSection(pass.state)];
  const present = sections.filter((s): s is Section => s !== null);
  const fixed = [outcomeText, ...skipLine, ...tail, next].reduce((sum, line) => sum + bytes(line) + 1, 0);
  const caps = shareBytes(
    present.map((section) => sectionBytes(section, Infinity)),
    Math.max(0, DIGEST_MAX_BYTES - fixed),
  );
  const [failureLines = [], conflictLines = [], predictedLines = []] = sections.map((section) =>
    section === null ? [] : renderSection(section, caps[present.indexOf(section)]!),
  );
  return fitDigest([outcomeText, ...failureLines, ...skipLine, ...conflictLines, ...predictedLines, ...tail], next);
}

/** The first line: how the wait ended, the counts, the elapsed time and the exit code. */
function outcomeLine(data: ReportData, pass: PassInfo, ended: boolean, exitCode: number, options: Omit<DigestOptions, 'write'>): string {
  const { counts, total } = data;
  const created = Date.parse(data.created_at);
  const endMs = ended && data.ended_at !== null ? Math.max(Date.parse(data.ended_at), created) : pass.now;
  const elapsed = `${formatElapsed(endMs - created)} elapsed`;
  if (ended) {
    return `[until_done] All ${total} tasks ended: ${counts.completed} completed${verdictNote(data.verdicts)}${endedCounts(counts, ['failed', 'merge_failed', 'skipped', 'cancelled'])}; ${elapsed}; exit ${exitCode}.`;
  }
  const { replacing } = summarize(pass.state, { replacing: pass.replacing });
  const running = counts.running + counts.retrying + replacing;
  const waiting = counts.pending + counts.waiting;
  const expecting = options.expect !== undefined && total < options.expect ? ` (${total} of ${options.expect} expected registered)` : '';
  const limit = options.timeoutS === undefined ? 'Stopped' : `Limit of ${options.timeoutS} s reached`;
  return (
    `[until_done] ${limit}: ${counts.completed}/${total} completed, ${running} running, ${waiting} waiting, ` +
    `${counts.failed - replacing} failed${endedCounts(counts, ['merge_failed', 'skipped', 'cancelled'])}${expecting}; ${elapsed}; exit ${exitCode}.`
  );
}

/**
 * The failures to list (failed, merge failed without a recorded conflict, cancelled, skipped for a
 * reason other than a dependency; skips sharing one reason grouped), and the dependency skips,
 * which are only counted: one failure can skip dozens.
 */
function failureSection(data: ReportData, replacing: ReadonlySet<string>): { section: Section | null; dependencySkips: number } {
  const conflicted = new Set((data.merge?.conflicted ?? []).map((c) => c.task));
  const items: Section['items'] = [];
  let dependencySkips = 0;
  for (const status of FAILURE_ORDER) {
    const skipGroups = new Map<string, string[]>();
    for (const failure of data.failures) {
      if (failure.status !== status || replacing.has(failure.task)) continue;
      if (status === 'merge_failed' && conflicted.has(failure.task)) continue;
      const reason = oneLineBytes(failure.error ?? 'no reason recorded', DIGEST_REASON_BYTES);
      if (status === 'skipped' && DEPENDENCY_SKIP.test(failure.error ?? '')) dependencySkips += 1;
      else if (status === 'skipped') skipGroups.set(reason, [...(skipGroups.get(reason) ?? []), failure.task]);
      else items.push({ text: `${failure.task} ${status === 'merge_failed' ? 'merge failed' : status}: ${reason}`, count: 1 });
    }
    for (const [reason, tasks] of skipGroups) {
      const who = tasks.length === 1 ? `${tasks[0]} skipped` : `${tasks.length} skipped (${oneLineBytes(tasks.join(', '), 60)})`;
      items.push({ text: `${who}: ${reason}`, count: tasks.length });
    }
  }
  const listed = items.reduce((sum, item) => sum + item.count, 0);
  return { section: items.length === 0 ? null : { header: `Failures (${listed}):`, items }, dependencySkips };
}

/** Merge conflicts of an isolated session: the task, its conflicting paths and its kept branch (merge records). */
function conflictSection(data: ReportData): Section | null {
  const conflicted = data.merge?.conflicted ?? [];
  if (conflicted.length === 0) return null;
  return {
    header: `Merge conflicts (${conflicted.length}; branches kept):`,
    items: conflicted.map((c) => ({
      text: `${c.task}: ${oneLineBytes(c.paths.join(', '), DIGEST_PATHS_BYTES)} (branch ${c.branch})`,
      count: 1,
    })),
  };
}

/** Running tasks whose work so far would conflict with the integration branch (`conflict_predicted`). */
function predictedSection(state: SessionState): Section | null {
  const items = Object.entries(state.tasks)
    .filter(([, task]) => !TERMINAL_STATUSES.has(task.status) && task.predicted_conflicts.length > 0)
    .map(([name, task]) => ({
      text: `${name} would conflict in ${oneLineBytes(task.predicted_conflicts.join(', '), DIGEST_PATHS_BYTES)}`,
      count: 1,
    }));
  return items.length === 0 ? null : { header: `Predicted conflicts still showing (${items.length}):`, items };
}

/** The budget (when the session has one) and the rehearsal banner (when any task ran with a mock agent). */
function limitLines(data: ReportData, state: SessionState): string[] {
  const lines: string[] = [];
  const { budget } = data;
  if (budget.usd !== null) {
    const money = (usd: number) => `$${usd.toFixed(4)}`;
    const reached = budget.reached_at ? `reached, no task started after it (--on_budget ${budget.on_budget})` : 'not reached';
    lines.push(`Budget: spent ${money(budget.spent_usd)} of ${money(budget.usd)}; ${reached}.`);
  }
  const mock = Object.values(state.tasks).filter((task) => task.runner === 'mock').length;
  if (mock > 0) lines.push(`Rehearsal: ${mock} of ${data.total} tasks ran with mock agents; their results are placeholders, not findings.`);
  return lines;
}

function bytes(text: string): number {
  return Buffer.byteLength(text);
}

/** `- ... and N more (see aggregate)`. */
function moreLine(count: number): string {
  return `- ... and ${count} more (see aggregate)`;
}

/**
 * The section's lines within `cap` bytes (newlines included): the header, items while they fit
 * with room left for the "more" line, then that line. The header and the "more" line are kept even
 * when `cap` is smaller.
 */
function renderSection(section: Section, cap: number): string[] {
  const lines = [section.header];
  let used = bytes(section.header) + 1;
  const total = section.items.reduce((sum, item) => sum + item.count, 0);
  let shown = 0;
  for (const [i, item] of section.items.entries()) {
    const line = `- ${item.text}`;
    const last = i === section.items.length - 1;
    const reserve = last ? 0 : bytes(moreLine(total)) + 1;
    if (used + bytes(line) + 1 + reserve > cap) break;
    lines.push(line);
    used += bytes(line) + 1;
    shown += item.count;
  }
  if (shown < total) lines.push(moreLine(total - shown));
  return lines;
}

/** Bytes of the section rendered within `cap` (Infinity: in full). */
function sectionBytes(section: Section, cap: number): number {
  return renderSection(section, cap).reduce((sum, line) => sum + bytes(line) + 1, 0);
}

/**
 * Shares `budget` bytes between lists that need `needs` bytes: each gets what it needs up to an
 * equal share of what is left, the smallest first, so what a short list leaves goes to the others.
 * @returns the cap of each list, in the order of `needs`.
 */
export function shareBytes(needs: readonly number[], budget: number): number[] {
  const caps = needs.map(() => 0);
  let left = budget;
  const order = needs.map((need, i) => [need, i] as const).sort((a, b) => a[0] - b[0]);
  for (const [k, [need, i]] of order.entries()) {
    caps[i] = Math.min(need, Math.floor(left / (order.length - k)));
    left -= caps[i];
  }
  return caps;
}

/**
 * Joins the lines and `next` (always last) into the digest; should they still exceed
 * {@link DIGEST_MAX_BYTES} (very long paths in the commands), lines before `next` are dropped from
 * the end, then every line is cut.
 */
function fitDigest(lines: string[], next: string): string {
  const kept = [...lines];
  const size = () => [...kept, next].reduce((sum, line) => sum + bytes(line) + 1, 0);
  while (size() > DIGEST_MAX_BYTES && kept.length > 1) kept.pop();
  const all = [...kept, next];
  if (size() <= DIGEST_MAX_BYTES) return `${all.join('\n')}\n`;
  const each = Math.floor(DIGEST_MAX_BYTES / all.length) - 1;
  return `${all.map((line) => oneLineBytes(line, each)).join('\n')}\n`;
}
