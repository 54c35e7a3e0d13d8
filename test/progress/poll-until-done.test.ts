// poll-session --until_done (a background Bash command): silent while it waits, then one digest of at most 2 kB, whatever the session's size.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_UNTIL_DONE_S, main } from '../../scripts/poll-session.ts';
import { launcherCommand } from '../../scripts/lib/launcher/dist.ts';
import { DIGEST_MAX_BYTES, shareBytes } from '../../scripts/lib/progress/digest.ts';
import { cursorPath } from '../../scripts/lib/progress/poll-cursor.ts';
import { untilDoneTimeoutS } from '../../scripts/lib/progress/poll-modes.ts';
import { SessionStateSchema, type SessionState, type TaskRecordInput } from '../../scripts/lib/state/schema.ts';
import { at, finishedEvents, finishedState, writeSession } from '../support/fixed-session.ts';
import { run, start, tempProject } from '../support/project.ts';

/** A stdout stand-in that keeps every write apart. */
function recorder() {
  const writes: string[] = [];
  return { stream: { isTTY: false, write: (chunk: string) => (writes.push(chunk), true) }, writes };
}

const sessionDir = (cwd: string) => path.join(cwd, '.agent', 'sessions');

/** Runs --until_done in this process on the project's session folder. */
async function untilDone(args: string[], cwd: string, clock?: () => number) {
  const out = recorder();
  const code = await main(['--until_done', ...args, '--session_dir', sessionDir(cwd)], { stdout: out.stream, env: {}, clock });
  return { code, writes: out.writes, text: out.writes.join('') };
}

/** The digest's last line once every task ended: the report it wrote beside the session folder, and the command that writes it again. */
function nextLine(project: string): string {
  const aggregate = launcherCommand('aggregate', `--session_dir ${JSON.stringify(sessionDir(project))}`);
  return `Next: read ${path.join(path.dirname(sessionDir(project)), 'final_output.md')} (written just now; ${aggregate} writes it again)`;
}

/** A clock that starts at `start` (ISO) and runs with real time: limits elapse, leases do not. */
function runningClock(start: string): () => number {
  const t0 = Date.now();
  return () => Date.parse(start) + (Date.now() - t0);
}

const LONG = 'the agent reported: ' + 'un échec très détaillé ⚠️ with a stack trace line\n    at somewhere (file.ts:1:1) '.repeat(8);
const name = (i: number) => `T-${String(i).padStart(3, '0')}-a-rather-long-task-name-for-the-digest`;

/**
 * A big isolated session: a fifth of the tasks failed (long reasons), a fifth merge_failed on
 * conflicts (many long paths), a fifth skipped because a dependency failed, a tenth skipped by the
 * budget, a tenth cancelled, the rest completed; a budget that was reached; mock agents.
 * With `live`, the last two tasks are still running (no pid: never reaped), one with a predicted conflict.
 */
function bigState(count: number, live = false): SessionState {
  const tasks: Record<string, TaskRecordInput> = {};
  for (let i = 1; i <= count; i++) {
    const base = { agent: `Agent-${String(i).padStart(3, '0')}`, goal: 'g', registered_at: at(0.5), runner: 'mock' as const, attempts: 1 };
    const ran = { started_at: at(1), ended_at: at(5 + (i % 7)), duration_ms: 4000 + (i % 7) * 1000 };
    const kind = (i - 1) % 10;
    if (live && i > count - 2) {
      tasks[name(i)] = {
        ...base,
        status: 'running',
        started_at: at(1),
        heartbeat_at: at(1),
        predicted_conflicts: i === count ? ['src/shared/config.ts', 'src/shared/routes.ts'] : [],
      };
    } else if (kind === 0 || kind === 5) tasks[name(i)] = { ...base, ...ran, status: 'failed', error: `${i}: ${LONG}` };
    else if (kind === 1 || kind === 6) {
      const conflicts = Array.from({ length: 12 }, (_, k) => `src/module-${k}/deeply/nested/folder/component-${i}.ts`);
      tasks[name(i)] = {
        ...base,
        ...ran,
        status: 'merge_failed',
        error: `merge conflict in ${conflicts.join(', ')}`,
        merge: { branch: `dto/big-session/tasks/${name(i)}`, worktree: `/tmp/wt/${name(i)}`, status: 'conflict', conflicts },
      };
    } else if (kind === 2 || kind === 7)
      tasks[name(i)] = { ...base, status: 'skipped', attempts: 0, ended_at: at(9), error: `dependency ${name(i - 2)} failed` };
    else if (kind === 3)
      tasks[name(i)] = {
        ...base,
        status: 'skipped',
        attempts: 0,
        ended_at: at(9),
        error: 'budget: $0.9000 of $1.0000 spent (raise --budget_usd)',
      };
    else if (kind === 4) tasks[name(i)] = { ...base, ...ran, status: 'cancelled', error: `cancelled by the user: ${LONG}` };
    else tasks[name(i)] = { ...base, ...ran, status: 'completed', cost_usd: 0.01 };
  }
  return SessionStateSchema.parse({
    version: 1,
    session_id: 'big-fixture',
    created_at: at(0),
    updated_at: at(12),
    max_workers: 8,
    integration: { branch: 'dto/big-session/integration', base: 'a'.repeat(40), tip: 'b'.repeat(40) },
    budget: { usd: 1, on_budget: 'finish', reached_at: at(9) },
    tasks,
  });
}

