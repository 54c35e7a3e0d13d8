// poll-session --attention (Claude Code's Monitor tool: every line is a model turn): only the events that need the model, its own cursor, one final line.
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ATTENTION_S, main } from '../../scripts/poll-session.ts';
import { launcherCommand } from '../../scripts/lib/launcher/dist.ts';
import { attentionLine, createAttentionSink } from '../../scripts/lib/progress/attention-sink.ts';
import { DIGEST_MAX_BYTES } from '../../scripts/lib/progress/digest.ts';
import { cursorPath } from '../../scripts/lib/progress/poll-cursor.ts';
import { attentionTimeoutS } from '../../scripts/lib/progress/poll-modes.ts';
import type { SessionEvent } from '../../scripts/lib/state/events.ts';
import { A, ev, fortyEvents, fortyState, T } from '../support/attention-session.ts';
import { at, writeSession } from '../support/fixed-session.ts';
import { run, start, tempProject } from '../support/project.ts';

/** A stdout stand-in that keeps every write apart. */
function recorder() {
  const writes: string[] = [];
  return { stream: { isTTY: false, write: (chunk: string) => (writes.push(chunk), true) }, writes };
}

const sessionDir = (cwd: string) => path.join(cwd, '.agent', 'sessions');

/** Runs --attention in this process on the project's session folder. */
async function attention(args: string[], cwd: string, clock?: () => number) {
  const out = recorder();
  const argv = ['--attention', ...args, '--session_dir', sessionDir(cwd)];
  const code = await main(argv, { stdout: out.stream, env: {}, clock });
  return {
    code,
    writes: out.writes,
    lines: out.writes.join('').trimEnd().split('\n'),
    rearm: launcherCommand('poll-session', argv.filter((a) => a !== '--from_start').join(' ')),
  };
}

/** A clock that starts at `start` (ISO) and runs with real time: limits elapse, leases do not. */
function runningClock(start: string): () => number {
  const t0 = Date.now();
  return () => Date.parse(start) + (Date.now() - t0);
}

const STALL_LINE =
  '[attention] T-05 (Agent-05) stalled on attempt 1: no output for 300 s, the claude process tree was terminated (--stall_timeout 300); resuming Claude session 1f2e, retry 1 of 2 in 0.0 s. The agent retries by itself; act only if it stalls again.';
const PAUSE_LINE =
  '[attention] Rate limited: new starts paused until 10:10:01 UTC (10m00s); worker limit 2 of 8 (HTTP 429 rate_limit seen by T-09: limit halved; new starts paused until later (reset time reported)). Nothing to do: starts resume by themselves.';
const FAILED_LINE =
  '[attention] T-07 failed (Agent-07): claude exited with code 1: API error. Its dependant is skipped (T-08); the other tasks go on.';

