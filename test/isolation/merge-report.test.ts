import { describe, expect, it } from 'vitest';
import { mergeReport, mergeRunLine, renderMergeSection } from '../../scripts/lib/isolation/merge-report.ts';
import { buildReportData } from '../../scripts/lib/report/report-data.ts';
import { renderSummary, summarize, exitCodeFor } from '../../scripts/lib/report/session-summary.ts';
import { SessionStateSchema, TaskRecordSchema, type SessionState } from '../../scripts/lib/state/schema.ts';
import { createTaskTable } from '../../scripts/lib/state/model.ts';

const T0 = '2026-01-01T00:00:00.000Z';
const T1 = '2026-01-01T00:00:10.000Z';

function task(agent: string, status: string, merge: Record<string, unknown> | null, error: string | null = null) {
  return TaskRecordSchema.parse({
    status,
    agent,
    goal: 'g',
    registered_at: T0,
    started_at: T0,
    ended_at: T1,
    duration_ms: 10_000,
    error,
    merge,
  });
}

function isolatedState(): SessionState {
  const state = SessionStateSchema.parse({
    version: 1,
    session_id: 'S1',
    created_at: T0,
    updated_at: T1,
    integration: { branch: 'dto/S1/integration', base: 'a'.repeat(40), tip: 'b'.repeat(40) },
  });
  state.tasks = createTaskTable([
    [
      'ok',
      task('Agent-01', 'completed', {
        branch: 'dto/S1/tasks/ok',
        status: 'merged',
        commit: 'b'.repeat(40),
        diff_stat: { files: 2, insertions: 5, deletions: 1 },
      }),
    ],
    [
      'none',
      task('Agent-02', 'completed', {
        branch: 'dto/S1/tasks/none',
        status: 'empty',
        expected_changes_missing: true,
        diff_stat: { files: 0, insertions: 0, deletions: 0 },
      }),
    ],
    [
      'clash',
      task(
        'Agent-03',
        'merge_failed',
        { branch: 'dto/S1/tasks/clash', status: 'conflict', conflicts: ['src/a.ts'], worktree: '/r/.agent/worktrees/S1/trees/clash' },
        'merge conflict with the integration branch dto/S1/integration in: src/a.ts',
      ),
    ],
  ]);
  return state;
}

describe('the merge section of the report', () => {
  it('lists merged, conflicted, empty and flagged tasks, kept worktrees with why, diff stats and the land command', () => {
    const report = mergeReport(isolatedState())!;
    expect(report).toEqual({
      integration: { branch: 'dto/S1/integration', base: 'a'.repeat(40), tip: 'b'.repeat(40) },
      land_command: 'git merge --ff-only dto/S1/integration   # or, if your branch moved since: git merge dto/S1/integration',
      merged: ['ok'],
      conflicted: [{ task: 'clash', branch: 'dto/S1/tasks/clash', paths: ['src/a.ts'] }],
      gate_failed: [],
      empty: ['none'],
      expected_changes_missing: ['none'],
      diff_stats: [
        { task: 'ok', files: 2, insertions: 5, deletions: 1 },
        { task: 'none', files: 0, insertions: 0, deletions: 0 },
      ],
      kept_worktrees: [{ task: 'clash', worktree: '/r/.agent/worktrees/S1/trees/clash', why: 'conflict in src/a.ts' }],
    });
    const markdown = renderMergeSection(report).join('\n');
    expect(markdown).toContain('- ⚠️ Expected to change files but changed none: none');
    expect(markdown).toContain('| ok | 2 | 5 | 1 |');
    expect(mergeRunLine(report)).toBe(
      'Integration branch dto/S1/integration: 1 merged, not merged: clash conflicted in src/a.ts (branches kept). ' +
        'Your branch is untouched; land with: git merge --ff-only dto/S1/integration',
    );
  });

  it('is absent for a session without isolation', () => {
    const state = isolatedState();
    state.integration = null;
    for (const record of Object.values(state.tasks)) record.merge = null;
    expect(mergeReport(state)).toBeNull();
    expect(renderMergeSection(null)).toEqual([]);
  });

  it('counts a merge_failed task as ended and failed in every summary (not as still active)', () => {
    const state = isolatedState();
    const data = buildReportData(state);
    expect(summarize(state).finished).toBe(true);
    expect(exitCodeFor(summarize(state))).toBe(1);
    expect(data.failures.map((f) => [f.task, f.status])).toEqual([['clash', 'merge_failed']]);
    expect(renderSummary(data, { variant: 'outcome', outcome: 'failed' })).toBe(
      'All 3 tasks ended: 2 completed, 1 merge_failed. Makespan 10.0 s.',
    );
    expect(renderSummary(data, { variant: 'block' })).toContain('Merge failed: 1 task (clash: merge conflict');
    expect(renderSummary(data, { variant: 'markdown' })).toContain('merge failed: 1');
  });
});
