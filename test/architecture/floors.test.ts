// The floors of scripts/lib: written once in .dependency-cruiser.cjs, enforced by `npm run lint`, and the README's code map
// says the same.
import { execa } from 'execa';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs');
const FLOORS = (createRequire(import.meta.url)(CONFIG) as { FLOORS: string[][] }).FLOORS;
const DEPCRUISE = path.join(ROOT, 'node_modules/.bin/depcruise');

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A scratch project with the repository's floors and the given source files; runs dependency-cruiser on it. */
async function cruise(files: Record<string, string>) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dto-floors-'));
  dirs.push(dir);
  await writeFile(path.join(dir, '.dependency-cruiser.cjs'), await readFile(CONFIG));
  await writeFile(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', allowImportingTsExtensions: true, noEmit: true },
    }),
  );
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), text);
  }
  return execa(DEPCRUISE, ['scripts', '--config', '.dependency-cruiser.cjs'], { cwd: dir, reject: false, all: true });
}

describe('the floors of scripts/lib', () => {
  it('put every folder of scripts/lib on exactly one floor, core alone on the ground floor', () => {
    const folders = readdirSync(path.join(ROOT, 'scripts/lib'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(FLOORS.flat().sort()).toEqual(folders);
    expect(new Set(FLOORS.flat()).size).toBe(FLOORS.flat().length);
    expect(FLOORS[0]).toEqual(['core']);
  });

  it("hold in the repository's own code: lint's dependency-cruiser run finds no violation and no cycle", async () => {
    const result = await execa(DEPCRUISE, ['scripts', '--config', '.dependency-cruiser.cjs'], { cwd: ROOT, reject: false, all: true });
    expect(result.exitCode, result.all).toBe(0);
    expect(result.all).toContain('no dependency violations found');
  });

  it('fail an import from a floor up to a higher one, naming the rule and the import', async () => {
    const result = await cruise({
      'scripts/lib/state/store.ts': "import { line } from '../progress/lines.ts';\nexport const x = line;\n",
      'scripts/lib/progress/lines.ts': "export const line = 'l';\n",
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.all).toContain('error floor-state: scripts/lib/state/store.ts → scripts/lib/progress/lines.ts');
  });

  it('fail an import between two folders of one floor, and a type-only import up counts too', async () => {
    const result = await cruise({
      'scripts/lib/backend/a.ts': "import type { T } from '../isolation/b.ts';\nexport type U = T;\n",
      'scripts/lib/isolation/b.ts': 'export type T = number;\n',
      'scripts/lib/core/c.ts': "import type { T } from '../isolation/b.ts';\nexport type V = T;\n",
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.all).toContain('error floor-isolation-backend: scripts/lib/backend/a.ts → scripts/lib/isolation/b.ts');
    expect(result.all).toContain('error floor-core: scripts/lib/core/c.ts → scripts/lib/isolation/b.ts');
  });

  it('fail an import cycle inside one folder, and a folder on no floor', async () => {
    const result = await cruise({
      'scripts/lib/execution/a.ts': "import { b } from './b.ts';\nexport const a = () => b;\n",
      'scripts/lib/execution/b.ts': "import { a } from './a.ts';\nexport const b = () => a;\n",
      'scripts/lib/misc/c.ts': "import { d } from '../core/d.ts';\nexport const c = d;\n",
      'scripts/lib/core/d.ts': 'export const d = 1;\n',
      'scripts/lib/plan/e.ts': "import { c } from '../misc/c.ts';\nexport const e = c;\n",
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.all).toMatch(/error no-circular: scripts\/lib\/execution\/[ab]\.ts/);
    expect(result.all).toContain('error no-unknown-folder: scripts/lib/misc/c.ts → scripts/lib/core/d.ts');
    expect(result.all).toContain('error no-unknown-folder: scripts/lib/plan/e.ts → scripts/lib/misc/c.ts');
  });

  it("are the README code map's: each folder of scripts/lib in the row of its floor", async () => {
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
    const rows = new Map<string, string>();
    for (const match of readme.matchAll(/^\| (\d+|top) \| ([^|]+) \|/gm)) {
      for (const folder of match[2]!.matchAll(/`scripts\/lib\/([a-z-]+)\/`/g)) rows.set(folder[1]!, match[1]!);
    }
    const expected = new Map(FLOORS.flatMap((floor, level) => floor.map((folder) => [folder, String(level)] as const)));
    expect(new Map([...rows].sort())).toEqual(new Map([...expected].sort()));
  });
});