describe('poll-session --attention on a fixed session', () => {
  it('40 tasks, one failure: exactly the stall, the long pause, the failure and the final line, each written as one line', async () => {
    const project = await tempProject('dto-attention-');
    await writeSession(project.paths.dir, fortyState(), fortyEvents());
    const { code, writes, lines } = await attention([], project.dir, () => Date.parse(at(20)));
    expect(code).toBe(1);
    const aggregate = launcherCommand('aggregate', `--session_dir ${JSON.stringify(sessionDir(project.dir))}`);
    expect(lines).toEqual([
      STALL_LINE,
      PAUSE_LINE,
      FAILED_LINE,
      `[attention] All 40 tasks ended: 38 completed, 1 failed, 1 skipped (exit 1). Next: ${aggregate}`,
    ]);
    // One write per line, as soon as it is known: the Monitor tool reads lines as they come.
    expect(writes).toEqual(lines.map((line) => `${line}\n`));
    for (const line of lines.slice(0, -1)) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(400);
    // Its own cursor; the slices' is neither read nor written.
    expect(existsSync(cursorPath(project.paths, 'forty', 'attention'))).toBe(true);
    expect(existsSync(cursorPath(project.paths, 'forty'))).toBe(false);
    // The session is over: a new watch prints only the final line.
    expect((await attention([], project.dir, () => Date.parse(at(20)))).lines).toEqual([lines.at(-1)]);
  });

  it('a re-armed watch does not repeat lines; the first watch printed what came before it; --from_start repeats all', async () => {
    const project = await tempProject('dto-attention-');
    const events = fortyEvents().filter((e) => !(e.type === 'completed' && Number(e.task!.slice(2)) > 30));
    await writeSession(project.paths.dir, fortyState([31, 32, 33, 34, 35, 36, 37, 38, 39, 40]), events);
    const first = await attention(['--timeout', '0.3', '--interval_ms', '50'], project.dir, runningClock(at(6)));
    expect(first.code).toBe(3);
    expect(first.lines).toEqual([
      STALL_LINE,
      PAUSE_LINE,
      FAILED_LINE,
      `[attention] Watch ended after 0.3 s with 10 of 40 tasks still active (exit 3). Re-arm it: ${first.rearm}`,
    ]);
    await appendFile(
      project.paths.eventsPath,
      [
        ev(7, 'started', { task: T(31), agent: A(31), attempt: 2 }),
        ev(7.5, 'conflict_predicted', { task: T(32), agent: A(32), paths: ['src/app.ts', 'src/routes.ts'] }),
        ev(8, 'budget', {
          budget_usd: 1,
          on_budget: 'finish',
          error: 'budget: $1.0000 of $1.0000 spent (raise --budget_usd to run the rest)',
        }),
        // Every later capacity event carries the same pause: said once already.
        ev(8.5, 'capacity', { old_limit: 2, new_limit: 3, max_workers: 8, pause_until: at(601.8), why: 'no rate limit for 30 s' }),
      ]
        .map((e) => `${JSON.stringify(e)}\n`)
        .join(''),
    );
    const second = await attention(['--timeout', '0.3', '--interval_ms', '50'], project.dir, runningClock(at(9)));
    expect(second.code).toBe(3);
    expect(second.lines).toEqual([
      '[attention] T-32 (Agent-32) would conflict with the integration branch in src/app.ts, src/routes.ts: it keeps running; its merge may fail (its branch is then kept). Cancel it only if its work is no longer wanted.',
      '[attention] Budget reached: budget: $1.0000 of $1.0000 spent (raise --budget_usd to run the rest). The remaining tasks are skipped; running ones finish (--on_budget finish).',
      `[attention] Watch ended after 0.3 s with 10 of 40 tasks still active (exit 3). Re-arm it: ${second.rearm}`,
    ]);
    const third = await attention(['--timeout', '0.3', '--interval_ms', '50'], project.dir, runningClock(at(10)));
    expect(third.lines).toHaveLength(1);
    const again = await attention(['--from_start', '--timeout', '0.3', '--interval_ms', '50'], project.dir, runningClock(at(10)));
    expect(again.lines).toEqual([...first.lines.slice(0, 3), ...second.lines.slice(0, 2), third.lines[0]]);
    // The re-arm command is the same watch, without --from_start.
    expect(again.lines.at(-1)).toContain(
      `Re-arm it: ${launcherCommand('poll-session', `--attention --timeout 0.3 --interval_ms 50 --session_dir ${sessionDir(project.dir)}`)}`,
    );
  });

  it('what needs the model and what does not, event by event', () => {
    const state = fortyState();
    const line = (event: SessionEvent) => attentionLine(event, state);
    for (const type of ['registered', 'started', 'completed', 'skipped', 'waiting', 'cancelled', 'replaced', 'session_started'] as const)
      expect(line(ev(1, type, { task: T(1), agent: A(1), error: 'x' })), type).toBeNull();
    expect(line(ev(1, 'retrying', { task: T(1), agent: A(1), error: 'claude exited with code 1; retry 1 of 2 in 1.0 s' }))).toBeNull();
    // A completion needs the model only when its answer is not backed by what the agent did.
    expect(line(ev(1, 'completed', { task: T(1), agent: A(1), verdict: 'verified' }))).toBeNull();
    expect(line(ev(1, 'completed', { task: T(1), agent: A(1), verdict: 'unverified', evidence: ['no tool call at all'] }))).toBe(
      `[attention] ${T(1)} completed unverified (${A(1)}): no tool call at all. It claims success without evidence: do not present it as done; check its work or run it again.`,
    );
    expect(
      line(
        ev(1, 'completed', {
          task: T(1),
          agent: A(1),
          verdict: 'contradicted',
          evidence: ['the answer claims the tests pass, but `npm test` exited 1'],
        }),
      ),
    ).toBe(
      `[attention] ${T(1)} completed contradicted (${A(1)}): the answer claims the tests pass, but \`npm test\` exited 1. Its receipts disprove its answer: count it as failed, and retry or fix it.`,
    );
    expect(line(ev(1, 'capacity', { old_limit: 8, new_limit: 4, max_workers: 8, pause_until: at(61), why: 'a minute' }))).toBeNull();
    expect(line(ev(1, 'capacity', { old_limit: 8, new_limit: 4, max_workers: 8, pause_until: null, why: 'halved' }))).toBeNull();
    // A limit grown back carries the pause still in force: not a new pause.
    expect(
      line(ev(1, 'capacity', { old_limit: 2, new_limit: 3, max_workers: 8, pause_until: at(900), why: 'no rate limit for 30 s' })),
    ).toBeNull();
    expect(
      line(
        ev(1, 'capacity', {
          old_limit: 8,
          new_limit: 4,
          max_workers: 8,
          pause_until: at(62),
          why: 'new starts paused until 10:01:02 (reset time reported)',
        }),
      ),
    ).toMatch(/^\[attention\] Rate limited: new starts paused until 10:01:02 UTC \(1m01s\)/);
    const merged = fortyState();
    merged.tasks[T(7)]!.merge = {
      branch: 'dto/forty/tasks/T-07',
      worktree: null,
      status: 'conflict',
      diff_stat: null,
      conflicts: ['a.ts'],
      commit: null,
      gate_output: null,
      expected_changes_missing: false,
    };
    expect(attentionLine(ev(1, 'merge_failed', { task: T(7), agent: A(7), error: 'merge conflict in a.ts' }), merged)).toBe(
      '[attention] T-07 merge failed (Agent-07): merge conflict in a.ts. Its branch dto/forty/tasks/T-07 is kept: aggregate shows how to land or redo it. Its dependant is skipped (T-08); the other tasks go on.',
    );
    expect(line(ev(1, 'failed', { task: T(9), agent: A(9), attempt: 2, error: `boom\n${'x'.repeat(1000)}` }))).toMatch(
      /^\[attention\] T-09 failed \(Agent-09, attempt 2\): boom x+….*No task depends on it; the other tasks go on\.$/,
    );
    expect(Buffer.byteLength(line(ev(1, 'failed', { task: T(9), agent: A(9), error: 'é'.repeat(2000) }))!)).toBeLessThanOrEqual(400);
    expect(attentionLine(ev(1, 'failed', { task: T(9), agent: A(9), error: 'gone' }), state, new Set([T(9)]))).toBe(
      '[attention] T-09 failed (Agent-09): gone. --replace_dead is restarting it.',
    );
  });

  it('prints a pause once, however many capacity events carry it', () => {
    const writes: string[] = [];
    const sink = createAttentionSink({ write: (text) => void writes.push(text), nextCommand: 'next', rearmCommand: 'again' });
    const pass = { state: fortyState(), now: 0, replacing: new Set<string>() };
    const pause = (s: number) =>
      ev(s, 'capacity', { old_limit: 4, new_limit: 2, max_workers: 8, pause_until: at(900), why: 'paused until' });
    sink.history([pause(1), pause(2)], pass);
    sink.start(pass);
    sink.event(pause(3), pass);
    expect(writes).toHaveLength(1);
  });
});

