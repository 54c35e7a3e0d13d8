// The repository as a Claude Code plugin: manifests valid for the pinned CLI, installable from a local marketplace,
// listed with its skill and /orchestrate command, and eval cases in the format `claude plugin eval` reads.
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { REAL_CLAUDE } from '../support/claude-fixtures.ts';
import { startMessagesApiStub, stubEnv, type MessagesApiStub } from '../support/messages-api-stub.ts';
import { offlinePluginEnv } from '../support/plugin-install.ts';
import { ROOT, codeBlocks, isSourceEntry } from '../support/skill-blocks.ts';

const PLUGIN = 'distributed-task-orchestrator';
const SKILL_ID = `${PLUGIN}:${PLUGIN}`;
const COMMAND_ID = `${PLUGIN}:orchestrate`;

let home: string;
let stub: MessagesApiStub;

beforeAll(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'dto-plugin-home-'));
  stub = await startMessagesApiStub(() => ({ type: 'text', text: 'Plugin listed.' }));
});
afterAll(async () => {
  await stub.close();
  await rm(home, { recursive: true, force: true, maxRetries: 5 });
});

describe('plugin manifests', () => {
  it.each(['.', '.claude-plugin/plugin.json'])(
    'claude plugin validate --strict %s passes and provides the skill, /orchestrate and the attention monitor',
    async (target) => {
      const result = await execa(REAL_CLAUDE, ['plugin', 'validate', '--strict', '--json', target], {
        cwd: ROOT,
        env: offlinePluginEnv(home),
        extendEnv: false,
        reject: false,
      });
      expect(result.exitCode, result.stdout + result.stderr).toBe(0);
      const report = JSON.parse(result.stdout) as {
        success: boolean;
        provides: { skills: string[]; commands: string[]; monitors: Array<{ name: string; command: string }> };
      };
      expect(report.success).toBe(true);
      expect(report.provides.skills).toEqual([SKILL_ID]);
      expect(report.provides.commands).toEqual([COMMAND_ID]);
      // Every monitor runs the same watch (the launcher, with flags poll-session has: checked against its --help below).
      const command = '"${CLAUDE_PLUGIN_ROOT}/scripts/run" poll-session --attention --keep_watching';
      expect(report.provides.monitors).toEqual([
        { name: 'attention', command },
        { name: 'attention-qualified', command },
        { name: 'attention-orchestrate', command },
      ]);
    },
  );

  it('the monitors arm on every name that loads the skill, and name only flags poll-session has', async () => {
    const plugin = JSON.parse(await readFile(path.join(ROOT, '.claude-plugin/plugin.json'), 'utf8')) as {
      experimental: { monitors: Array<{ command: string; when: string }> };
    };
    // Claude Code 2.1.330 arms "on-skill-invoke:<name>" with the name as invoked: the Skill tool passes the name the model
    // wrote (short or plugin-qualified: test/skill/interactive-plugin-monitor.test.ts), a slash command its qualified name.
    // One watch per session folder (attention-watch.ts) keeps a second armed monitor from reporting twice.
    expect(plugin.experimental.monitors.map((m) => m.when)).toEqual([
      `on-skill-invoke:${PLUGIN}`,
      `on-skill-invoke:${SKILL_ID}`,
      `on-skill-invoke:${COMMAND_ID}`,
    ]);
    const help = await execa(path.join(ROOT, 'scripts/run'), ['poll-session', '--help'], { cwd: ROOT });
    for (const monitor of plugin.experimental.monitors)
      for (const [, flag] of monitor.command.matchAll(/--([a-z_]+)/g)) expect(help.stdout).toContain(`--${flag}`);
  });

  it('plugin.json, marketplace.json and package.json agree on the name and version', async () => {
    const plugin = JSON.parse(await readFile(path.join(ROOT, '.claude-plugin/plugin.json'), 'utf8')) as {
      name: string;
      version: string;
      skills: string[];
    };
    const market = JSON.parse(await readFile(path.join(ROOT, '.claude-plugin/marketplace.json'), 'utf8')) as {
      plugins: Array<{ name: string; source: string; version: string }>;
    };
    expect(plugin).toMatchObject({ name: PLUGIN, skills: ['./'] });
    expect(market.plugins).toEqual([expect.objectContaining({ name: PLUGIN, source: './', version: plugin.version })]);
  });
});

