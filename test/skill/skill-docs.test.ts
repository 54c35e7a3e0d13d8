// Docs as tests: SKILL.md's frontmatter meets the Agent Skills spec, and every script and flag the docs name exists.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import matter from 'gray-matter';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { run } from '../support/project.ts';
import { LAUNCHER, REF_PLACEHOLDER, SKILL_DIR_VAR, codeBlocks, skillShellBlocks } from '../support/skill-blocks.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * The frontmatter rules of ../shared/agent-skills-spec.md (the public Agent Skills specification and
 * skill-creator's quick validation): allowed keys, name and description limits, compatibility length,
 * metadata as a string map.
 */
const FrontmatterSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z0-9-]+$/, 'lowercase a-z, 0-9 and -')
      .refine((name) => !name.startsWith('-') && !name.endsWith('-'), 'no leading or trailing -')
      .refine((name) => !name.includes('--'), 'no --'),
    description: z
      .string()
      .min(1)
      .max(1024)
      .refine((text) => !/[<>]/.test(text), 'no < or >'),
    license: z.string().min(1).max(100).optional(),
    'allowed-tools': z.union([z.string(), z.array(z.string())]).optional(),
    compatibility: z.string().min(1).max(500).optional(),
    metadata: z.record(z.string(), z.string()).optional(),
  })
  .strict();

async function docs(): Promise<Array<{ file: string; text: string }>> {
  const refs = (await readdir(path.join(ROOT, 'references'))).filter((f) => f.endsWith('.md')).map((f) => `references/${f}`);
  return Promise.all(['SKILL.md', ...refs].map(async (file) => ({ file, text: await readFile(path.join(ROOT, file), 'utf8') })));
}

/** Everything a model or a user copies commands from: the skill, its references, the templates and the /orchestrate command. */
async function commandSources(): Promise<Array<{ file: string; text: string }>> {
  const templates = (await readdir(path.join(ROOT, 'templates'))).map((f) => `templates/${f}`);
  const extra = await Promise.all(
    ['commands/orchestrate.md', ...templates].map(async (file) => ({ file, text: await readFile(path.join(ROOT, file), 'utf8') })),
  );
  return [...(await docs()), ...extra];
}

/**
 * Whether a path relative to the repository exists; a `*` in its last part matches any characters of one name
 * (`test/agents/claude-*.test.ts`), a trailing `/` names a folder.
 */
async function repoPathExists(named: string): Promise<boolean> {
  const clean = named.replace(/\/$/, '');
  const dir = path.join(ROOT, path.dirname(clean));
  const base = path.basename(clean);
  const pattern = new RegExp(
    `^${base
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]*')}$`,
  );
  const entries = await readdir(dir).catch(() => [] as string[]);
  return base.includes('*') ? entries.some((entry) => pattern.test(entry)) : entries.includes(base);
}

describe('SKILL.md', () => {
  it('has frontmatter that meets every rule of the Agent Skills spec', async () => {
    const skill = matter(await readFile(path.join(ROOT, 'SKILL.md'), 'utf8'), {});
    const parsed = FrontmatterSchema.safeParse(skill.data);
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
    expect(skill.data.name).toBe('distributed-task-orchestrator');
    for (const word of [
      'parallel',
      'concurrent',
      'sub-agents',
      'agents',
      'orchestrate',
      'coordinate',
      'break down',
      'decompose',
      'subtasks',
    ]) {
      expect(String(skill.data.description).toLowerCase()).toContain(word);
    }
    expect(skill.data.compatibility).toMatch(/Node\.js 20\.19/);
    expect(skill.data.compatibility).toMatch(/claude/);
  });

  it('keeps the body under 500 lines and links every reference with a "read when" line', async () => {
    const skill = matter(await readFile(path.join(ROOT, 'SKILL.md'), 'utf8'), {});
    expect(skill.content.split('\n').length).toBeLessThan(500);
    const refs = (await readdir(path.join(ROOT, 'references'))).filter((f) => f.endsWith('.md'));
    for (const ref of refs) expect(skill.content).toMatch(new RegExp(`\\[references/${ref}\\]\\(references/${ref}\\) — read when`));
  });

  it('gives references over 300 lines a table of contents', async () => {
    for (const { file, text } of await docs()) {
      if (file !== 'SKILL.md' && text.split('\n').length > 300) expect(text, file).toMatch(/## Contents/);
    }
  });

  it('links only files that exist', async () => {
    for (const { file, text } of await docs()) {
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const base = file === 'SKILL.md' ? ROOT : path.join(ROOT, 'references');
        await expect(readFile(path.resolve(base, target!)), `${file} links ${target}`).resolves.toBeDefined();
      }
    }
  });
});

