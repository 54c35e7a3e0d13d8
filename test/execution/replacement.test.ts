// Worker replacement never runs a command read from the state file: the launch is data, validated and rebuilt.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { agentLaunch, validateAgentLaunch } from '../../scripts/lib/execution/agent-command.ts';
import { readState, updateState } from '../../scripts/lib/state/state-store.ts';
import { openSession, registerTask, setStatus } from '../../scripts/lib/scheduling/transitions.ts';
import { replaceDeadTasks, type RefusedReplacement } from '../../scripts/lib/execution/worker-replacement.ts';
import { run, tempProject } from '../support/project.ts';

type Project = Awaited<ReturnType<typeof tempProject>>;

/**
 * A session whose task `name` died (failed, agent_died, an attempt left) with `launch` written
 * into latest.yaml as given: a hand edit, or a file from a cloned repository.
 */
async function deadTaskWithLaunch(project: Project, name: string, launch: unknown): Promise<void> {
  await updateState(project.paths, (tx) => {
    const state = openSession(tx, { sessionId: 'rep' });
    registerTask(tx, state, { name, goal: 'g', runner: 'mock', pid: 424242, pidStart: '1', maxAttempts: 2 });
    setStatus(tx, state, name, 'running');
    setStatus(tx, state, name, 'failed', { reason: 'agent process exited without reporting', agent_died: true });
  });
  const data = YAML.parse(await readFile(project.paths.statePath, 'utf8')) as { tasks: Record<string, { launch: unknown }> };
  data.tasks[name]!.launch = launch;
  await writeFile(project.paths.statePath, YAML.stringify(data));
}

/** A script that, if it ever ran, would leave a marker file: proof of code execution. */
async function markerScript(project: Project): Promise<{ script: string; marker: string }> {
  const marker = path.join(project.dir, 'PWNED');
  const script = path.join(project.dir, 'evil.cjs');
  await writeFile(script, `#!/usr/bin/env node\nrequire('fs').writeFileSync(${JSON.stringify(marker)}, 'x');\n`, { mode: 0o755 });
  return { script, marker };
}

