// The skill installed as the README says (a copy in ~/.claude/skills/distributed-task-orchestrator), used from another directory.
import { cp, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFiles } from '../support/project.ts';
import { REAL_CLAUDE } from '../support/claude-fixtures.ts';
import { markerReplies, startMessagesApiStub, stubEnv } from '../support/messages-api-stub.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
let home: string;
let skill: string;

beforeAll(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'dto-home-'));
  skill = path.join(home, '.claude', 'skills', 'distributed-task-orchestrator');
  await mkdir(skill, { recursive: true });
  for (const entry of await readdir(ROOT)) {
    if (['node_modules', '.git', '.agent'].includes(entry)) continue;
    await cp(path.join(ROOT, entry), path.join(skill, entry), { recursive: true });
  }
  // Stands in for `npm ci --omit=dev` in the skill folder (tests run without network).
  await symlink(path.join(ROOT, 'node_modules'), path.join(skill, 'node_modules'), 'dir');
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('installed skill', () => {
  it('runs its scripts by absolute path from a project directory, writing only into that project', async () => {
    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-user-project-'));
    try {
      const run = (name: string, ...args: string[]) =>
        execa(path.join(skill, 'scripts', 'run'), [name, ...args], { cwd: project, reject: false });
      const before = await listFiles(skill);
      const agents = await Promise.all([
        run('spawn-agent-mock', '--session_id', 'inst', '--task_name', 'scan', '--goal', 'List files', '--delay_ms', '100'),
        run(
          'spawn-agent-mock',
          '--session_id',
          'inst',
          '--task_name',
          'report',
          '--goal',
          'Say "it\'s $HOME"',
          '--delay_ms',
          '10',
          '--depends_on',
          'scan',
        ),
      ]);
      expect(agents.map((r) => r.exitCode)).toEqual([0, 0]);
      expect((await run('poll-session', '--expect', '2')).exitCode).toBe(0);
      expect((await run('aggregate')).exitCode).toBe(0);
      expect(await listFiles(path.join(project, '.agent'))).toEqual(
        expect.arrayContaining([
          'final_output.md',
          'results/report.md',
          'results/scan.md',
          'sessions/events.jsonl',
          'sessions/latest.yaml',
        ]),
      );
      const { readFile } = await import('node:fs/promises');
      expect(await readFile(path.join(project, '.agent/results/report.md'), 'utf8')).toContain(`> Say "it's $HOME"`);
      expect(await listFiles(skill)).toEqual(before);
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  });

  it('the launcher refuses unknown scripts and names with path characters', async () => {
    const bad = await execa(path.join(skill, 'scripts', 'run'), ['../../bin/sh'], { reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/expected a script name/);
    const missing = await execa(path.join(skill, 'scripts', 'run'), ['nope'], { reject: false });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/no script 'nope'/);
  });
});

describe('installed skill seen by the real claude CLI (pinned, offline against a loopback Messages API)', () => {
  it('lists distributed-task-orchestrator among the skills of its system/init message', async () => {
    const stub = await startMessagesApiStub(markerReplies());
    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-skill-project-'));
    try {
      const result = await execa(REAL_CLAUDE, ['-p', '--output-format', 'stream-json', '--verbose', '--max-turns', '1'], {
        cwd: project,
        input: 'Say hello. [[stub:answer:skills]]',
        env: stubEnv(stub, home),
        extendEnv: false,
        reject: false,
        timeout: 60_000,
      });
      const lines = result.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const init = lines.find((line) => line.type === 'system' && line.subtype === 'init');
      expect(init, `no system/init line; stderr: ${result.stderr}`).toBeDefined();
      expect(init!.skills).toEqual(expect.arrayContaining(['distributed-task-orchestrator']));
      const final = lines.at(-1)!;
      expect(final).toMatchObject({ type: 'result', is_error: false, result: 'Answer for skills.' });
    } finally {
      await stub.close();
      await rm(project, { recursive: true, force: true });
    }
  });
});
