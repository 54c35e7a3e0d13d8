// The shell code blocks of SKILL.md (and other docs), and the one placeholder a model substitutes in them.
import { cp, mkdir, mkdtemp, readdir, readFile, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');

/**
 * How SKILL.md names the skill's folder: Claude Code replaces this variable with the skill's absolute path before the
 * model reads the text (../shared/claude-cli-contract.md); tests fill it in as Claude Code does.
 */
export const SKILL_DIR_VAR = '${CLAUDE_SKILL_DIR}';
/** How the references and templates name the same folder (Claude Code substitutes nothing in them). */
export const REF_PLACEHOLDER = '<skill-dir>';
/** The launcher as every SKILL.md command starts with it. */
export const LAUNCHER = `"${SKILL_DIR_VAR}/scripts/run"`;

/** A doc's text with the skill's folder filled in, as Claude Code does for SKILL.md and a model does for the references. */
export function fillSkillDir(text: string, dir: string): string {
  return text.replaceAll(SKILL_DIR_VAR, dir).replaceAll(REF_PLACEHOLDER, dir);
}

/**
 * A start block of SKILL.md whose heredoc (`<<'EOF'` ... `EOF`) carries the model's own plan instead of the example's,
 * as a model following section 4 writes it.
 * @throws Error when the block has no heredoc (the docs changed shape).
 */
export function withPlan(block: string, plan: string): string {
  const match = /<<'EOF'\n[\s\S]*?\nEOF\n?/.exec(block);
  if (!match) throw new Error(`No <<'EOF' heredoc in the block: ${block.slice(0, 120)}`);
  return `${block.slice(0, match.index)}<<'EOF'\n${plan.replace(/\n$/, '')}\nEOF\n${block.slice(match.index + match[0].length)}`;
}

/** One fenced code block: its info string (`sh`, `text`, ...) and body. */
export interface CodeBlock {
  lang: string;
  body: string;
}

/** Every fenced code block of a Markdown text, in order (frontmatter included in the text is harmless). */
export function codeBlocks(markdown: string): CodeBlock[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].map((m) => ({ lang: m[1]!, body: m[2]! }));
}

/** The `sh`/`bash` blocks of SKILL.md. */
export async function skillShellBlocks(): Promise<string[]> {
  const text = await readFile(path.join(ROOT, 'SKILL.md'), 'utf8');
  return codeBlocks(text)
    .filter((block) => block.lang === 'sh' || block.lang === 'bash')
    .map((block) => block.body);
}

/**
 * The single SKILL.md shell block that contains every one of `needles`.
 * @throws Error naming the needles when no block or more than one matches (the docs changed shape).
 */
export async function skillBlock(...needles: string[]): Promise<string> {
  const matches = (await skillShellBlocks()).filter((body) => needles.every((needle) => body.includes(needle)));
  if (matches.length !== 1)
    throw new Error(`Expected one SKILL.md sh block containing ${JSON.stringify(needles)}, found ${matches.length}.`);
  return matches[0]!;
}

/**
 * Whether a top-level entry of the repository belongs in a copy of the skill as a user has it: not
 * installed packages, git data, run state, or build output (`dist/`, and the `.dist-test-<pid>`
 * folders test/execution/prebuilt.test.ts builds and removes while other files run, which a copy
 * made meanwhile would race).
 */
export function isSourceEntry(entry: string): boolean {
  if (['node_modules', '.git', '.agent', 'dist'].includes(entry)) return false;
  return !entry.startsWith('.dist-test') && !entry.startsWith('dist-');
}

/**
 * Installs a copy of this repository as a personal skill in a new temporary HOME, as the README's
 * install does: `<home>/.claude/skills/distributed-task-orchestrator`, `node_modules` linked (it
 * stands in for `npm ci --omit=dev`: tests run without network) and `scripts/build` run, so each
 * script starts from a fresh prebuilt bundle (a copied one's timestamps would say nothing).
 * @returns the HOME folder (remove it when done) and the skill's folder.
 */
export async function installSkillCopy(prefix: string): Promise<{ home: string; skill: string }> {
  const home = await mkdtemp(path.join(os.tmpdir(), prefix));
  const skill = path.join(home, '.claude', 'skills', 'distributed-task-orchestrator');
  await mkdir(skill, { recursive: true });
  for (const entry of await readdir(ROOT)) {
    if (!isSourceEntry(entry)) continue;
    await cp(path.join(ROOT, entry), path.join(skill, entry), { recursive: true });
  }
  await symlink(path.join(ROOT, 'node_modules'), path.join(skill, 'node_modules'), 'dir');
  await execa(path.join(skill, 'scripts', 'build'), [], { cwd: skill });
  return { home, skill };
}
