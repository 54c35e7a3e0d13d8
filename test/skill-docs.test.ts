// Docs as tests: SKILL.md's frontmatter meets the Agent Skills spec, and every script and flag the docs name exists.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import matter from 'gray-matter';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { run } from './support/project.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

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
    description: z.string().min(1).max(1024).refine((text) => !/[<>]/.test(text), 'no < or >'),
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

describe('SKILL.md', () => {
  it('has frontmatter that meets every rule of the Agent Skills spec', async () => {
    const skill = matter(await readFile(path.join(ROOT, 'SKILL.md'), 'utf8'), {});
    const parsed = FrontmatterSchema.safeParse(skill.data);
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
    expect(skill.data.name).toBe('distributed-task-orchestrator');
    for (const word of ['parallel', 'concurrent', 'sub-agents', 'agents', 'orchestrate', 'coordinate', 'break down', 'decompose', 'subtasks']) {
      expect(skill.data.description.toLowerCase()).toContain(word);
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

describe('docs name only scripts and flags that exist', () => {
  const help = new Map<string, string>();
  /** Flags of other programs that the docs mention on purpose (claude's own, npm's, node's). */
  const FOREIGN = new Set([
    'omit', 'dangerously-skip-permissions', 'output-format', 'input-format', 'permission-mode', 'max-turns', 'max-budget-usd',
    'allowedTools', 'disallowedTools', 'append-system-prompt', 'add-dir', 'model', 'print', 'verbose', 'import', 'session-id',
    'resume', 'version', 'help', 'json-schema', 'no-session-persistence', 'settings', 'mcp-config', 'fallback-model', 'effort',
    'tools', 'system-prompt', 'fork-session', 'global',
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
    for (const { file, text } of await docs()) {
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
