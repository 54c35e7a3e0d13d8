// poll-session in bounded slices (the default off a terminal): only what changed since the previous call, one summary line, exit 3 while active.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, sliceTimeoutS } from '../../scripts/poll-session.ts';
import { launcherCommand } from '../../scripts/lib/launcher/dist.ts';
import { cursorPath } from '../../scripts/lib/progress/poll-cursor.ts';
import { formatElapsed } from '../../scripts/lib/report/session-summary.ts';
import { at, finishedEvents, finishedState, writeSession } from '../support/fixed-session.ts';
import { run, start, tempProject } from '../support/project.ts';

const CLOCK = () => Date.parse(at(20));

function fakeStdout(isTTY = false) {
  let text = '';
  return { stream: { isTTY, columns: 100, rows: 30, write: (chunk: string) => ((text += chunk), true) }, text: () => text };
}

/** Runs poll-session's main in this process on the project's session folder (passed as --session_dir). */
async function poll(args: string[], cwd: string, clock?: () => number): Promise<{ code: number; text: string }> {
  const out = fakeStdout();
  const code = await main([...args, '--session_dir', sessionDir(cwd)], { stdout: out.stream, env: {}, clock });
  return { code, text: out.text() };
}

const sessionDir = (cwd: string) => path.join(cwd, '.agent', 'sessions');

async function until(check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met in time');
}

