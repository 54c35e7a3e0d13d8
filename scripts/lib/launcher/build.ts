// scripts/build: bundles each script into dist/NAME.bundle.cjs with esbuild (which tsx brings), so agents start without the TypeScript loader.
//
// Why: `node --import tsx script.ts` spends ~0.5 s compiling and ~60 MB more memory in every agent
// process; a bundle starts in ~0.1 s. A bundle behaves as its TypeScript source: process.argv[1]
// is set to the source path before any module runs (so each script's "am I the entry point" check
// holds), and `import.meta.url` in the skill's own files is their source URL (so paths derived from
// it, such as the launcher's scripts folder, are unchanged). Packages are bundled in.
//
// Each script is three files: `NAME.cjs`, a small loader (what scripts/run and launch.ts start);
// `NAME.bundle.cjs`, the code, as CommonJS so that the loader can compile it with `vm.Script` and
// V8's code cache; and `NAME.cache`, that cache. Node 20 has no compile cache for ES modules
// (`module.enableCompileCache` came in Node 22), and compiling the 1.2 MB bundle was a quarter of
// every agent's start (bench/RESULTS.md, "Start-up cost"). The cache is made at build time by a
// `--help` run; a loader that finds it missing or rejected by V8 (another Node version, other V8
// flags) writes a new one when its process exits, atomically (temporary file, rename), and a
// loader that cannot write it (a read-only install) just runs without. A cache is used only for the
// exact bundle it was made from and only when its checksum holds (see bundle-loader.ts), so a stale or
// damaged cache is never run.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chunkClosure, requiredPackages, type Esbuild } from './build-chunks.ts';
import { bundlePlugins, chunkedExternals } from './bundle-plugins.ts';
import { chunkFile, distFiles, replaceFile, withId } from './dist-files.ts';
import { DIST_DIR, DIST_STAMP, SKILL_DIR } from './dist.ts';

export { distFiles } from './dist-files.ts';

/** The loader's source (a real TypeScript file, compiled to CommonJS for each distinct set of chunks). */
const LOADER_SOURCE = fileURLToPath(new URL('./bundle-loader.ts', import.meta.url));

/**
 * The loader written as `dist/NAME.cjs` (see bundle-loader.ts): that file compiled to CommonJS with `chunks` (each
 * chunked package name and its file under dist/) in place of DTO_CHUNKS. The loader finds its bundle by its own name.
 * @throws esbuild's error when the loader does not compile.
 */
export async function loaderSource(esbuild: Esbuild, chunks: Record<string, string>): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [LOADER_SOURCE],
    bundle: false,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    define: { DTO_CHUNKS: JSON.stringify(chunks) },
    banner: {
      js: "// Made by scripts/build from scripts/lib/launcher/bundle-loader.ts: runs NAME.bundle.cjs with V8's code cache NAME.cache.",
    },
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
  });
  return result.outputFiles[0]!.text;
}

/** What a build produced. */
export interface BuildResult {
  outDir: string;
  /** Scripts bundled (names without extension). */
  scripts: string[];
  /** Scripts that could not be bundled, with esbuild's first error; they keep running through tsx. */
  failed: Array<{ name: string; error: string }>;
  /** Scripts whose V8 code cache the build made (the others get one on their first run). */
  cached: string[];
  ms: number;
}

/** esbuild, resolved from tsx's own dependencies (the skill does not depend on it directly). */
async function loadEsbuild(): Promise<Esbuild> {
  const fromTsx = createRequire(createRequire(path.join(SKILL_DIR, 'package.json')).resolve('tsx/package.json'));
  const mod = (await import(pathToFileURL(fromTsx.resolve('esbuild')).href)) as Esbuild & { default?: Esbuild };
  return mod.default ?? mod;
}

/** The scripts to bundle: every `scripts/*.ts`. */
export function listScripts(skillDir = SKILL_DIR): string[] {
  return readdirSync(path.join(skillDir, 'scripts'))
    .filter((file) => file.endsWith('.ts'))
    .map((file) => file.slice(0, -3))
    .sort();
}

/**
 * Makes a script's code cache by running `NAME.cjs --help` once (in the temporary folder, with
 * nothing of ours in its environment): its loader finds no cache and writes one when it exits.
 * @returns whether the cache file exists afterwards (a script without --help gets one on its first real run).
 */
function warmUp(outDir: string, name: string): boolean {
  const { loader, cache } = distFiles(outDir, name);
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('DTO_'))), DTO_WARM_CHUNKS: '1' };
  spawnSync(process.execPath, [loader, '--help'], { cwd: os.tmpdir(), env, stdio: 'ignore', timeout: 60_000 });
  try {
    readFileSync(cache);
    return true;
  } catch {
    return false;
  }
}