describe('installed from a local marketplace into a temp HOME (pinned CLI, loopback Messages API)', () => {
  let repo: string;
  beforeAll(async () => {
    // A clone of the repository as a user would have it: no node_modules, no .git, no run state.
    repo = path.join(home, 'src', PLUGIN);
    await mkdir(repo, { recursive: true });
    for (const entry of await readdir(ROOT)) {
      if (!isSourceEntry(entry)) continue;
      await cp(path.join(ROOT, entry), path.join(repo, entry), { recursive: true });
    }
    const env = offlinePluginEnv(home);
    const add = await execa(REAL_CLAUDE, ['plugin', 'marketplace', 'add', repo], { cwd: home, env, extendEnv: false, reject: false });
    expect(add.exitCode, add.stdout + add.stderr).toBe(0);
    const install = await execa(REAL_CLAUDE, ['plugin', 'install', `${PLUGIN}@${PLUGIN}`], {
      cwd: home,
      env,
      extendEnv: false,
      reject: false,
    });
    expect(install.exitCode, install.stdout + install.stderr).toBe(0);
    // Two CLI starts and a copy of the repository: under load (two busy cores beside the suite) over a minute.
  }, 300_000);

  it('the CLI lists the skill and the /orchestrate command in system/init', async () => {
    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-plugin-project-'));
    try {
      const result = await execa(REAL_CLAUDE, ['-p', '--output-format', 'stream-json', '--verbose', '--max-turns', '1'], {
        cwd: project,
        input: 'Say hello.',
        env: stubEnv(stub, home),
        extendEnv: false,
        reject: false,
        timeout: 60_000,
      });
      const lines = result.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const init = lines.find((line) => line.type === 'system' && line.subtype === 'init') as
        { skills: string[]; slash_commands: string[] } | undefined;
      expect(init, `no system/init line; stderr: ${result.stderr}`).toBeDefined();
      expect(init!.skills).toContain(SKILL_ID);
      expect(init!.slash_commands).toContain(COMMAND_ID);
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  });

  it('/orchestrate reaches the model with the plugin folder and the arguments filled in', async () => {
    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-plugin-project-'));
    try {
      const result = await execa(REAL_CLAUDE, ['-p', '--output-format', 'json', '--max-turns', '1'], {
        cwd: project,
        input: `/${COMMAND_ID} plans/review.yaml --workers 3`,
        env: stubEnv(stub, home),
        extendEnv: false,
        reject: false,
        timeout: 60_000,
      });
      expect(result.exitCode, result.stderr).toBe(0);
      const bodies = stub.requests.filter((r) => r.method === 'POST' && r.body.includes('# /orchestrate')).map((r) => r.body);
      expect(bodies.length).toBeGreaterThan(0);
      const text = JSON.stringify(JSON.parse(bodies.at(-1)!));
      expect(text).toContain('Arguments: `plans/review.yaml --workers 3`');
      expect(text).not.toContain('${CLAUDE_PLUGIN_ROOT}');
      // The launcher by absolute path, as the command's blocks and its allowed-tools name it.
      const root = /\\"([^"\\]+)\/scripts\/run\\" orchestrate PLAN/.exec(text)?.[1];
      expect(root, 'no launcher path in the command text the model received').toBeDefined();
      expect((await stat(path.join(root!, 'scripts', 'run'))).isFile()).toBe(true);
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  });
});