describe('commands a model can run verbatim', () => {
  it("every shell block of SKILL.md names the skill's folder by Claude Code's variable, never by a variable of its own (each Bash call is a fresh shell)", async () => {
    const blocks = await skillShellBlocks();
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    expect(blocks.filter((body) => !body.includes(SKILL_DIR_VAR))).toEqual([]);
    expect(blocks.filter((body) => /^S=|\$S\//m.test(body))).toEqual([]);
  });

  it("every SKILL.md command starts with the launcher, so the frontmatter's allowed-tools rule covers it (and covers nothing else)", async () => {
    const text = await readFile(path.join(ROOT, 'SKILL.md'), 'utf8');
    expect(matter(text).data['allowed-tools']).toBe(`Bash(${SKILL_DIR_VAR}/scripts/run *)`);
    const commands = (await skillShellBlocks())
      .flatMap((body) => body.replace(/<<'EOF'\n[\s\S]*?\nEOF\n/g, "<<'EOF'\n").split('\n'))
      .filter((line) => line.trim() !== '' && !/^\s/.test(line) && !/^(for|done|wait)\b/.test(line));
    // The set-up line runs npm in the skill's folder: it is not the launcher and asks the user (SKILL.md says so).
    const other = commands.filter((line) => !line.startsWith(LAUNCHER) && !line.startsWith(`(cd "${SKILL_DIR_VAR}" && npm ci`));
    expect(other).toEqual([]);
  });

  it('SKILL.md keeps one line for clients that do not fill in the variable, from the "Base directory for this skill" line', async () => {
    const text = await readFile(path.join(ROOT, 'SKILL.md'), 'utf8');
    expect(text).toContain('Base directory for this skill: ...');
    expect(text).toContain('CLAUDE_SKILL_DIR="<Base directory for this skill>";');
    expect(text).toMatch(/fresh shell|new turn starts/);
  });

  it("no doc, template or command uses `npx tsx scripts/` or `scripts/NAME.ts` as a command (it fails from a user's project)", async () => {
    const problems: string[] = [];
    for (const { file, text } of await commandSources()) {
      if (/npx tsx scripts\//.test(text)) problems.push(`${file}: npx tsx scripts/`);
      for (const block of codeBlocks(text))
        if (/scripts\/[a-z-]+\.ts\b/.test(block.body)) problems.push(`${file}: scripts/NAME.ts in a code block`);
    }
    expect(problems).toEqual([]);
  });

  it("the references and templates name the skill's folder only as <skill-dir> (SKILL.md defines it), never by a variable set in a block or a fixed path", async () => {
    const problems: string[] = [];
    for (const { file, text } of await commandSources()) {
      if (file === 'SKILL.md' || file === 'commands/orchestrate.md') continue;
      if (/^S=|\$S\/|Base directory for this skill|~\/\.claude\/skills\/distributed/m.test(text)) problems.push(file);
      if (text.includes(SKILL_DIR_VAR)) problems.push(`${file}: ${SKILL_DIR_VAR} is filled in only in SKILL.md`);
    }
    expect(problems).toEqual([]);
    const skill = await readFile(path.join(ROOT, 'SKILL.md'), 'utf8');
    expect(skill).toContain(`\`${REF_PLACEHOLDER}\`: replace it with \`${SKILL_DIR_VAR}\``);
  });

  it('every file or folder of this repository that the docs name exists (a test command naming a moved file runs nothing)', async () => {
    const sources = [
      ...(await commandSources()),
      ...(await Promise.all(
        ['README.md', 'AGENTS.md', 'evals/README.md'].map(async (file) => ({ file, text: await readFile(path.join(ROOT, file), 'utf8') })),
      )),
    ];
    const problems: string[] = [];
    for (const { file, text } of sources) {
      for (const [named] of text.matchAll(/\b(?:scripts|bench|templates|references|evals|commands|test)\/[\w./*-]*[\w*/]/g)) {
        if (/\bNAME\b/.test(named)) continue; // a placeholder, as in `scripts/NAME.ts`
        if (!(await repoPathExists(named))) problems.push(`${file}: ${named}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('says "plan runner", never "plan mode" (which is Claude Code\'s own mode and --permission_mode plan)', async () => {
    const problems = (await commandSources()).filter(({ text }) => /plan mode/i.test(text)).map(({ file }) => file);
    expect(problems).toEqual([]);
  });

  it('the widest-layer rule and the examples agree: every example graph has a layer of 3 or more tasks', async () => {
    const skill = await readFile(path.join(ROOT, 'SKILL.md'), 'utf8');
    expect(skill).toMatch(/\*\*Fewer than 3\*\*/);
    // The background-mode block and the plan of SKILL.md: scan, then three reviews at once (each depending on the scan only), then the report.
    const blocks = await skillShellBlocks();
    const spawn = blocks.find((b) => b.includes('spawn-agent --session_id'))!;
    for (const review of ['quality', 'security', 'performance'])
      expect(spawn).toMatch(new RegExp(`--task_name ${review} --depends_on scan `));
    expect(spawn).toMatch(/--task_name report --depends_on quality,security,performance /);
    const heredoc = /<<'EOF'\n([\s\S]*?)\nEOF/.exec(blocks.find((b) => b.includes('orchestrate -'))!)![1]!;
    const skillPlan = (await import('yaml')).parse(heredoc) as { tasks: Array<{ id: string; depends_on?: string[] }> };
    expect(skillPlan.tasks.filter((t) => t.depends_on?.join() === 'scan').map((t) => t.id)).toEqual(['quality', 'security', 'performance']);
    const examples = await readFile(path.join(ROOT, 'references/examples.md'), 'utf8');
    const plan = /cat > auth-plan\.yaml <<'PLAN'\n([\s\S]*?)\nPLAN/.exec(examples)![1]!;
    const { tasks } = (await import('yaml')).parse(plan) as { tasks: Array<{ id: string; depends_on?: string[] }> };
    // Layers by longest path from a task without dependencies (Kahn), kept here so the test reads the plan only.
    const layer = new Map<string, number>();
    const depth = (id: string): number => {
      if (!layer.has(id)) layer.set(id, 1 + Math.max(0, ...(tasks.find((t) => t.id === id)!.depends_on ?? []).map(depth)));
      return layer.get(id)!;
    };
    const widths = new Map<number, number>();
    for (const t of tasks) widths.set(depth(t.id), (widths.get(depth(t.id)) ?? 0) + 1);
    expect(Math.max(...widths.values())).toBeGreaterThanOrEqual(3);
  });
});

describe('docs name only scripts and flags that exist', () => {
  const help = new Map<string, string>();
  /** Flags of other programs that the docs mention on purpose (claude's own, npm's, node's). */
  const FOREIGN = new Set([
    'omit',
    'dangerously-skip-permissions',
    'output-format',
    'input-format',
    'permission-mode',
    'max-turns',
    'max-budget-usd',
    'allowedTools',
    'disallowedTools',
    'append-system-prompt',
    'add-dir',
    'model',
    'print',
    'verbose',
    'import',
    'session-id',
    'resume',
    'version',
    'help',
    'json-schema',
    'no-session-persistence',
    'settings',
    'mcp-config',
    'fallback-model',
    'effort',
    'tools',
    'system-prompt',
    'fork-session',
    'global',
    'stat',
    'numstat',
    // git's own flags, quoted in references/worktrees.md.
    'write-tree',
    'ff-only',
    'force',
    'is-ancestor',
  ]);

  beforeAll(async () => {
    const scripts = (await readdir(path.join(ROOT, 'scripts'))).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));
    await Promise.all(
      scripts.map(async (name) => {
        const result = await run(name, ['--help'], ROOT);
        expect(result.exitCode, `${name} --help`).toBe(0);
        help.set(name, result.stdout);
      }),
    );
  });

  it('every command in the docs names a script whose --help lists each flag used with it', async () => {
    const problems: string[] = [];
    for (const { file, text } of await commandSources()) {
      const joined = text.replace(/\\\n\s*/g, ' ');
      for (const match of joined.matchAll(/scripts\/(?:run"?\s+([a-z][a-z-]*)|([a-z][a-z-]*)\.ts)([^\n`|]*)/g)) {
        const script = match[1] ?? match[2]!;
        if (!help.has(script)) {
          problems.push(`${file}: no script ${script}`);
          continue;
        }
        const own = match[3]!.split(/\s--\s/)[0]!;
        for (const [, flag] of own.matchAll(/(?:^|\s)--([a-z][a-z_-]*)/g)) {
          const snake = flag!.replace(/-/g, '_');
          if (snake !== 'help' && !help.get(script)!.includes(`--${snake}`)) problems.push(`${file}: ${script} has no --${snake}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('every --flag mentioned anywhere in the docs belongs to one of our scripts, or is a known foreign flag', async () => {
    const all = [...help.values()].join('\n');
    const problems: string[] = [];
    for (const { file, text } of await docs()) {
      for (const [, flag] of text.matchAll(/(?<![\w-])--([a-zA-Z][a-zA-Z_-]*)/g)) {
        if (FOREIGN.has(flag!)) continue;
        if (!all.includes(`--${flag!.replace(/-/g, '_')}`)) problems.push(`${file}: --${flag}`);
      }
    }
    expect([...new Set(problems)]).toEqual([]);
  });
});
