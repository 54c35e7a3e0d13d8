// A task's check: parsed without a shell (shell syntax refused with a clear error), run in the agent's folder with a
// time limit that ends its whole tree, its output tail kept; and the launch signature that lets a queued task's check
// be replayed only when this user recorded it.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OrchestratorError } from '../../scripts/lib/core/errors.ts';
import { isProcessRunning } from '../../scripts/lib/process/tree.ts';
import {
  CHECK_TAIL_CHARS,
  checkFailedPrompt,
  parseCheckCommand,
  readTaskCheck,
  runCheck,
} from '../../scripts/lib/verification/task-check.ts';
import { agentLaunch, validateAgentLaunch } from '../../scripts/lib/execution/agent-command.ts';
import { LAUNCH_KEY_ENV, launchSignatureValid, signLaunch } from '../../scripts/lib/execution/launch-signature.ts';
import { tempDir } from '../support/claude-fixtures.ts';

const NODE = process.execPath;

describe('parseCheckCommand', () => {
  it('splits words as a shell would (quotes, backslashes), with no shell', async () => {
    expect(await parseCheckCommand('npm test', '--check')).toEqual(['npm', 'test']);
    expect(await parseCheckCommand(`pytest -q "tests/a b.py" -k 'not slow'`, '--check')).toEqual([
      'pytest',
      '-q',
      'tests/a b.py',
      '-k',
      'not slow',
    ]);
    expect(await parseCheckCommand('node -e "process.exit(1)"', '--check')).toEqual(['node', '-e', 'process.exit(1)']);
  });

  it.each([
    ['npm test && rm -rf /', 'operator "&&"'],
    ['npm test | tee log', 'operator "|"'],
    ['npm test; echo', 'operator ";"'],
    ['npm test > out.txt', 'operator ">"'],
    ['echo $HOME', 'variable $HOME'],
    ['ls *.ts', 'pattern "*.ts"'],
    ['npm test # later', 'comment'],
    ['   ', 'is empty'],
    ['npm test\nrm -rf /', 'line break'],
  ])('refuses %j (%s) with a usage error naming the value and what to write instead', async (text, why) => {
    const error = await parseCheckCommand(text, 'plan.yaml: task T').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OrchestratorError);
    expect((error as OrchestratorError).code).toBe('usage');
    expect((error as Error).message).toContain('plan.yaml: task T');
    expect((error as Error).message).toContain(why);
    expect((error as Error).message).toContain('put anything more in a script');
  });

  it('refuses a time limit that is not a positive number of seconds', async () => {
    await expect(readTaskCheck('npm test', 0, '--check_timeout')).rejects.toThrow(/positive number of seconds, got 0/);
    expect(await readTaskCheck('npm test', 1.5, '--check')).toEqual({ command: 'npm test', argv: ['npm', 'test'], timeoutMs: 1500 });
  });
});

describe('runCheck', () => {
  it('runs in the given folder and reports exit 0, or the exit code and the tail of its output', async () => {
    const dir = await tempDir('dto-check-');
    const pass = await runCheck({ command: 'pass', argv: [NODE, '-e', 'console.log(process.cwd())'], timeoutMs: 30_000 }, dir);
    expect(pass).toMatchObject({ command: 'pass', exit: 0, timedOut: false });
    expect(pass.output_tail.trim()).toBe(dir);
    const script =
      'for (let i = 0; i < 2000; i++) console.log("line " + i); console.error("FAILED: expected 42, got 41"); process.exitCode = 3';
    const fail = await runCheck({ command: 'fail', argv: [NODE, '-e', script], timeoutMs: 30_000 }, dir);
    expect(fail).toMatchObject({ exit: 3, timedOut: false });
    expect(fail.output_tail.length).toBeLessThanOrEqual(CHECK_TAIL_CHARS + 1);
    expect(fail.output_tail).toMatch(/^…/);
    expect(fail.output_tail).toContain('line 1999');
    // Standard output and error are two pipes: their interleaving is not ordered, but both are in the tail.
    expect(fail.output_tail).toContain('FAILED: expected 42, got 41');
    const prompt = checkFailedPrompt(fail);
    expect(prompt).toContain('`fail` exited 3');
    expect(prompt).toContain('FAILED: expected 42, got 41');
  });

  it('a program that cannot start is exit null with the reason, never a throw', async () => {
    const run = await runCheck({ command: 'nope', argv: ['dto-no-such-program-xyz'], timeoutMs: 30_000 }, await tempDir('dto-check-'));
    expect(run.exit).toBeNull();
    expect(run.output_tail).toMatch(/ENOENT|not found/);
  });

  it('at its time limit, the check and everything it started are ended', async () => {
    const dir = await tempDir('dto-check-');
    const pidFile = path.join(dir, 'grandchild.pid');
    // The check starts a grandchild (its own output ignored) that would outlive it, then hangs.
    const script =
      `const { spawn } = require('node:child_process'); const fs = require('node:fs');` +
      `const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });` +
      `fs.writeFileSync(${JSON.stringify(pidFile)}, String(c.pid)); console.log('started'); setInterval(() => {}, 1000);`;
    const run = await runCheck({ command: 'hang', argv: [NODE, '-e', script], timeoutMs: 1500 }, dir);
    expect(run).toMatchObject({ exit: null, timedOut: true });
    expect(run.output_tail).toContain('started');
    expect(run.output_tail).toContain('(timed out after 1.5 s)');
    const grandchild = Number(await readFile(pidFile, 'utf8'));
    const deadline = Date.now() + 10_000;
    while (isProcessRunning(grandchild) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(isProcessRunning(grandchild)).toBe(false);
  });

  it('a check that exits but leaves a process holding its output does not hang: its group is ended', async () => {
    const dir = await tempDir('dto-check-');
    const script =
      `const { spawn } = require('node:child_process');` +
      `spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'inherit' }).unref(); process.exit(0);`;
    const run = await runCheck({ command: 'daemon', argv: [NODE, '-e', script], timeoutMs: 120_000 }, dir);
    expect(run).toMatchObject({ exit: 0, timedOut: false });
  });

  it('an abort ends a running check', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 500);
    const run = await runCheck(
      { command: 'hang', argv: [NODE, '-e', 'setInterval(() => {}, 1000)'], timeoutMs: 120_000 },
      await tempDir('dto-check-'),
      controller.signal,
    );
    expect(run.exit).toBeNull();
    expect(run.timedOut).toBe(false);
  });
});