describe('commands/orchestrate.md', () => {
  it("every shell block names the plugin's launcher by the plugin folder, the frontmatter pre-approves exactly that launcher, and the command is described", async () => {
    const text = await readFile(path.join(ROOT, 'commands/orchestrate.md'), 'utf8');
    const blocks = codeBlocks(text).filter((b) => b.lang === 'sh');
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    const launcher = '"${CLAUDE_PLUGIN_ROOT}/scripts/run"';
    for (const block of blocks)
      expect(block.body.startsWith(launcher) || block.body.startsWith('(cd "${CLAUDE_PLUGIN_ROOT}" && npm ci'), block.body).toBe(true);
    expect(text).toMatch(
      /^---\ndescription: .+\nargument-hint: .+\nallowed-tools: Bash\(\$\{CLAUDE_PLUGIN_ROOT\}\/scripts\/run \*\)\n---\n/,
    );
    for (const step of [
      '--detach',
      'poll-session --until_done',
      'run_in_background: true',
      'aggregate',
      '.agent/master_plan.md',
      '--workers',
    ])
      expect(text).toContain(step);
    // The approval lapses at a new turn: the command says how to renew it.
    expect(text).toMatch(/invoke the `distributed-task-orchestrator` skill/);
  });
});

/**
 * The case.yaml schema of `claude plugin eval` as Claude Code 2.1.330 validates it (read from the CLI's bundled
 * validator: schema_version, name, execution.prompt, graders of six types, strict objects).
 */
const Arm = z.enum(['with-only', 'both']).optional();
const Grader = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('regex'),
      name: z.string(),
      target: z.string().optional(),
      pattern: z.string(),
      flags: z
        .string()
        .regex(/^[dgimsuvy]*$/)
        .optional(),
      match: z.string().optional(),
      weight: z.number().positive().optional(),
      arm: Arm,
    })
    .strict(),
  z
    .object({
      type: z.literal('tool_used'),
      name: z.string(),
      tool: z.string(),
      input_match: z.string().optional(),
      min: z.number().int().nonnegative().optional(),
      max: z.number().int().nonnegative().optional(),
      weight: z.number().positive().optional(),
      arm: Arm,
    })
    .strict(),
  z
    .object({
      type: z.literal('file_exists'),
      name: z.string(),
      path: z.string(),
      exists: z.boolean().optional(),
      weight: z.number().positive().optional(),
      arm: Arm,
    })
    .strict(),
  z
    .object({
      type: z.literal('llm'),
      name: z.string(),
      criteria: z.string(),
      focus: z.string().optional(),
      weight: z.number().positive().optional(),
      arm: Arm,
    })
    .strict(),
]);
const Case = z
  .object({
    schema_version: z.literal('1.0'),
    name: z.string().min(1),
    description: z.string().optional(),
    tags: z.array(z.string()).optional(),
    execution: z
      .object({
        prompt: z.string().min(1),
        max_turns: z.number().int().positive().max(200).optional(),
        timeout_seconds: z.number().int().positive().max(3600).optional(),
        allowed_tools: z.array(z.string()).optional(),
      })
      .strict(),
    runs: z.number().int().positive().max(50).optional(),
    graders: z.array(Grader).min(1),
  })
  .strict();