/**
 * Bundles scripts into `outDir` (for each, `NAME.bundle.cjs` and its loader `NAME.cjs`, each
 * replaced atomically: temporary file, rename), makes their V8 code caches (`NAME.cache`, see
 * {@link warmUp}), removes what older builds left (`NAME.mjs`), then writes `outDir/.stamp` with the
 * build's start time as its mtime: any source changed after that makes the bundles stale (see
 * isDistFresh in dist.ts).
 *
 * @param options.outDir - default `<skill>/dist`; must sit directly in the skill folder so the
 *   relative source URLs resolve.
 * @param options.scripts - default every scripts/*.ts.
 */
export async function buildDist(options: { outDir?: string; scripts?: string[] } = {}): Promise<BuildResult> {
  const started = Date.now();
  const outDir = path.resolve(options.outDir ?? DIST_DIR);
  const names = options.scripts ?? listScripts();
  const build: OneBuild = { esbuild: await loadEsbuild(), outDir, chunks: new Map(), loaders: new Map() };
  mkdirSync(outDir, { recursive: true });
  const result: BuildResult = { outDir, scripts: [], failed: [], cached: [], ms: 0 };
  for (const name of names) {
    try {
      await buildScript(build, name);
      result.scripts.push(name);
      if (warmUp(outDir, name)) result.cached.push(name);
    } catch (error) {
      const first = (error as { errors?: Array<{ text: string }> }).errors?.[0]?.text ?? (error as Error).message;
      result.failed.push({ name, error: first });
      // Without its loader the launchers run the source through tsx, never an older bundle.
      rmSync(distFiles(outDir, name).loader, { force: true });
    }
  }
  const stamp = path.join(outDir, DIST_STAMP);
  writeFileSync(stamp, `${new Date(started).toISOString()}\n`);
  utimesSync(stamp, started / 1000, started / 1000);
  return { ...result, ms: Date.now() - started };
}

/** What the scripts of one build share: esbuild, the output folder, the chunks built, the loaders compiled (by chunk set). */
interface OneBuild {
  esbuild: Esbuild;
  outDir: string;
  chunks: Map<string, Promise<string[]>>;
  loaders: Map<string, Promise<string>>;
}

/** Bundles one script into `build.outDir`: its bundle, the chunks it needs, and its loader. @throws esbuild's error. */
async function buildScript(build: OneBuild, name: string): Promise<void> {
  const { esbuild, outDir } = build;
  const result = await esbuild.build({
    entryPoints: [{ in: `dto-entry:${name}`, out: `${name}.bundle` }],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outdir: outDir,
    outExtension: { '.js': '.cjs' },
    // These packages are chunks of their own (see bundle-loader.ts), loaded when first required.
    external: chunkedExternals(),
    metafile: true,
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
    absWorkingDir: SKILL_DIR,
    plugins: bundlePlugins(outDir, path.join(SKILL_DIR, 'scripts')),
  });
  const files = distFiles(outDir, name);
  const needed = await chunkClosure(esbuild, outDir, requiredPackages(result.metafile), build.chunks);
  const chunks = Object.fromEntries(needed.map((specifier) => [specifier, chunkFile(specifier)]));
  const key = JSON.stringify(chunks);
  let loader = build.loaders.get(key);
  if (loader === undefined) build.loaders.set(key, (loader = loaderSource(esbuild, chunks)));
  const loaderText = await loader;
  for (const file of result.outputFiles) replaceFile(file.path, withId(file));
  rmSync(files.cache, { force: true });
  replaceFile(files.loader, loaderText);
  rmSync(path.join(outDir, `${name}.mjs`), { force: true });
}

/**
 * `scripts/build [--out DIR]`: builds dist/ (or DIR, which must sit beside dist/ so the bundles'
 * relative source URLs resolve; the tests use it) and says what it did.
 * @returns 0, 1 if a script could not be bundled, 2 for a bad argument.
 */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string' } }, strict: true });
  const result = await buildDist(values.out === undefined ? {} : { outDir: path.resolve(values.out) });
  process.stdout.write(`Built ${result.scripts.length} scripts into ${result.outDir} in ${result.ms} ms: ${result.scripts.join(', ')}.\n`);
  for (const { name, error } of result.failed)
    process.stderr.write(`warning: ${name} was not bundled (${error}); it keeps running through tsx.\n`);
  return result.failed.length > 0 ? 1 : 0;
}

if (process.argv[1]?.endsWith(`${path.sep}launcher${path.sep}build.ts`)) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`error: scripts/build failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(2);
    },
  );
}
