// Predicted merge conflicts: while an isolated agent runs, its work so far is checked against the integration tip.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openRepository } from '../../scripts/lib/isolation/worktree.ts';
import { SNAPSHOT_MAX_FILE_BYTES, snapshotWorktree } from '../../scripts/lib/isolation/worktree-git.ts';
import { renderStatusBlock } from '../../scripts/lib/progress/status-block.ts';
import { buildStatusView } from '../../scripts/lib/progress/status-view.ts';
import { run, start } from '../support/project.ts';
import { waitForState } from '../support/wait-state.ts';
import { tempRepo } from './git-repo.ts';

describe('conflict prediction while isolated agents run', () => {
  it('shows a running task heading for a conflict with work already merged, before it ends; the prediction is cleared at its end', async () => {
    const repo = await tempRepo({ 'shared.txt': 'base\n' });
    const plan = [
      'tasks:',
      '  - { id: fast, goal: "append fast", delay_ms: 400, append: { "shared.txt": "fast\\n" } }',
      // Edits halfway (at 10 s), long after `fast` merged, then works 10 s more: the prediction has time to show, on a
      // loaded machine too (with 4 s and 4 s, one once ended before a check had run).
      '  - { id: slow, goal: "append slow", delay_ms: 20000, append: { "shared.txt": "slow\\n" } }',
    ];
    await writeFile(path.join(repo.dir, 'plan.yaml'), plan.join('\n'));
    const runner = start('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '2', '--isolation', 'worktree'], repo.dir, {
      DTO_CONFLICT_CHECK_MS: '300',
    });
    const seen = await waitForState(repo, (s) => (s.tasks.slow?.predicted_conflicts ?? []).length > 0, 60_000);
    expect(seen.tasks.slow).toMatchObject({ status: 'running', predicted_conflicts: ['shared.txt'] });
    expect(seen.tasks.fast).toMatchObject({ status: 'completed', predicted_conflicts: [] });
    // What a person reading the status table (poll-session --verbose) sees while the agent still works: the table of the
    // state just read, rendered as poll-session renders it (a poll-session started now could, on a loaded machine,
    // read the state after the task ended).
    expect(renderStatusBlock(buildStatusView(seen, { now: Date.now() }))).toContain('predicted merge conflict in shared.txt');
    // What a model waiting in slices reads: the event line.
    const slice = await run('poll-session', ['--once'], repo.dir);
    expect(slice.stdout).toMatch(/⚠️ slow \(Agent-\d+\): its work so far would conflict with the integration branch in shared\.txt/);
    const ended = await runner;
    expect(ended.exitCode, ended.all).toBe(1);
    const state = (await repo.state())!;
    expect(state.tasks.slow).toMatchObject({ status: 'merge_failed', predicted_conflicts: [] });
    expect(state.tasks.slow!.merge!.conflicts).toEqual(['shared.txt']);
  }, 120_000);

  it('predicts nothing for work that merges cleanly', async () => {
    const repo = await tempRepo({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const plan = [
      'tasks:',
      '  - { id: one, goal: "edit a", delay_ms: 300, append: { "a.txt": "one\\n" } }',
      '  - { id: two, goal: "edit b", delay_ms: 6000, append: { "b.txt": "two\\n" } }',
    ];
    await writeFile(path.join(repo.dir, 'plan.yaml'), plan.join('\n'));
    const runner = start('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '2', '--isolation', 'worktree'], repo.dir, {
      DTO_CONFLICT_CHECK_MS: '200',
    });
    // `two` edits at 3 s, after `one` merged; by 4.5 s several checks of its edit against the new tip were made.
    // (Seen once on a loaded CI machine: `one` still running after 20 s. Should it happen again, its output says where.)
    await waitForState(repo, (s) => s.tasks.one?.status === 'completed', 60_000).catch(async (error: unknown) => {
      runner.kill('SIGTERM');
      const output = await runner;
      throw new Error(`${(error as Error).message}\norchestrate printed:\n${output.all ?? ''}`);
    });
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect((await repo.state())!.tasks.two!.predicted_conflicts).toEqual([]);
    const result = await runner;
    expect(result.exitCode, result.all).toBe(0);
    const state = (await repo.state())!;
    expect(Object.values(state.tasks).map((t) => t.merge?.status)).toEqual(['merged', 'merged']);
  }, 120_000);

  it('snapshots a worktree without touching its index, HEAD or files, new files included', async () => {
    const repo = await tempRepo({ 'tracked.txt': 'one\n' });
    await writeFile(path.join(repo.dir, 'tracked.txt'), 'one\ntwo\n');
    await writeFile(path.join(repo.dir, 'new.txt'), 'new\n');
    await repo.git(['add', 'tracked.txt']);
    const before = await repo.snapshot();
    const commit = await snapshotWorktree(await openRepository(repo.dir), repo.dir, ['.agent']);
    expect(await repo.snapshot()).toEqual(before);
    expect(await repo.git(['rev-parse', `${commit}^`])).toBe(before.head);
    expect(await repo.git(['show', `${commit}:new.txt`])).toBe('new');
    expect(await repo.git(['show', `${commit}:tracked.txt`])).toBe('one\ntwo');
    expect((await repo.git(['ls-tree', '-r', '--name-only', commit])).split('\n')).not.toContain('.agent/sessions/latest.yaml');
  });

  it(`leaves changed files over ${SNAPSHOT_MAX_FILE_BYTES} bytes out of snapshots: a rewritten artifact adds no object per snapshot`, async () => {
    const repo = await tempRepo({ 'big.bin': 'old\n', 'small.txt': 'one\n' });
    const opened = await openRepository(repo.dir);
    const objectBytes = async () => {
      const counted = await repo.git(['count-objects', '-v']);
      return Number(/^size: (\d+)/m.exec(counted)![1]) + Number(/^size-pack: (\d+)/m.exec(counted)![1]);
    };
    const before = await objectBytes();
    const snapshots: string[] = [];
    for (let round = 0; round < 6; round++) {
      // An agent rewriting a 2 MiB artifact (incompressible) and a new one, and editing a small file, between snapshots.
      await writeFile(path.join(repo.dir, 'big.bin'), randomBytes(2 * 1024 * 1024));
      await writeFile(path.join(repo.dir, 'new-big.bin'), randomBytes(2 * 1024 * 1024));
      await writeFile(path.join(repo.dir, 'small.txt'), `one\nround ${round}\n`);
      snapshots.push(await snapshotWorktree(opened, repo.dir, ['.agent']));
    }
    // count-objects reports KiB: 6 rounds of 4 MiB would be about 24,000; the small files and commits are a few KiB.
    expect((await objectBytes()) - before).toBeLessThan(512);
    const last = snapshots.at(-1)!;
    expect(await repo.git(['show', `${last}:small.txt`])).toBe('one\nround 5');
    expect(await repo.git(['show', `${last}:big.bin`])).toBe('old');
    expect((await repo.git(['ls-tree', '-r', '--name-only', last])).split('\n')).not.toContain('new-big.bin');
  });
});
