// The merge section of a report: what an isolated session merged, what conflicted, what is kept and how to land it.
import type { SessionState, TaskRecord } from '../state/model.ts';

/** The merge section of a session's report (`--isolation worktree`). Field names are snake_case, as in `aggregate --json`. */
export interface MergeReport {
  /** The integration branch, the user's HEAD it started from, and its tip (the commit to land). */
  integration: { branch: string; base: string; tip: string } | null;
  /** The command that lands the work on the user's branch (a fast-forward when it has not moved). */
  land_command: string | null;
  /** Task names, in topological order within each list. */
  merged: string[];
  conflicted: Array<{ task: string; branch: string; paths: string[] }>;
  gate_failed: Array<{ task: string; branch: string; output_tail: string }>;
  /** Tasks that changed nothing (nothing to merge). */
  empty: string[];
  /** Tasks expected to change files (`--files`, `expect_changes`) that changed none. */
  expected_changes_missing: string[];
  /** Per task: files changed, lines inserted and deleted. */
  diff_stats: Array<{ task: string; files: number; insertions: number; deletions: number }>;
  /** Worktrees left in place, and why (work not merged: kept for inspection or a retry). */
  kept_worktrees: Array<{ task: string; worktree: string; why: string }>;
}

/**
 * Builds the merge section from the state, or null when no task of the session was isolated.
 * Tasks are taken in the state's registration order.
 */
export function mergeReport(state: SessionState): MergeReport | null {
  const isolated = Object.entries(state.tasks).filter(
    (entry): entry is [string, TaskRecord & { merge: NonNullable<TaskRecord['merge']> }] => Boolean(entry[1].merge),
  );
  if (isolated.length === 0 && state.integration === null) return null;
  const report: MergeReport = {
    integration: state.integration,
    land_command: state.integration ? landCommand(state.integration.branch) : null,
    merged: [],
    conflicted: [],
    gate_failed: [],
    empty: [],
    expected_changes_missing: [],
    diff_stats: [],
    kept_worktrees: [],
  };
  for (const [task, { merge }] of isolated) {
    if (merge.status === 'merged') report.merged.push(task);
    if (merge.status === 'empty') report.empty.push(task);
    if (merge.status === 'conflict') report.conflicted.push({ task, branch: merge.branch, paths: merge.conflicts });
    if (merge.status === 'gate_failed') report.gate_failed.push({ task, branch: merge.branch, output_tail: merge.gate_output ?? '' });
    if (merge.expected_changes_missing) report.expected_changes_missing.push(task);
    if (merge.diff_stat) report.diff_stats.push({ task, ...merge.diff_stat });
    if (merge.worktree) {
      const why =
        merge.status === 'conflict'
          ? `conflict in ${merge.conflicts.join(', ')}`
          : merge.status === 'gate_failed'
            ? 'the merge check failed'
            : 'the agent failed: its work was not merged';
      report.kept_worktrees.push({ task, worktree: merge.worktree, why });
    }
  }
  return report;
}

/**
 * The land step for the user: `git merge --ff-only <integration>` when their branch has not moved
 * since the session started (else a plain `git merge <integration>`). Shown, never run.
 */
export function landCommand(branch: string): string {
  return `git merge --ff-only ${branch}   # or, if your branch moved since: git merge ${branch}`;
}

/** The merge section as Markdown lines (final_output.md), or [] when the session was not isolated. */
export function renderMergeSection(report: MergeReport | null): string[] {
  if (!report) return [];
  const lines = ['', '## Merges (worktree isolation)', ''];
  if (report.integration) {
    lines.push(
      `- Integration branch: \`${report.integration.branch}\` at \`${report.integration.tip.slice(0, 12)}\` ` +
        `(from \`${report.integration.base.slice(0, 12)}\`); your branch and working tree were not touched.`,
      `- Land it: \`${landCommand(report.integration.branch).split('   #')[0]}\` (or \`git merge ${report.integration.branch}\` if your branch moved).`,
    );
  }
  lines.push(`- Merged: ${report.merged.length === 0 ? 'none' : report.merged.join(', ')}`);
  if (report.conflicted.length > 0)
    lines.push(`- Conflicted: ${report.conflicted.map((c) => `${c.task} (${c.paths.join(', ')}; branch \`${c.branch}\`)`).join('; ')}`);
  if (report.gate_failed.length > 0)
    lines.push(`- Merge check failed: ${report.gate_failed.map((g) => `${g.task} (branch \`${g.branch}\`)`).join('; ')}`);
  if (report.empty.length > 0) lines.push(`- Changed nothing: ${report.empty.join(', ')}`);
  if (report.expected_changes_missing.length > 0)
    lines.push(`- ⚠️ Expected to change files but changed none: ${report.expected_changes_missing.join(', ')}`);
  if (report.kept_worktrees.length > 0)
    lines.push(`- Worktrees kept: ${report.kept_worktrees.map((k) => `${k.task} at \`${k.worktree}\` (${k.why})`).join('; ')}`);
  if (report.diff_stats.length > 0) {
    lines.push('', '| Task | Files | + | - |', '| --- | --- | --- | --- |');
    for (const stat of report.diff_stats) lines.push(`| ${stat.task} | ${stat.files} | ${stat.insertions} | ${stat.deletions} |`);
  }
  for (const gate of report.gate_failed)
    lines.push('', `Merge check output of ${gate.task} (end):`, '', '```text', gate.output_tail.trimEnd(), '```');
  return lines;
}

/**
 * One line for the end of a run (orchestrate): the integration branch, what merged and what did
 * not, and the land command; null when the session was not isolated. With `landing` (landing.ts
 * `checkLanding`, read from the repository just before), a branch put back is said so, and a branch
 * moved by someone else gets the reason instead of the land command.
 */
export function mergeRunLine(report: MergeReport | null, landing?: { note: string | null; problem: string | null } | null): string | null {
  if (!report?.integration) return null;
  const notMerged = [
    ...report.conflicted.map((c) => `${c.task} conflicted in ${c.paths.join(', ')}`),
    ...report.gate_failed.map((g) => `${g.task} failed the merge check`),
  ];
  return (
    `Integration branch ${report.integration.branch}: ${report.merged.length} merged` +
    (notMerged.length > 0 ? `, not merged: ${notMerged.join('; ')} (branches kept)` : '') +
    (landing?.note ? `. ${landing.note}` : '') +
    (landing?.problem
      ? `. Your branch is untouched; ${landing.problem}`
      : `. Your branch is untouched; land with: git merge --ff-only ${report.integration.branch}`)
  );
}
