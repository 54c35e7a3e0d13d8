// Runs that outlive their caller: agents started through scripts/run and `orchestrate --detach` survive the caller's process group being killed.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUN_PATH } from '../../scripts/lib/launcher/dist.ts';
import { startDetachedRun } from '../../scripts/lib/execution/detach.ts';
import { OrchestratorError } from '../../scripts/lib/core/errors.ts';
import type { SessionState } from '../../scripts/lib/state/schema.ts';
import { run, tempProject } from '../support/project.ts';

const FAKE_CLAUDE_DIR = path.join(import.meta.dirname, '../support', 'fake-claude');

async function until(check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met in time');
}

const statuses = (state: SessionState | null) =>
  Object.fromEntries(Object.entries(state?.tasks ?? {}).map(([name, task]) => [name, task.status]));
const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

describe('agents started through scripts/run run in a session of their own', () => {
  it.each(['SIGKILL', 'SIGTERM', 'SIGHUP'] as const)(
    '%s to the process group of the shell that started them (and its stdout closed) does not stop them',
    async (signal) => {
      const project = await tempProject('dto-detach-');
      const agent = (args: string) => `${quote(RUN_PATH)} spawn-agent-mock --session_id grp ${args} &`;
      // As in a Claude Code Bash call: agents started with "&", the shell waits; the group is killed from outside.
      const script = [
        agent('--task_name first --goal "first part" --delay_ms 2500'),
        agent('--task_name second --goal "second part" --delay_ms 300 --depends_on first'),
        'wait',
      ].join('\n');
      const shell = execa('sh', ['-c', script], { cwd: project.dir, detached: true, reject: false });
      await until(async () => {
        const s = statuses(await project.state());
        return s.first === 'running' && s.second === 'waiting';
      });
      process.kill(-shell.pid!, signal);
      // Nobody reads the agents' output any more: their next progress line meets a closed pipe.
      shell.stdout.destroy();
      shell.stderr.destroy();
      await shell;
      await until(async () => {
        const s = statuses(await project.state());
        return ['completed', 'failed', 'skipped', 'cancelled'].includes(s.second ?? '');
      });
      expect(statuses(await project.state())).toEqual({ first: 'completed', second: 'completed' });
    },
  );

  it('without setsid (perl POSIX::setsid, as on macOS), also when the launcher leads its own group, keeping the exit code', async () => {
    const project = await tempProject('dto-detach-');
    const env = { DTO_SETSID: 'perl' };
    // A process started detached leads its group, so setsid() fails there: the perl fallback forks first.
    const leader = execa(RUN_PATH, ['spawn-agent-mock', '--task_name', 'lead', '--goal', 'g', '--delay_ms', '2000'], {
      cwd: project.dir,
      detached: true,
      reject: false,
      env,
    });
    await until(async () => statuses(await project.state()).lead === 'running');
    process.kill(-leader.pid!, 'SIGKILL');
    await leader;
    await until(async () => statuses(await project.state()).lead !== 'running');
    expect(statuses(await project.state()).lead).toBe('completed');
    const failing = await execa(RUN_PATH, ['spawn-agent-mock', '--task_name', 'bad', '--goal', 'g', '--delay_ms', '0', '--fail'], {
      cwd: project.dir,
      detached: true,
      reject: false,
      env,
    });
    expect(failing.exitCode, failing.all).toBe(1);
    const inPlace = await execa('sh', ['-c', `${quote(RUN_PATH)} spawn-agent-mock --task_name ok --goal g --delay_ms 0 & wait $!`], {
      cwd: project.dir,
      reject: false,
      env,
    });
    expect(inPlace.exitCode, inPlace.stderr).toBe(0);
  });
});

const PLAN = (delayMs: number, count = 3) =>
  [
    'tasks:',
    ...Array.from(
      { length: count },
      (_, i) => `  - { id: t${i + 1}, goal: "part ${i + 1}", delay_ms: ${delayMs}${i > 0 ? `, depends_on: [t${i}]` : ''} }`,
    ),
  ].join('\n');

