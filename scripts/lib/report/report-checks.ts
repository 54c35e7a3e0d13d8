// What to check before presenting a session's results: simulated (mock) tasks, permission denials, empty answers, verdicts.
import { readResultFile } from '../execution/result-file.ts';
import type { SessionState } from '../state/model.ts';

/** One task whose agent had tool calls denied by its permissions. */
export interface DenialReport {
  task: string;
  /** How many tool calls were denied (the state's `permission_denials`, else the result file's count). */
  count: number;
  /** Names of the denied tools (result file frontmatter `denied_tools`), e.g. `["Bash", "WebFetch"]`; may be empty when only the count is known. */
  tools: string[];
}

/** The checks of a session (aggregate's summary and `--json` field `checks`). */
export interface ResultChecks {
  /** True when any task ran with a mock agent: the session is a rehearsal and its results are not findings. */
  rehearsal: boolean;
  /** Tasks that ran with mock agents (runner `mock`), in state order. */
  simulated_tasks: string[];
  /** Tasks whose agent had tool calls denied, in state order. */
  permission_denials: DenialReport[];
  /** Completed tasks whose answer is empty (no result file, an empty body, or `empty_result: true` in it), in state order. */
  empty_results: string[];
  /** Completed tasks whose success was claimed without evidence (verdict `unverified`), with the evidence, in state order. */
  unverified: VerdictReport[];
  /** Completed tasks whose receipts or check disprove the answer (verdict `contradicted`), with the evidence. */
  contradicted: VerdictReport[];
}

/** A completed task that was not verified, and why. */
export interface VerdictReport {
  task: string;
  evidence: string[];
}

/**
 * Reads the session's result files and collects what must be checked before its results are
 * presented (issue 10's verification step): mock tasks, permission denials (per task, with tool
 * names) and completed tasks with an empty answer.
 */
export async function checkResults(state: SessionState): Promise<ResultChecks> {
  const checks: ResultChecks = {
    rehearsal: false,
    simulated_tasks: [],
    permission_denials: [],
    empty_results: [],
    unverified: [],
    contradicted: [],
  };
  for (const [name, task] of Object.entries(state.tasks)) {
    if (task.runner === 'mock') checks.simulated_tasks.push(name);
    const result = task.result_path ? await readResultFile(task.result_path).catch(() => null) : null;
    const tools = Array.isArray(result?.data.denied_tools) ? (result.data.denied_tools as unknown[]).map(String) : [];
    const fileCount = typeof result?.data.permission_denials === 'number' ? result.data.permission_denials : 0;
    const count = task.permission_denials ?? fileCount;
    if (count > 0 || tools.length > 0) checks.permission_denials.push({ task: name, count: Math.max(count, tools.length), tools });
    if (task.status === 'completed' && (!result || result.data.empty_result === true || result.body.trim() === ''))
      checks.empty_results.push(name);
    const verdict = task.status === 'completed' ? task.verdict : null;
    if (verdict && verdict.value !== 'verified') checks[verdict.value].push({ task: name, evidence: verdict.evidence });
  }
  checks.rehearsal = checks.simulated_tasks.length > 0;
  return checks;
}

/**
 * The rehearsal banner that opens final_output.md (and aggregate's summary) when any task ran with
 * a mock agent, or null for a session of real agents only.
 */
export function rehearsalBanner(checks: ResultChecks, total: number): string | null {
  if (!checks.rehearsal) return null;
  return (
    `REHEARSAL WITH SIMULATED AGENTS: no real work was done. ${checks.simulated_tasks.length} of ${total} tasks ran with mock agents ` +
    '(spawn-agent-mock or orchestrate --agent mock); their results are placeholders, not findings. Do not present them as an answer: ' +
    'run the plan with real agents (orchestrate --agent claude, or spawn-agent) for that.'
  );
}

/** The checks as plain-text lines (aggregate's summary, after the execution summary). */
export function checkLines(checks: ResultChecks, total: number): string[] {
  const lines: string[] = [];
  const banner = rehearsalBanner(checks, total);
  if (banner) lines.push(banner);
  lines.push(
    checks.permission_denials.length === 0
      ? 'Permission denials: none.'
      : `Permission denials: ${checks.permission_denials.map((d) => `${d.task} (${d.count}${d.tools.length ? `: ${d.tools.join(', ')}` : ''})`).join('; ')}.`,
    checks.empty_results.length === 0 ? 'Empty results: none.' : `Empty results: ${checks.empty_results.join(', ')}.`,
    verdictLine('Unverified', checks.unverified, 'success claimed without evidence: do not present as done'),
    verdictLine('Contradicted', checks.contradicted, 'the receipts or the check disprove the answer: treat as failed'),
  );
  return lines;
}

function verdictLine(label: string, list: readonly VerdictReport[], meaning: string): string {
  if (list.length === 0) return `${label}: none.`;
  return `${label} (${meaning}): ${list.map((v) => `${v.task} (${v.evidence.join('; ')})`).join('; ')}.`;
}

/**
 * Whether every completed task's answer can be trusted: none `unverified` or `contradicted`. aggregate exits 1
 * otherwise (the report is written all the same); failed tasks are poll-session's and orchestrate's exit 1.
 */
export function verdictsClean(checks: ResultChecks): boolean {
  return checks.unverified.length === 0 && checks.contradicted.length === 0;
}
