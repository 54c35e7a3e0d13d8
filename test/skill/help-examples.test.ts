// Every --help prints the launcher form that works from a user's project, and every example line of it runs there.
import { execa } from 'execa';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUN_PATH, SKILL_DIR } from '../../scripts/lib/launcher/dist.ts';
import { tempProject } from '../support/project.ts';
import { serverSkipReason, startPostgres } from '../support/servers.ts';

const SCRIPTS_DIR = path.join(SKILL_DIR, 'scripts');
const FAKE_CLAUDE_DIR = path.join(import.meta.dirname, '../support', 'fake-claude');
/** Real agents run the fake claude found first on PATH (it answers `auth status` too): no account, no network. */
const ENV = { PATH: `${FAKE_CLAUDE_DIR}${path.delimiter}${process.env.PATH}` };
const SCRIPTS = ['spawn-agent-mock', 'spawn-agent', 'orchestrate', 'poll-session', 'aggregate', 'cancel-session', 'demo'];

const TASKS = ['T-01', 'T-02', 'T-03', 'T-04', 'T-05'];
const DEPS: Record<string, string[]> = {
  'T-01': [],
  'T-02': ['T-01'],
  'T-03': ['T-01'],
  'T-04': ['T-01'],
  'T-05': ['T-02', 'T-03', 'T-04'],
};
const PLAN_YAML =
  ['tasks:', ...TASKS.map((id) => `  - { id: ${id}, goal: "part ${id}", depends_on: [${DEPS[id]!.join(', ')}], delay_ms: 50 }`)].join(
    '\n',
  ) + '\n';
const MASTER_PLAN = [
  '# Plan',
  '',
  '| Task ID | Task Name | Description | Dependencies | Priority | Files | Status |',
  '|---------|-----------|-------------|--------------|----------|-------|--------|',
  ...TASKS.map((id) => `| ${id} | ${id} | Part ${id} | ${DEPS[id]!.join(', ') || 'None'} | P1 | | 🟡 Pending |`),
  '',
].join('\n');

/** A user's project: the plans and the task file the examples name, nothing of the skill. */
async function userProject() {
  const project = await tempProject('dto-help-');
  await mkdir(path.join(project.dir, '.agent', 'tasks'), { recursive: true });
  await writeFile(path.join(project.dir, 'plan.yaml'), PLAN_YAML);
  await writeFile(path.join(project.dir, '.agent', 'master_plan.md'), MASTER_PLAN);
  await writeFile(
    path.join(project.dir, '.agent', 'tasks', 'T-02.md'),
    '---\ntask_name: T-02\ngoal: Review the code\n---\nRead src/ and list the problems.\n',
  );
  return project;
}

const sh = (line: string, cwd: string) => execa('sh', ['-c', line], { cwd, env: ENV, reject: false, all: true });

/** Waits until the project's current session has ended (after an example that started a detached run). */
async function waitForRun(cwd: string): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const poll = await sh(`"${RUN_PATH}" poll-session --timeout 30`, cwd);
    if (poll.exitCode !== 3) return;
  }
}

function helpParts(help: string): { usage: string; examples: string[] } {
  const lines = help.split('\n');
  const start = lines.indexOf('Examples:');
  const examples: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') break;
    examples.push(line.trim());
  }
  return { usage: lines[0]!, examples };
}