describe('orchestrate --detach', () => {
  it.each(['SIGKILL', 'SIGTERM', 'SIGHUP'] as const)(
    "prints the three lines and returns while the run goes on; %s to the caller's process group leaves the run going to completion",
    async (signal) => {
      const project = await tempProject('dto-detach-');
      await writeFile(path.join(project.dir, 'plan.yaml'), PLAN(1200));
      const shell = execa('sh', ['-c', `${quote(RUN_PATH)} orchestrate plan.yaml --agent mock --detach --session_id bg-run; sleep 30`], {
        cwd: project.dir,
        detached: true,
        reject: false,
      });
      let printed = '';
      shell.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
      await until(async () => printed.includes('Slices: '));
      const logPath = path.join(project.paths.dir, 'bg-run.log');
      expect(printed.split('\n')).toEqual([
        expect.stringMatching(/^Started session bg-run in the background \(pid \d+\): 3 tasks, mock agents\.$/),
        `Log: ${logPath}`,
        `Wait: "${RUN_PATH}" poll-session --until_done`,
        `Slices: "${RUN_PATH}" poll-session --timeout 90`,
        '',
      ]);
      // Registered before the lines were printed, so a poll right away finds the session; most of the work is still ahead.
      const state = (await project.state())!;
      expect(state.session_id).toBe('bg-run');
      expect(Object.values(statuses(state)).filter((status) => status === 'completed').length).toBeLessThan(3);
      process.kill(-shell.pid!, signal);
      await shell;
      const waited = await run('poll-session', ['--timeout', '60'], project.dir);
      expect(waited.exitCode, waited.all).toBe(0);
      expect(statuses(await project.state())).toEqual({ t1: 'completed', t2: 'completed', t3: 'completed' });
      // The detached run prints its summary after its last commit, which the wait has seen: give it a moment.
      await until(async () => (await readFile(logPath, 'utf8')).includes('Session bg-run: 3 of 3 completed'), 30_000);
    },
  );

  it('refuses bad input in the foreground: nothing is started and no session folder is made', async () => {
    const project = await tempProject('dto-detach-');
    await writeFile(
      path.join(project.dir, 'cycle.yaml'),
      'tasks:\n  - { id: a, goal: g, depends_on: [b] }\n  - { id: b, goal: g, depends_on: [a] }\n',
    );
    await writeFile(path.join(project.dir, 'plan.yaml'), PLAN(10, 1));
    const cases: Array<[string[], RegExp]> = [
      [['cycle.yaml', '--agent', 'mock', '--detach'], /cycle/i],
      [['plan.yaml', '--detach'], /Missing --agent: pass --agent mock for a rehearsal .* or --agent claude for real/],
      [['plan.yaml', '--agent', 'mock', '--detach', '--session_id', '../x'], /--session_id/],
      [['missing.yaml', '--agent', 'mock', '--detach'], /missing\.yaml/],
    ];
    for (const [args, message] of cases) {
      const result = await run('orchestrate', args, project.dir);
      expect(result.exitCode, result.all).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    expect(existsSync(project.paths.dir)).toBe(false);
  });

  it('refuses to start a plan over a session that is still running, which would break both', async () => {
    const project = await tempProject('dto-detach-');
    // A chain of three 4 s tasks: the second start comes while some are active however slow the machine (it names those).
    await writeFile(path.join(project.dir, 'plan.yaml'), PLAN(4000, 3));
    const first = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--detach', '--session_id', 'first'], project.dir);
    expect(first.exitCode, first.all).toBe(0);
    const second = await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--detach', '--session_id', 'second'], project.dir);
    expect(second.exitCode, second.all).toBe(2);
    expect(second.stderr).toMatch(
      /Session first in .* is still running \(active: ((t1, )?t2, )?t3\)\. Wait for it .*poll-session --timeout 90/,
    );
    const waited = await run('poll-session', ['--timeout', '60'], project.dir);
    expect(waited.exitCode, waited.all).toBe(0);
    expect((await project.state())!.session_id).toBe('first');
    expect(statuses(await project.state())).toEqual({ t1: 'completed', t2: 'completed', t3: 'completed' });
    // Once it ended, the next plan starts (and archives it).
    expect((await run('orchestrate', ['plan.yaml', '--agent', 'mock', '--session_id', 'second'], project.dir)).exitCode).toBe(0);
  });

  it('a run that dies before registering its session: exit 1 with the tail of its log', async () => {
    const project = await tempProject('dto-detach-');
    const failure = await startDetachedRun({
      paths: project.paths,
      sessionId: 'doomed',
      args: ['no-such-plan.yaml', '--agent', 'mock', '--session_id', 'doomed'],
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(OrchestratorError);
    expect(failure).toMatchObject({ code: 'agent_failed', exitCode: 1 });
    expect((failure as Error).message).toMatch(
      /ended before registering session doomed \(exit 2\)\. Last lines of .*doomed\.log:\nerror: .*no-such-plan\.yaml/,
    );
  });
});

describe('orchestrate --agent claude preflight (claude auth status)', () => {
  const withFake = (extra: Record<string, string> = {}) => ({ PATH: `${FAKE_CLAUDE_DIR}:${process.env.PATH}`, ...extra });

  it('fails before anything is written when claude is not logged in, or missing; runs when it is', async () => {
    const project = await tempProject('dto-detach-');
    await writeFile(path.join(project.dir, 'plan.yaml'), PLAN(10, 1));
    const out = await run(
      'orchestrate',
      ['plan.yaml', '--agent', 'claude', '--detach'],
      project.dir,
      withFake({ FAKE_CLAUDE_AUTH: 'none' }),
    );
    expect(out.exitCode, out.all).toBe(2);
    expect(out.stderr).toMatch(/claude is not logged in .*auth status.* exited 1.*ANTHROPIC_API_KEY.*--agent mock/);
    const missing = await run(
      'orchestrate',
      ['plan.yaml', '--agent', 'claude', '--claude_bin', path.join(project.dir, 'nope')],
      project.dir,
    );
    expect(missing.exitCode, missing.all).toBe(2);
    expect(missing.stderr).toMatch(/The claude CLI .*nope" was not found\. Install it/);
    expect(existsSync(project.paths.dir)).toBe(false);
    const ok = await run('orchestrate', ['plan.yaml', '--agent', 'claude'], project.dir, withFake());
    expect(ok.exitCode, ok.all).toBe(0);
    expect(statuses(await project.state())).toEqual({ t1: 'completed' });
  });
});
