// The chunks of packages (dist/chunks/, see bundle-loader.ts) that scripts/build makes beside the scripts' bundles.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Metafile } from 'esbuild';
import { chunkedExternals, isChunked, OPTIONAL_PEERS, packageOf, zodEnglishOnly } from './bundle-plugins.ts';
import { chunkFile, replaceFile, withId } from './dist-files.ts';
import { SKILL_DIR } from './dist.ts';

/** The esbuild module (build.ts loads it from tsx's dependencies). */
export type Esbuild = typeof import('esbuild');

/** The chunked packages (their specifiers) a build's output requires. */
export function requiredPackages(metafile: Metafile | undefined): string[] {
  const found = new Set<string>();
  for (const output of Object.values(metafile?.outputs ?? {}))
    for (const imported of output.imports) if (imported.external && isChunked(imported.path)) found.add(imported.path);
  return [...found].sort();
}

/**
 * Builds the chunk of each package in `specifiers` and of every chunked package those require in
 * turn (each chunk bundles one package with the packages it uses that are not chunks themselves,
 * so one instance of each chunked package is shared), once per build (`built`).
 * @returns every specifier needed, sorted.
 */
export async function chunkClosure(
  esbuild: Esbuild,
  outDir: string,
  specifiers: string[],
  built: Map<string, Promise<string[]>>,
): Promise<string[]> {
  const needed = new Set<string>();
  const queue = [...specifiers];
  while (queue.length > 0) {
    const specifier = queue.pop()!;
    if (needed.has(specifier)) continue;
    needed.add(specifier);
    let chunk = built.get(specifier);
    if (chunk === undefined) {
      chunk = buildChunk(esbuild, outDir, specifier);
      built.set(specifier, chunk);
    }
    queue.push(...(await chunk));
  }
  return [...needed].sort();
}

/** Bundles one package into `dist/chunks/`; returns the packages it requires (chunks of their own). */
async function buildChunk(esbuild: Esbuild, outDir: string, specifier: string): Promise<string[]> {
  const outfile = path.join(outDir, chunkFile(specifier));
  const result = await esbuild.build({
    stdin: { contents: `module.exports = require(${JSON.stringify(specifier)});\n`, resolveDir: SKILL_DIR, loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile,
    external: [...OPTIONAL_PEERS, ...chunkedExternals(packageOf(specifier))],
    metafile: true,
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
    absWorkingDir: SKILL_DIR,
    plugins: [zodEnglishOnly],
  });
  mkdirSync(path.dirname(outfile), { recursive: true });
  for (const file of result.outputFiles) replaceFile(file.path, withId(file));
  rmSync(outfile.replace(/\.cjs$/, '.cache'), { force: true });
  return requiredPackages(result.metafile);
}
