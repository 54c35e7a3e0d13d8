// One attention watch per session folder (the lease), and --keep_watching (the plugin's monitor), with real processes.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OrchestratorError } from '../../scripts/lib/core/errors.ts';
import { keepWatching, WATCH_LEASE_FILE, WatchLease } from '../../scripts/lib/progress/attention-watch.ts';
import { finishedEvents, finishedState, liveState, writeSession } from '../support/fixed-session.ts';
import { run, start, tempProject } from '../support/project.ts';

/** Waits until `check` holds, looking every 100 ms, at most `limitMs`. */
async function until(check: () => boolean, limitMs = 30_000): Promise<void> {
  for (let waited = 0; !check(); waited += 100) {
    if (waited > limitMs) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A detached mock run of one fast failing task and one slower task. */
async function startRun(dir: string, session: string, failing: string, slowMs: number) {
  const plan = [
    `tasks:`,
    `  - { id: ${failing}, goal: "do ${failing}", delay_ms: 300, fail: true }`,
    `  - { id: slow, goal: "slow", delay_ms: ${slowMs} }`,
  ];
  await writeFile(path.join(dir, `${session}.yaml`), plan.join('\n'));
  const started = await run('orchestrate', [`${session}.yaml`, '--agent', 'mock', '--detach', '--session_id', session], dir);
  expect(started.exitCode, started.all).toBe(0);
}

describe('poll-session --attention: one watch per session folder', () => {
  it('a second watch says another one reports and exits 0; after the first is SIGKILLed a new watch takes over without repeating', async () => {
    const project = await tempProject('dto-watch-lease-');
    // The slow task outlasts the test's waits on any machine: it ends by cancel-session, once the watches are checked.
    await startRun(project.dir, 'lease-run', 'a', 600_000);
    const first = start('poll-session', ['--attention', '--timeout', '60'], project.dir);
    let printed = '';
    first.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    await until(() => printed.includes('a failed'));
    expect(existsSync(path.join(project.paths.dir, WATCH_LEASE_FILE))).toBe(true);

    const second = await run('poll-session', ['--attention'], project.dir);
    expect(second.exitCode, second.all).toBe(0);
    expect(second.stdout).toMatch(
      /^\[attention\] Another watch \(pid \d+\) already reports this session folder's events; this one stops \(exit 0\)\.$/,
    );

    first.kill('SIGKILL');
    await first;
    const cancelled = await run('cancel-session', ['--task', 'slow'], project.dir);
    expect(cancelled.exitCode, cancelled.all).toBe(0);
    // The killed watch's lease names a process that is gone: the next watch takes it, and its cursor says the failure was told.
    const third = await run('poll-session', ['--attention', '--timeout', '60'], project.dir);
    expect(third.exitCode, third.all).toBe(1);
    expect(third.stdout).not.toMatch(/Another watch|a failed/);
    expect(third.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^\[attention\] All 2 tasks ended: 0 completed, 1 failed, 1 cancelled \(exit 1\)\./),
    ]);
  }, 90_000);
});

describe('poll-session --attention --keep_watching (the plugin monitor)', () => {
  it('waits quietly without a session, skips a run that had ended, reports each later run in turn, prints no end lines and keeps running', async () => {
    const project = await tempProject('dto-keep-watching-');
    const watch = start('poll-session', ['--attention', '--keep_watching'], project.dir);
    let printed = '';
    watch.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    const lines = () => printed.split('\n').filter(Boolean);
    try {
      // A session that ended before the watch saw it (its failure is history: never reported).
      await writeSession(project.paths.dir, finishedState(path.join(project.dir, 'results')), finishedEvents());
      for (const [session, failing] of [
        ['keep-1', 'x1'],
        ['keep-2', 'x2'],
        ['keep-3', 'x3'],
      ] as const) {
        await startRun(project.dir, session, failing, 1500);
        const ended = await run('poll-session', ['--until_done', '--timeout', '60'], project.dir);
        expect(ended.exitCode, ended.all).toBe(1);
        await until(() => printed.includes(`${failing} failed`));
      }
      // Each run's failure, in order; nothing from the finished fixture; no "All N tasks ended" between runs (each
      // run's end would have come before the next run's failure line, since one watch follows one run at a time).
      expect(lines()).toEqual([
        expect.stringMatching(/^\[attention\] x1 failed \(Agent-01\): mock agent failed on purpose/),
        expect.stringMatching(/^\[attention\] x2 failed \(Agent-01\): mock agent failed on purpose/),
        expect.stringMatching(/^\[attention\] x3 failed \(Agent-01\): mock agent failed on purpose/),
      ]);
      expect(watch.exitCode).toBeNull();
    } finally {
      watch.kill('SIGTERM');
      await watch;
    }
  }, 120_000);

  it('outlives a follow that finds the state gone (a session archived as the next starts) and follows again', async () => {
    const project = await tempProject('dto-keep-gone-');
    await writeSession(project.paths.dir, liveState(), []); // A session still going: the watch follows it.
    const stop = new AbortController();
    const calls: string[] = [];
    const watching = keepWatching({
      paths: project.paths,
      lease: new WatchLease(project.paths.dir),
      signal: stop.signal,
      follow: () => {
        calls.push(calls.length === 0 ? 'gone' : 'followed');
        if (calls.length === 1) return Promise.reject(new OrchestratorError('no_session', 'No session found'));
        stop.abort();
        return Promise.resolve(0);
      },
    });
    expect(await watching).toBe(0);
    expect(calls).toEqual(['gone', 'followed']);
  }, 30_000);

  it('is refused without --attention', async () => {
    const project = await tempProject('dto-keep-usage-');
    const result = await run('poll-session', ['--keep_watching'], project.dir);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/--keep_watching only goes with --attention/);
  });
});