describe('evals/ (cases for claude plugin eval; scored for real only with a real model)', () => {
  it('claude plugin eval loads every case and grades it without a grader error (offline, a scripted stub as the model)', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'dto-evals-'));
    // Plays a model that fires the skill for the two parallel requests (as the plugin names it) and answers the rest.
    const evalStub = await startMessagesApiStub((request) => {
      const fires = /twelve service modules|eight Markdown files/.test(request.body) && !request.body.includes('"tool_result"');
      if (fires && request.body.includes('"name":"Skill"')) return { type: 'tool_use', name: 'Skill', input: { skill: SKILL_ID } };
      return { type: 'text', text: 'One task per file; the critical path is the longest chain of dependent tasks.' };
    });
    try {
      const result = await execa(
        REAL_CLAUDE,
        [
          'plugin',
          'eval',
          '.',
          '--runs',
          '1',
          '--ablation',
          'none',
          '--trust-plugin',
          '--no-publish',
          '--output-dir',
          out,
          '--json',
          path.join(out, 'result.json'),
        ],
        {
          cwd: ROOT,
          env: { ...stubEnv(evalStub, home), PATH: process.env.PATH ?? '/usr/bin:/bin' },
          extendEnv: false,
          reject: false,
          timeout: 120_000,
          input: '',
        },
      );
      const report = JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8')) as {
        cases: Array<{ name: string; arms: { with: Array<{ graders: Array<{ name: string; passed: boolean; explanation: string }> }> } }>;
      };
      const graders = new Map(report.cases.map((c) => [c.name, new Map(c.arms.with[0]!.graders.map((g) => [g.name, g]))]));
      expect([...graders.keys()].sort(), result.stderr).toEqual([
        'e2e-mock-rehearsal',
        'no-trigger-question',
        'no-trigger-single-edit',
        'trigger-parallel-review',
        'trigger-translate-batch',
      ]);
      const errors = [...graders.values()].flatMap((g) => [...g.values()]).filter((g) => /threw|invalid/i.test(g.explanation));
      expect(errors).toEqual([]);
      // The Skill graders match the plugin's own name for the skill, and stay quiet when it is not called.
      expect(graders.get('trigger-parallel-review')!.get('skill-fired')!.passed).toBe(true);
      expect(graders.get('trigger-translate-batch')!.get('skill-fired')!.passed).toBe(true);
      expect(graders.get('trigger-translate-batch')!.get('one-task-per-file')!.passed).toBe(true);
      expect(graders.get('no-trigger-single-edit')!.get('skill-not-fired')!.passed).toBe(true);
      expect(graders.get('no-trigger-question')!.get('skill-not-fired')!.passed).toBe(true);
      expect(graders.get('no-trigger-question')!.get('answers-the-question')!.passed).toBe(true);
      // Only the end-to-end case needs tools this run did not grant (Bash, Write: --allow-tools and a sandbox).
      const cannot = [...result.stderr.matchAll(/case "([^"]+)": grader "[^"]+" cannot pass/g)].map((m) => m[1]);
      expect(new Set(cannot)).toEqual(new Set(['e2e-mock-rehearsal']));
    } finally {
      await evalStub.close();
      await rm(out, { recursive: true, force: true });
    }
  }, 150_000);

  it('every case.yaml matches the format, grader names are unique, and the suite covers firing, not firing and one mock run', async () => {
    const dirs = (await readdir(path.join(ROOT, 'evals'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    const cases = await Promise.all(
      dirs.map(async (dir) => ({ dir, data: YAML.parse(await readFile(path.join(ROOT, 'evals', dir, 'case.yaml'), 'utf8')) as unknown })),
    );
    const problems = cases.flatMap(({ dir, data }) => {
      const parsed = Case.safeParse(data);
      return parsed.success ? [] : [`${dir}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`];
    });
    expect(problems).toEqual([]);
    const parsed = cases.map(({ dir, data }) => ({ dir, data: Case.parse(data) }));
    for (const { dir, data } of parsed) {
      expect(data.name).toBe(dir);
      expect(new Set(data.graders.map((g) => g.name)).size).toBe(data.graders.length);
    }
    const skillGraders = (max: 'fires' | 'quiet') =>
      parsed.filter(({ data }) =>
        data.graders.some((g) => g.type === 'tool_used' && g.tool === 'Skill' && (max === 'quiet' ? g.max === 0 : (g.min ?? 1) >= 1)),
      );
    expect(skillGraders('fires').length).toBeGreaterThanOrEqual(2);
    expect(skillGraders('quiet').length).toBeGreaterThanOrEqual(2);
    const e2e = parsed.filter(({ data }) =>
      data.graders.some((g) => g.type === 'tool_used' && g.tool === 'Bash' && /--agent mock/.test(g.input_match ?? '')),
    );
    expect(e2e.map(({ dir }) => dir)).toEqual(['e2e-mock-rehearsal']);
  });
});