describe('poll-session --attention limits and flags', () => {
  it(`a watch lasts ${DEFAULT_ATTENTION_S} s by default, --timeout S otherwise, 0 = none`, () => {
    expect(DEFAULT_ATTENTION_S).toBe(1740);
    expect(attentionTimeoutS(undefined)).toBe(1740);
    expect(attentionTimeoutS(60)).toBe(60);
    expect(attentionTimeoutS(0)).toBeUndefined();
  });

  it.each([
    [['--json'], /--attention cannot be combined with --json/],
    [['--verbose'], /--attention cannot be combined with --verbose/],
    [['--plain'], /--attention cannot be combined with --plain/],
    [['--once'], /--attention cannot be combined with --once/],
    [['--until_done'], /either --until_done .* or --attention/],
  ])('--attention %j: usage error (exit 2)', async (args, message) => {
    const project = await tempProject('dto-attention-');
    await expect(attention(args, project.dir)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(message) });
  });

  it('the real script refuses a bad combination with exit 2 and prints nothing on stdout', async () => {
    const project = await tempProject('dto-attention-');
    const result = await run('poll-session', ['--attention', '--once'], project.dir);
    expect([result.exitCode, result.stdout]).toEqual([2, '']);
    expect(result.stderr).toMatch(/--attention cannot be combined with --once/);
  });
});