describe('a hostile launch in latest.yaml is never executed', () => {
  it('the old layout (node argv) is read as no launch: poll-session --replace_dead runs nothing and exits 1', async () => {
    const project = await tempProject('dto-rep-');
    const { marker } = await markerScript(project);
    await deadTaskWithLaunch(project, 'victim', {
      argv: ['-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`],
      cwd: project.dir,
    });
    expect((await readState(project.paths))!.tasks.victim!.launch).toBeNull();
    const poll = await run('poll-session', ['--replace_dead', '--timeout', '20'], project.dir);
    expect(poll.exitCode, poll.all).toBe(1);
    await delay(500);
    expect(existsSync(marker)).toBe(false);
    expect((await readState(project.paths))!.tasks.victim).toMatchObject({ status: 'failed', attempts: 1, replaced_attempt: null });
  });

  it.each([
    [
      'a node option (--require)',
      (evil: string) => ({ script: 'spawn-agent-mock', args: ['--require', evil, '--task_name', 'victim', '--goal', 'g'] }),
      /--require/,
    ],
    [
      'node -e',
      (evil: string) => ({
        script: 'spawn-agent-mock',
        args: ['-e', `require(${JSON.stringify(evil)})`, '--task_name', 'victim', '--goal', 'g'],
      }),
      /-e/,
    ],
    [
      'another script path',
      (evil: string) => ({ script: evil, args: ['--task_name', 'victim', '--goal', 'g'] }),
      /is not one of spawn-agent, spawn-agent-mock/,
    ],
    ['a relative script path', () => ({ script: '../../evil', args: ['--task_name', 'victim', '--goal', 'g'] }), /is not one of/],
    ['an unknown flag', () => ({ script: 'spawn-agent-mock', args: ['--task_name', 'victim', '--goal', 'g', '--bogus', 'x'] }), /--bogus/],
    [
      'a stray argument',
      (evil: string) => ({ script: 'spawn-agent-mock', args: ['--task_name', 'victim', '--goal', 'g', evil] }),
      /Unexpected argument/,
    ],
    [
      '--claude_bin naming an executable',
      (evil: string) => ({ script: 'spawn-agent', args: ['--task_name', 'victim', '--goal', 'g', '--claude_bin', evil] }),
      /--claude_bin/,
    ],
    [
      'claude --settings after --',
      (evil: string) => ({ script: 'spawn-agent', args: ['--task_name', 'victim', '--goal', 'g', '--', '--settings', evil] }),
      /--settings/,
    ],
    [
      'claude --dangerously-skip-permissions after --',
      () => ({ script: 'spawn-agent', args: ['--task_name', 'victim', '--goal', 'g', '--', '--dangerously-skip-permissions'] }),
      /dangerously/,
    ],
    [
      '--permission_mode bypassPermissions',
      () => ({ script: 'spawn-agent', args: ['--task_name', 'victim', '--goal', 'g', '--permission_mode', 'bypassPermissions'] }),
      /bypass/,
    ],
    ['another task name', () => ({ script: 'spawn-agent-mock', args: ['--task_name', 'other', '--goal', 'g'] }), /not the task's name/],
    [
      'a --task_file outside the project (its text would go to the model)',
      () => ({ script: 'spawn-agent', args: ['--task_name', 'victim', '--task_file', '/etc/passwd'] }),
      /--task_file "\/etc\/passwd" is outside/,
    ],
    [
      'an --output_dir outside the project',
      () => ({ script: 'spawn-agent-mock', args: ['--task_name', 'victim', '--goal', 'g', '--output_dir', '../elsewhere'] }),
      /--output_dir "\.\.\/elsewhere" is outside/,
    ],
    [
      'an --add_dir outside the project',
      () => ({ script: 'spawn-agent', args: ['--task_name', 'victim', '--goal', 'g', '--add_dir', '/'] }),
      /--add_dir "\/" is outside/,
    ],
  ])('refuses %s, leaves the task failed and says why', async (_label, make, why) => {
    const project = await tempProject('dto-rep-');
    const { script, marker } = await markerScript(project);
    await deadTaskWithLaunch(project, 'victim', { ...make(script), cwd: project.dir });
    const refused: RefusedReplacement[] = [];
    expect(await replaceDeadTasks(project.paths, (entry) => refused.push(entry))).toEqual([]);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toMatch(why);
    const task = (await readState(project.paths))!.tasks.victim!;
    expect(task).toMatchObject({ status: 'failed', attempts: 1, launch: null, replaced_attempt: null });
    expect(task.error).toMatch(/^agent process exited without reporting; not replaced: recorded launch refused: /);
    // Refused once: the next pass does not try again.
    expect(await replaceDeadTasks(project.paths, (entry) => refused.push(entry))).toEqual([]);
    expect(refused).toHaveLength(1);
    await delay(300);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a launch whose directory is elsewhere or missing (it would join another session)', async () => {
    const project = await tempProject('dto-rep-');
    const elsewhere = await tempProject('dto-rep-other-');
    const args = ['--task_name', 'victim', '--goal', 'g'];
    expect(() => validateAgentLaunch({ script: 'spawn-agent-mock', args, cwd: elsewhere.dir }, 'victim', project.paths.statePath)).toThrow(
      /would join the session at .*dto-rep-other-.*latest\.yaml/,
    );
    expect(() =>
      validateAgentLaunch({ script: 'spawn-agent-mock', args, cwd: path.join(project.dir, 'gone') }, 'victim', project.paths.statePath),
    ).toThrow(/is not an existing directory/);
    expect(() => validateAgentLaunch({ script: 'spawn-agent-mock', args, cwd: 'relative' }, 'victim', project.paths.statePath)).toThrow(
      /not an absolute path/,
    );
    expect(() =>
      validateAgentLaunch(
        {
          script: 'spawn-agent-mock',
          args: ['--task_name', 'victim', '--goal', 'g', '--session_dir', elsewhere.paths.dir],
          cwd: project.dir,
        },
        'victim',
        project.paths.statePath,
      ),
    ).toThrow(/would join the session/);
  });

  it('poll-session --replace_dead with a --claude_bin launch: nothing runs, the reason is printed, exit 1', async () => {
    const project = await tempProject('dto-rep-');
    const { script, marker } = await markerScript(project);
    await deadTaskWithLaunch(project, 'victim', {
      script: 'spawn-agent',
      args: ['--task_name', 'victim', '--goal', 'g', '--claude_bin', script],
      cwd: project.dir,
    });
    const poll = await run('poll-session', ['--replace_dead', '--timeout', '20'], project.dir);
    expect(poll.exitCode, poll.all).toBe(1);
    expect(poll.stderr).toMatch(/not replacing victim: recorded launch refused: .*--claude_bin/);
    await delay(500);
    expect(existsSync(marker)).toBe(false);
  });
});

describe('legitimate launches', () => {
  it('records the flags as data and accepts them back (session flags dropped, same session)', async () => {
    const project = await tempProject('dto-rep-');
    await mkdir(path.join(project.dir, 'sub'));
    const launch = agentLaunch(
      'spawn-agent-mock',
      ['--task_name', 'a', '--goal', 'two words', '--session_id', 'x', '--new_session', '--delay_ms', '5'],
      project.dir,
    );
    expect(launch).toEqual({
      script: 'spawn-agent-mock',
      args: ['--task_name', 'a', '--goal', 'two words', '--delay_ms', '5'],
      cwd: project.dir,
    });
    expect(validateAgentLaunch(launch, 'a', project.paths.statePath)).toEqual(launch);
    const claude = agentLaunch(
      'spawn-agent',
      ['--task_name', 'a', '--goal', 'g', '--model', 'sonnet', '--', '--effort', 'high'],
      project.dir,
    );
    expect(validateAgentLaunch(claude, 'a', project.paths.statePath)).toEqual(claude);
  });
});
