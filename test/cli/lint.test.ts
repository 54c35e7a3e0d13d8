// The lint and format set-up: eslint's type-aware rules reach the scripts and the tests, and prettier writes the project's style.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import prettier from 'prettier';
import { describe, expect, it } from 'vitest';

const THIS_FILE = fileURLToPath(import.meta.url);

/** The project root: the nearest folder above this test with a package.json (robust to tests moving into subfolders). */
function projectRoot(): string {
  let dir = path.dirname(THIS_FILE);
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

const ROOT = projectRoot();

/** A script of the tree by file name, wherever its folder (relative to the root). */
async function scriptNamed(name: string): Promise<string> {
  const found = (await readdir(path.join(ROOT, 'scripts'), { recursive: true })).find((entry) => path.basename(entry) === name);
  if (!found) throw new Error(`no scripts/**/${name}`);
  return path.join('scripts', found);
}

/** Lints `extra` appended to a real file of the tree (the type-aware rules need a file of the TypeScript project). */
async function ruleIdsFor(file: string, extra: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: ROOT });
  const filePath = path.join(ROOT, file);
  const text = `${await readFile(filePath, 'utf8')}\n${extra}`;
  const [result] = await eslint.lintText(text, { filePath });
  const firstExtraLine = text.split('\n').length - extra.split('\n').length + 1;
  return result!.messages.filter((m) => m.line >= firstExtraLine).map((m) => m.ruleId ?? m.message);
}

const BAD = [
  'async function later(): Promise<number> { return 1; }',
  'later();',
  'export const leaked: number = (JSON.parse("{}") as any).x;',
  'export const check = async () => 1;',
].join('\n');

describe('lint configuration', () => {
  it('reports a floating promise, an `any` leak and an async function without await in a script', async () => {
    const ids = await ruleIdsFor(await scriptNamed('options.ts'), BAD);
    expect(ids).toContain('@typescript-eslint/no-floating-promises');
    expect(ids).toContain('@typescript-eslint/no-unsafe-member-access');
    expect(ids).toContain('@typescript-eslint/no-explicit-any');
    expect(ids.filter((id) => id === '@typescript-eslint/require-await')).toHaveLength(2);
  });

  it('keeps the type-aware rules in tests, except the two relaxed there (require-await, no-unsafe-assignment)', async () => {
    const ids = await ruleIdsFor(path.relative(ROOT, THIS_FILE), `${BAD}\nexport const matcher: unknown = { a: JSON.parse('1') };`);
    expect(ids).toContain('@typescript-eslint/no-floating-promises');
    expect(ids).toContain('@typescript-eslint/no-unsafe-member-access');
    expect(ids).not.toContain('@typescript-eslint/require-await');
    expect(ids).not.toContain('@typescript-eslint/no-unsafe-assignment');
  });

  it('formats code in the project style: 2 spaces, single quotes, semicolons, trailing commas, 140 columns', async () => {
    const file = path.join(ROOT, await scriptNamed('options.ts'));
    const options = await prettier.resolveConfig(file);
    const out = await prettier.format('const x = {a: "b", c: [1,2,3]}\nif (x) { console.log(x) }\n', { ...options, filepath: file });
    expect(out).toBe("const x = { a: 'b', c: [1, 2, 3] };\nif (x) {\n  console.log(x);\n}\n");
    expect(options).toMatchObject({ printWidth: 140, singleQuote: true, semi: true, tabWidth: 2 });
  });
});