describe("help examples work from a user's project", () => {
  it('no script, header or help in scripts/ tells anyone to run `npx tsx scripts/NAME.ts`', async () => {
    const files = (await readdir(SCRIPTS_DIR, { recursive: true })).filter((file) => /\.(ts|sh)$|^run$|^build$/.test(path.basename(file)));
    const offenders: string[] = [];
    for (const file of files) {
      const text = await readFile(path.join(SCRIPTS_DIR, file), 'utf8');
      if (/npx tsx scripts\/|env -S npx tsx/.test(text)) offenders.push(file);
    }
    expect(offenders).toEqual([]);
  });

  it('covers every script in scripts/ (worker, which needs a server, below)', async () => {
    const scripts = (await readdir(SCRIPTS_DIR)).filter((file) => file.endsWith('.ts')).map((file) => file.slice(0, -3));
    expect(scripts.sort()).toEqual([...SCRIPTS, 'worker'].sort());
  });

  it.each(SCRIPTS)(
    "%s: the usage line and every example use this install's launcher, and each example runs (mock or fake agents)",
    async (name) => {
      const project = await userProject();
      const help = await sh(`"${RUN_PATH}" ${name} --help`, project.dir);
      expect(help.exitCode, help.all).toBe(0);
      const { usage, examples } = helpParts(help.stdout);
      expect(usage.startsWith(`Usage: "${RUN_PATH}" ${name} `)).toBe(true);
      expect(help.stdout).not.toContain('npx ');
      expect(examples.length).toBeGreaterThan(0);
      if (['poll-session', 'aggregate', 'cancel-session'].includes(name)) {
        // These read a session: the user has run a plan before.
        const setup = await sh(`"${RUN_PATH}" orchestrate plan.yaml --agent mock --quiet`, project.dir);
        expect(setup.exitCode, setup.all).toBe(0);
      }
      for (const example of examples) {
        expect(example.startsWith(`"${RUN_PATH}" ${name}`), example).toBe(true);
        // An agent started with "&" runs in the foreground here, so its exit code is seen.
        const line = example.replace(/\s*&$/, '');
        const result = await sh(line, project.dir);
        expect(result.all, line).not.toMatch(/missing packages|command not found|not found: npx|Unknown option|Run `.*--help`/);
        expect([result.exitCode, line, result.all]).toEqual([0, line, result.all]);
        if (/--detach/.test(line)) await waitForRun(project.dir);
      }
    },
    300_000,
  ); // demo and orchestrate run whole plans of mock agents (1-3 s each), several times.
});

describe.skipIf(serverSkipReason('postgres') !== null)("worker's help examples work from a user's project (a throwaway PostgreSQL)", () => {
  it("the usage line and every example use this install's launcher; each one connects, pulls from the queue and exits 0 on SIGTERM", async () => {
    const server = await startPostgres();
    try {
      const project = await userProject();
      const help = await sh(`"${RUN_PATH}" worker --help`, project.dir);
      expect(help.exitCode, help.all).toBe(0);
      const { usage, examples } = helpParts(help.stdout);
      expect(usage.startsWith(`Usage: "${RUN_PATH}" worker `)).toBe(true);
      expect(help.stdout).not.toContain('npx ');
      expect(examples.length).toBeGreaterThan(0);
      for (const example of examples) {
        expect(example.startsWith(`"${RUN_PATH}" worker`), example).toBe(true);
        // Only what names the example's machine changes: its server becomes the test server, ~/checkout the project.
        const line = example
          .replace(/\s+#.*$/, '')
          .replace(/postgres:\/\/\S+/, server.url)
          .replace('~/checkout', project.dir);
        const worker = execa('sh', ['-c', `exec ${line}`], {
          cwd: project.dir,
          env: { ...ENV, DTO_BULLMQ_CONNECTION: server.url },
          reject: false,
          all: true,
        });
        let stderr = '';
        worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        for (const end = Date.now() + 60_000; !/^worker .*: \w+ agents, \d+ at once, queue /m.test(stderr);) {
          if (worker.exitCode !== null || Date.now() > end) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        worker.kill('SIGTERM');
        const result = await worker;
        expect(result.all, line).not.toMatch(/missing packages|command not found|Unknown option|Run `.*--help`/);
        expect([result.exitCode, line, result.all]).toEqual([0, line, result.all]);
        expect(stderr).toMatch(/: SIGTERM, finishing running jobs/);
      }
    } finally {
      await server.stop();
    }
  }, 180_000);
});