describe('poll-session slices on a fixed state', () => {
  it('prints event lines and one summary line, no status table; a second call prints only the summary; --from_start everything again', async () => {
    const project = await tempProject('dto-slice-');
    await writeSession(project.paths.dir, finishedState('/results'), finishedEvents());
    const first = await poll([], project.dir, CLOCK);
    expect(first.code).toBe(1);
    expect(first.text).not.toContain('ORCHESTRATION STATUS');
    expect(first.text).not.toContain('EXECUTION SUMMARY');
    expect(first.text).not.toMatch(/registered \(/);
    const lines = first.text.trimEnd().split('\n');
    expect(lines.filter((line) => line.startsWith('[poll]'))).toHaveLength(1);
    expect(lines.at(-1)).toBe(
      `[poll] All 5 tasks ended: 3 completed, 1 failed, 1 skipped; 10s elapsed. Next: ${launcherCommand('aggregate', `--session_dir ${JSON.stringify(sessionDir(project.dir))}`)} (exit 1).`,
    );
    expect(lines.filter((line) => / completed by /.test(line))).toHaveLength(3);

    const second = await poll([], project.dir, CLOCK);
    expect(second.code).toBe(1);
    expect(second.text.trimEnd().split('\n')).toEqual([lines.at(-1)]);

    const again = await poll(['--from_start'], project.dir, CLOCK);
    expect(again.text).toBe(first.text);
  });

  it('keeps one cursor file per session, and --verbose and --json neither use nor move it', async () => {
    const project = await tempProject('dto-slice-');
    await writeSession(project.paths.dir, finishedState('/results'), finishedEvents());
    const verbose = await poll(['--verbose'], project.dir, CLOCK);
    expect(verbose.text).toContain('ORCHESTRATION STATUS');
    await expect(import('node:fs/promises').then((fs) => fs.stat(cursorPath(project.paths, 'done-fixture')))).rejects.toThrow();
    await poll([], project.dir, CLOCK);
    const json = await poll(['--json'], project.dir, CLOCK);
    expect(json.text.trimEnd().split('\n').length).toBeGreaterThan(5);
    expect((await poll([], project.dir, CLOCK)).text.trimEnd().split('\n')).toHaveLength(1);
  });

  it('a cursor that no longer fits events.jsonl (another file, or past its end) is ignored, not trusted', async () => {
    const project = await tempProject('dto-slice-');
    await writeSession(project.paths.dir, finishedState('/results'), finishedEvents());
    const full = await poll([], project.dir, CLOCK);
    await writeFile(
      cursorPath(project.paths, 'done-fixture'),
      JSON.stringify({ session_id: 'done-fixture', ino: 1, offset: 10 ** 9, saved_at: at(0) }),
    );
    expect((await poll([], project.dir, CLOCK)).text).toBe(full.text);
  });
});

describe('poll-session slice length', () => {
  it('defaults to 90 s off a terminal (at most 3/4 of the Bash tool limit), no limit on one, and --timeout 0 means no limit', () => {
    expect(sliceTimeoutS(undefined, false)).toBe(90);
    expect(sliceTimeoutS(undefined, true)).toBeUndefined();
    expect(sliceTimeoutS(0, false)).toBeUndefined();
    expect(sliceTimeoutS(5, true)).toBe(5);
    // Inside Claude Code with a lowered Bash tool limit, a slice never outlives the tool call.
    expect(sliceTimeoutS(undefined, false, { BASH_DEFAULT_TIMEOUT_MS: '10000' })).toBe(7);
    expect(sliceTimeoutS(90, false, { BASH_DEFAULT_TIMEOUT_MS: '120000' })).toBe(90);
    expect(sliceTimeoutS(0, false, { BASH_DEFAULT_TIMEOUT_MS: '10000' })).toBeUndefined();
    expect(sliceTimeoutS(undefined, true, { BASH_DEFAULT_TIMEOUT_MS: '10000' })).toBeUndefined();
    expect(formatElapsed(252_000)).toBe('4m12s');
    expect(formatElapsed(3_900_000)).toBe('1h05m');
  });

  it('exits 3 with one "Still running" line when the slice ends before the tasks, then shows only what is new', async () => {
    const project = await tempProject('dto-slice-');
    // Runs long enough for the first slice to start and end before it, on a loaded machine too (2.5 s once was not).
    const agent = start('spawn-agent-mock', ['--task_name', 'slow', '--goal', 'g', '--delay_ms', '12000'], project.dir);
    await until(async () => (await project.state())?.tasks.slow?.status === 'running');
    const first = await run('poll-session', ['--timeout', '0.3'], project.dir);
    expect(first.exitCode, first.all).toBe(3);
    expect(first.stdout).toMatch(
      /🔵 slow started by Agent-01\n\[poll\] 0\/1 completed, 1 running, 0 waiting, 0 failed; \d+s elapsed\. Still running: run the same command again \(exit 3\)\.$/,
    );
    const second = await run('poll-session', ['--timeout', '60'], project.dir);
    await agent;
    expect(second.exitCode, second.all).toBe(0);
    expect(second.stdout).not.toContain('started by');
    expect(second.stdout).toMatch(/✅ slow completed by Agent-01 in .*\n/);
    expect(second.stdout.trimEnd().split('\n').at(-1)).toMatch(
      /^\[poll\] All 1 tasks ended: 1 completed; \d+s elapsed\. Next: ".*scripts\/run" aggregate \(exit 0\)\.$/,
    );
  });
});

describe('poll-session with no session', () => {
  it('a slice shorter than the session wait that sees no session exits 2 with what to do, not exit 3 "run again" forever', async () => {
    // A model in the wrong folder, waiting in 2 s slices (a Bash limit lowered below 13 s gives slices under 10 s).
    const project = await tempProject('dto-slice-');
    const exits: number[] = [];
    for (let i = 0; i < 3; i++) {
      const slice = await run('poll-session', ['--timeout', '2'], project.dir);
      exits.push(slice.exitCode!);
      expect(slice.stdout).not.toMatch(/run the same command again/);
      expect(slice.stderr).toMatch(
        /No session found at .*latest\.yaml after 2 s\. Start agents first, run this from the project directory/,
      );
    }
    expect(exits).toEqual([2, 2, 2]);
    // Asked for explicitly, a session wait longer than the slice still ends the slice with exit 3.
    const patient = await run('poll-session', ['--timeout', '0.5', '--wait_for_session', '30'], project.dir);
    expect([patient.exitCode, patient.stdout.trim()]).toEqual([
      3,
      '[poll] No session appeared within 0.5 s: run the same command again (exit 3).',
    ]);
  });
});

describe('poll-session output size over a whole run', () => {
  it('a 20-task run read in short slices: at most 3 kB per call, under 40 kB in all, every event shown exactly once', async () => {
    const project = await tempProject('dto-slice-');
    const plan = [
      'tasks:',
      ...Array.from(
        { length: 20 },
        (_, i) => `  - { id: T-${String(i + 1).padStart(2, '0')}-analysis-task, goal: "part ${i + 1}", delay_ms: 1200 }`,
      ),
    ];
    await writeFile(path.join(project.dir, 'plan.yaml'), plan.join('\n'));
    const started = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--workers', '4', '--detach'], project.dir);
    expect(started.exitCode, started.all).toBe(0);
    const sizes: number[] = [];
    const texts: string[] = [];
    let code = 3;
    for (let i = 0; i < 400 && code === 3; i++) {
      const slice = await poll(['--timeout', '0.25'], project.dir);
      code = slice.code;
      sizes.push(Buffer.byteLength(slice.text));
      texts.push(slice.text);
    }
    expect(code).toBe(0);
    const all = texts.join('');
    // Recorded for bench/RESULTS.md by bench/poll-bytes.ts; here the bounds of issue 10.
    expect(sizes.length).toBeGreaterThanOrEqual(10);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3 * 1024);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThan(40 * 1024);
    for (let i = 1; i <= 20; i++) {
      const name = `T-${String(i).padStart(2, '0')}-analysis-task`;
      expect(all.split(`✅ ${name} completed by`).length - 1).toBe(1);
      expect(all.split(`🔵 ${name} started by`).length - 1).toBe(1);
    }
    expect(texts.slice(0, -1).every((text) => /Still running: run the same command again \(exit 3\)\.\n$/.test(text))).toBe(true);
    expect(texts.at(-1)).toMatch(
      /\[poll\] All 20 tasks ended: 20 completed; \d+s elapsed\. Next: ".*scripts\/run" aggregate .*\(exit 0\)\.\n$/,
    );
    // The detached run writes its last log lines after the tasks ended: let it exit before the folder is removed.
    const pid = Number(/\(pid (\d+)\)/.exec(started.stdout)![1]);
    await until(async () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
  });
});