describe('poll-session --until_done digest', () => {
  it.each([40, 250])('%i tasks, long reasons, many merge conflicts: one digest of at most 2,048 bytes, exit 1', async (count) => {
    const project = await tempProject('dto-until-');
    await writeSession(project.paths.dir, bigState(count));
    const { code, writes, text } = await untilDone([], project.dir, () => Date.parse(at(20)));
    expect(code).toBe(1);
    expect(writes).toHaveLength(1);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(DIGEST_MAX_BYTES);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^\\[until_done\\] All ${count} tasks ended: \\d+ completed, \\d+ failed, \\d+ merge_failed, \\d+ skipped, \\d+ cancelled; 11s elapsed; exit 1\\.$`,
      ),
    );
    // Listed: the failed, the cancelled and the budget skips (2 in 5); conflicts and dependency skips have their own lines.
    expect(lines).toContain(`Failures (${(count * 2) / 5}):`);
    expect(
      lines.find((line) =>
        /^- T-001-.* failed: 1: the agent reported: un échec très détaillé ⚠️ with a stack trace line at somewhere/.test(line),
      ),
    ).toBeDefined();
    expect(
      lines.filter((line) => line.startsWith('- ... and ')).every((line) => /^- \.\.\. and \d+ more \(see aggregate\)$/.test(line)),
    ).toBe(true);
    expect(lines.filter((line) => line.startsWith('- ... and ')).length).toBeGreaterThanOrEqual(1);
    // Skips caused by a failed dependency are counted, never listed one by one.
    expect(lines).toContain(`Skipped because a dependency did not complete: ${count / 5} tasks (not listed).`);
    expect(text).not.toMatch(/skipped: dependency /);
    expect(lines).toContain(`Merge conflicts (${count / 5}; branches kept):`);
    expect(text).toMatch(
      /^- T-002-a-rather-long-task-name-for-the-digest: src\/module-0\/.*… \(branch dto\/big-session\/tasks\/T-002-a-rather-long-task-name-for-the-digest\)$/m,
    );
    // A conflicted task is shown with its paths, not a second time among the failures.
    expect(text).not.toMatch(/T-002-\S+ merge failed/);
    expect(lines).toContain(
      `Budget: spent $${(count / 500).toFixed(4)} of $1.0000; reached, no task started after it (--on_budget finish).`,
    );
    expect(lines).toContain(`Rehearsal: ${count} of ${count} tasks ran with mock agents; their results are placeholders, not findings.`);
    expect(lines.at(-1)).toBe(nextLine(project.dir));
    // Every line is one line: no reason's newline got through.
    expect(lines.every((line) => line.length > 0)).toBe(true);
  });

  it('skips sharing a reason that is not a dependency are one item; dependency skips only a count', async () => {
    const project = await tempProject('dto-until-');
    const state = bigState(10);
    const stop = 'stopped after a failed (--on_failure stop)';
    for (const [i, task] of Object.values(state.tasks).entries()) {
      if (i >= 5) Object.assign(task, { status: 'skipped', error: stop, merge: null });
      else if (i >= 1) Object.assign(task, { status: 'completed', error: null, merge: null });
    }
    await writeSession(project.paths.dir, state);
    const { code, text } = await untilDone([], project.dir, () => Date.parse(at(20)));
    expect(code).toBe(1);
    const lines = text.split('\n');
    expect(lines.slice(1, 4)).toEqual([
      'Failures (6):',
      `- ${name(1)} failed: 1: the agent reported: un échec très détaillé ⚠️ with a stack trace line at somewhere (file.ts:1:1) un échec…`,
      `- 5 skipped (${name(6)}, T-007-a-rat…): ${stop}`,
    ]);
    expect(text).not.toMatch(/Skipped because a dependency/);
  });

  it('at the limit: the counts so far, predicted conflicts still showing, "Still running" and exit 3; nothing printed before', async () => {
    const project = await tempProject('dto-until-');
    await writeSession(project.paths.dir, bigState(250, true));
    const { code, writes, text } = await untilDone(['--timeout', '0.4', '--interval_ms', '50'], project.dir, runningClock(at(12)));
    expect(code).toBe(3);
    expect(writes).toHaveLength(1);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(DIGEST_MAX_BYTES);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^\[until_done\] Limit of 0\.4 s reached: \d+\/250 completed, 2 running, 0 waiting, \d+ failed, \d+ merge_failed, \d+ skipped, \d+ cancelled; \d+s elapsed; exit 3\.$/,
    );
    expect(lines).toContain('Predicted conflicts still showing (1):');
    expect(lines).toContain('- T-250-a-rather-long-task-name-for-the-digest would conflict in src/shared/config.ts, src/shared/routes.ts');
    expect(lines.at(-1)).toBe('Still running: run the same command again (exit 3).');
  });

  it('exit 0 when every task completed; exit 1 with the fixture failure; neither reads nor writes the slice cursor', async () => {
    const project = await tempProject('dto-until-');
    await writeSession(project.paths.dir, finishedState('/results'), finishedEvents());
    const failed = await untilDone([], project.dir, () => Date.parse(at(20)));
    expect(failed.code).toBe(1);
    expect(failed.text).toBe(
      [
        '[until_done] All 5 tasks ended: 3 completed, 1 failed, 1 skipped; 10s elapsed; exit 1.',
        'Failures (1):',
        '- security failed: claude exited with code 1: API error (overloaded)',
        'Skipped because a dependency did not complete: 1 task (not listed).',
        'Rehearsal: 1 of 5 tasks ran with mock agents; their results are placeholders, not findings.',
        nextLine(project.dir),
        '',
      ].join('\n'),
    );
    expect(existsSync(cursorPath(project.paths, 'done-fixture'))).toBe(false);
    expect(existsSync(cursorPath(project.paths, 'done-fixture', 'attention'))).toBe(false);

    const ok = finishedState('/results');
    for (const task of Object.values(ok.tasks)) Object.assign(task, { status: 'completed', error: null, runner: 'claude' });
    await writeSession(project.paths.dir, ok);
    const done = await untilDone([], project.dir, () => Date.parse(at(20)));
    expect([done.code, done.text.split('\n')[0]]).toEqual([0, '[until_done] All 5 tasks ended: 5 completed; 10s elapsed; exit 0.']);
    expect(done.text).not.toMatch(/Failures|Rehearsal|Budget/);
  });

  it('prints nothing while a real agent runs, then the digest once it ended', async () => {
    const project = await tempProject('dto-until-');
    const agent = start('spawn-agent-mock', ['--task_name', 'slow', '--goal', 'g', '--delay_ms', '1500'], project.dir);
    for (let i = 0; i < 800 && (await project.state())?.tasks.slow?.status !== 'running'; i++) await new Promise((r) => setTimeout(r, 25));
    const out = recorder();
    const waiting = main(['--until_done', '--timeout', '60', '--session_dir', sessionDir(project.dir)], { stdout: out.stream, env: {} });
    const seenWhileRunning: number[] = [];
    while ((await project.state())?.tasks.slow?.status === 'running') {
      seenWhileRunning.push(out.writes.length);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await waiting).toBe(0);
    await agent;
    expect(seenWhileRunning.length).toBeGreaterThan(0);
    expect(seenWhileRunning.every((n) => n === 0)).toBe(true);
    expect(out.writes).toHaveLength(1);
    expect(out.writes[0]).toMatch(/^\[until_done\] All 1 tasks ended: 1 completed; \d+s elapsed; exit 0\.\n/);
  });
});

describe('poll-session --until_done limits and flags', () => {
  it(`waits ${DEFAULT_UNTIL_DONE_S} s by default whatever $BASH_DEFAULT_TIMEOUT_MS says (foreground calls only), --timeout S otherwise, 0 = none`, () => {
    expect(DEFAULT_UNTIL_DONE_S).toBe(1740);
    expect(untilDoneTimeoutS(undefined)).toBe(1740);
    expect(untilDoneTimeoutS(3600)).toBe(3600);
    expect(untilDoneTimeoutS(0)).toBeUndefined();
  });

  it('shares the bytes fairly: a short list keeps all it needs, the others split the rest', () => {
    expect(shareBytes([100, 2000, 2000], 1500)).toEqual([100, 700, 700]);
    expect(shareBytes([3000], 1000)).toEqual([1000]);
    expect(shareBytes([], 1000)).toEqual([]);
  });

  it.each([
    [['--json'], /--until_done cannot be combined with --json/],
    [['--verbose'], /--until_done cannot be combined with --verbose/],
    [['--plain'], /--until_done cannot be combined with --plain/],
    [['--once'], /--until_done cannot be combined with --once/],
    [['--from_start'], /--until_done cannot be combined with --from_start/],
    [['--attention'], /either --until_done .* or --attention/],
  ])('--until_done %j: usage error (exit 2)', async (args, message) => {
    const project = await tempProject('dto-until-');
    await expect(untilDone(args, project.dir)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(message) });
  });

  it('no session: exit 2 after the session wait, with what to do', async () => {
    const project = await tempProject('dto-until-');
    const result = await run('poll-session', ['--until_done', '--wait_for_session', '0.2'], project.dir);
    expect([result.exitCode, result.stdout]).toEqual([2, '']);
    expect(result.stderr).toMatch(/No session found at .*latest\.yaml after 0\.2 s/);
  });
});