describe('poll-session --attention as a process', () => {
  it('a watch stopped mid-way (killed) has already saved its cursor: the re-armed one does not repeat', async () => {
    const project = await tempProject('dto-attention-');
    const events = fortyEvents().filter((e) => !(e.type === 'completed' && Number(e.task!.slice(2)) > 30));
    await writeSession(project.paths.dir, fortyState([31, 32, 33, 34, 35, 36, 37, 38, 39, 40]), events);
    const watch = start('poll-session', ['--attention', '--timeout', '60'], project.dir);
    const cursor = cursorPath(project.paths, 'forty', 'attention');
    for (let i = 0; i < 600 && !existsSync(cursor); i++) await new Promise((r) => setTimeout(r, 25));
    watch.kill('SIGKILL');
    const killed = await watch;
    expect(killed.stdout.split('\n').slice(0, 3)).toEqual([STALL_LINE, PAUSE_LINE, FAILED_LINE]);
    const rearmed = await run('poll-session', ['--attention', '--timeout', '0.3'], project.dir);
    expect(rearmed.exitCode).toBe(3);
    expect(rearmed.stdout.trimEnd().split('\n')).toEqual([
      `[attention] Watch ended after 0.3 s with 10 of 40 tasks still active (exit 3). Re-arm it: ${launcherCommand('poll-session', '--attention --timeout 0.3')}`,
    ]);
  });
});

describe('both modes on a real mock run (scripts/run)', () => {
  it('--attention: the failure line before the final line, at most 4 lines; --until_done: one digest of at most 2 kB, exit 1', async () => {
    const project = await tempProject('dto-attention-');
    const plan = [
      'tasks:',
      '  - { id: a, goal: "do a", delay_ms: 300, fail: true }',
      '  - { id: b, goal: "do b", depends_on: [a], delay_ms: 100 }',
      '  - { id: c, goal: "do c", depends_on: [b], delay_ms: 100 }',
      '  - { id: d, goal: "do d", delay_ms: 600 }',
    ];
    await writeFile(path.join(project.dir, 'plan.yaml'), plan.join('\n'));
    const started = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '2', '--detach'], project.dir);
    expect(started.exitCode, started.all).toBe(0);
    const watch = await run('poll-session', ['--attention', '--timeout', '120'], project.dir);
    expect(watch.exitCode, watch.all).toBe(1);
    const lines = watch.stdout.trimEnd().split('\n');
    expect(lines.length).toBeLessThanOrEqual(4);
    const failed = lines.findIndex((line) => line.startsWith('[attention] a failed (Agent-01): mock agent failed on purpose (--fail).'));
    expect(failed).toBeGreaterThanOrEqual(0);
    expect(lines[failed]).toContain('Its 2 dependants are skipped (b, c)');
    expect(failed).toBeLessThan(lines.length - 1);
    expect(lines.at(-1)).toMatch(
      /^\[attention\] All 4 tasks ended: 1 completed, 1 failed, 2 skipped \(exit 1\)\. Next: ".*scripts\/run" aggregate$/,
    );
    expect(lines.every((line) => line.startsWith('[attention] '))).toBe(true);

    const digest = await run('poll-session', ['--until_done'], project.dir);
    expect(digest.exitCode, digest.all).toBe(1);
    expect(Buffer.byteLength(`${digest.stdout}\n`)).toBeLessThanOrEqual(DIGEST_MAX_BYTES);
    expect(digest.stdout.split('\n')[0]).toMatch(
      /^\[until_done\] All 4 tasks ended: 1 completed, 1 failed, 2 skipped; \d+s elapsed; exit 1\.$/,
    );
    expect(digest.stdout).toContain('- a failed: mock agent failed on purpose (--fail)');
    expect(digest.stdout).toContain('Skipped because a dependency did not complete: 2 tasks (not listed).');
    expect(digest.stdout.split('\n').filter((line) => line.startsWith('[until_done]'))).toHaveLength(1);
    // The report was written before the digest that says to read it.
    expect(digest.stdout.split('\n').at(-1)).toMatch(
      /^Next: read \.agent\/final_output\.md \(written just now; ".*scripts\/run" aggregate writes it again\)$/,
    );
    expect(await readFile(path.join(project.dir, '.agent/final_output.md'), 'utf8')).toMatch(/Completed: \*\*1 of 4\*\*/);
    // The detached run writes its last log lines after the tasks ended: let it exit before the folder is removed.
    const pid = Number(/\(pid (\d+)\)/.exec(started.stdout)![1]);
    for (let i = 0; i < 400; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});