describe('signed launches', () => {
  it("a launch with --check is signed with the user's key, and replayed only while the signature matches", async () => {
    const dir = await tempDir('dto-launch-');
    const env = { ...process.env, [LAUNCH_KEY_ENV]: path.join(await tempDir('dto-key-'), 'sub', 'launch.key') };
    const args = ['--task_name', 't', '--goal', 'g', '--check', 'npm test'];
    const launch = agentLaunch('spawn-agent-mock', args, dir, env);
    expect(launch.signature).toMatch(/^[0-9a-f]{64}$/);
    expect(launchSignatureValid(launch, env)).toBe(true);
    // The key file was created private to the user.
    const { stat } = await import('node:fs/promises');
    expect((await stat(env[LAUNCH_KEY_ENV])).mode & 0o777).toBe(0o600);
    // A launch without a program to run carries no signature.
    expect(agentLaunch('spawn-agent-mock', ['--task_name', 't', '--goal', 'g'], dir, env).signature).toBeUndefined();
    // Any change of flags, folder or script breaks it; another user's key does not sign it.
    expect(launchSignatureValid({ ...launch, args: [...args.slice(0, -1), 'rm -rf ~'] }, env)).toBe(false);
    expect(launchSignatureValid({ ...launch, cwd: path.join(dir, 'x') }, env)).toBe(false);
    const other = { ...process.env, [LAUNCH_KEY_ENV]: path.join(await tempDir('dto-key-'), 'launch.key') };
    expect(launchSignatureValid(launch, other)).toBe(false);
    expect(signLaunch(launch, other)).not.toBe(launch.signature);
  });

  it('validateAgentLaunch refuses a recorded --check that is unsigned or signed by another key, and takes a signed one', async () => {
    const dir = await tempDir('dto-launch-');
    await mkdir(path.join(dir, '.agent', 'sessions'), { recursive: true });
    const statePath = path.join(dir, '.agent', 'sessions', 'latest.yaml');
    await writeFile(statePath, '');
    const args = ['--task_name', 't', '--goal', 'g', '--check', 'node -e 1'];
    const saved = process.env[LAUNCH_KEY_ENV];
    process.env[LAUNCH_KEY_ENV] = path.join(await tempDir('dto-key-'), 'launch.key');
    try {
      const signed = agentLaunch('spawn-agent-mock', args, dir);
      expect(validateAgentLaunch(signed, 't', statePath)).toEqual(signed);
      const { signature: _dropped, ...unsigned } = signed;
      expect(() => validateAgentLaunch(unsigned, 't', statePath)).toThrow(/--check is not signed with this user's launch key/);
      expect(() => validateAgentLaunch({ ...signed, signature: 'a'.repeat(64) }, 't', statePath)).toThrow(/not signed/);
    } finally {
      if (saved === undefined) delete process.env[LAUNCH_KEY_ENV];
      else process.env[LAUNCH_KEY_ENV] = saved;
    }
  });
});
