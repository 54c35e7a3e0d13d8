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
// exact bundle it was made from and only when its checksum holds (see loaderSource), so a stale or
// damaged cache is never run.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { DIST_DIR, DIST_STAMP, SKILL_DIR } from './dist.ts';

/** First bytes of a cache file made by a loader; then the bundle's id and the SHA-256 of the V8 payload. */
const CACHE_MAGIC = 'dto-v8-cache-1';

/**
 * The loader written as `dist/NAME.cjs`: reads `NAME.bundle.cjs`, compiles it with V8's code cache
 * `NAME.cache` when there is a usable one, and runs it as a CommonJS module whose `__filename` is
 * the bundle. The bundle holds the skill's own code; the packages it uses (zod, execa, yaml, ...)
 * are chunks, `dist/chunks/<package>.cjs`, each compiled the same way with its own cache, and loaded
 * only when the code first requires them: a start that only registers a task never loads execa,
 * the yaml package or zod, and a smaller bundle is cheaper to start even where its code is not run
 * (V8 makes a closure for every function declared at the top of a script). `chunks` maps each
 * package name to its chunk file; anything else (Node's own modules) is Node's require.
 * js-yaml (under gray-matter) also tries require('esprima') at load time, for the unsafe
 * !!js/function type that gray-matter's safe loading never uses: refusing it saves loading a 2 MB
 * parser into every agent (js-yaml catches the error and goes on without it).
 *
 * A cache is used only when its header names this very code (the id on the file's first line, a
 * hash of its code, written by {@link buildDist}) and the SHA-256 of its payload matches: V8 itself
 * checks only its version, its flags and the source's length, and crashes on a damaged payload
 * (measured: one flipped byte is a fatal error), so a cache left by a process that ran the previous
 * build, or damaged on disk, is replaced instead of run. A missing or rejected cache is written
 * when the process exits (temporary file, rename); one that cannot be written is only skipped.
 * `DTO_WARM_CHUNKS=1` (used by the build) loads every chunk at start, so their caches get made.
 */
export function loaderSource(name: string, chunks: Record<string, string> = {}): string {
  return `// Made by scripts/build: runs ${name}.bundle.cjs with V8's code cache ${name}.cache (see scripts/lib/launcher/build.ts).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createRequire } = require('node:module');
const chunks = ${JSON.stringify(chunks)};
const unsaved = [];
const checksum = (data) => require('node:crypto').createHash('sha256').update(data).digest('hex');
function saveCaches() {
  for (const { script, cachePath, id } of unsaved) {
    const tmp = cachePath + '.' + process.pid + '.tmp';
    try {
      const payload = script.createCachedData();
      fs.writeFileSync(tmp, Buffer.concat([Buffer.from('${CACHE_MAGIC} ' + id + ' ' + checksum(payload) + '\\n', 'latin1'), payload]));
      fs.renameSync(tmp, cachePath);
    } catch {
      try {
        fs.unlinkSync(tmp);
      } catch {}
    }
  }
}
function run(file, mod) {
  const source = fs.readFileSync(file, 'utf8');
  const cachePath = file.replace(/(\\.bundle)?\\.cjs$/, '.cache');
  const id = /^\\/\\/ dto-bundle ([0-9a-f]{32})\\n/.exec(source)?.[1] ?? 'none';
  let cachedData;
  try {
    const data = fs.readFileSync(cachePath);
    const head = /^${CACHE_MAGIC} ([0-9a-f]{32}) ([0-9a-f]{64})\\n/.exec(data.subarray(0, 160).toString('latin1'));
    const payload = head ? data.subarray(head[0].length) : null;
    if (head && head[1] === id && checksum(payload) === head[2]) cachedData = payload;
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script('(function (exports, require, module, __filename, __dirname) {' + source + '\\n})', {
    filename: file,
    cachedData,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (cachedData === undefined || script.cachedDataRejected) {
    if (unsaved.length === 0) process.once('exit', saveCaches);
    unsaved.push({ script, cachePath, id });
  }
  script.runInThisContext()(mod.exports, requireFor(file), mod, file, path.dirname(file));
  return mod.exports;
}
const loaded = new Map();
function requireFor(file) {
  const base = createRequire(file);
  return Object.assign((id) => {
    if (id === 'esprima') throw new Error('esprima is left out of the bundle');
    if (!Object.hasOwn(chunks, id)) return base(id);
    let mod = loaded.get(id);
    if (mod === undefined) {
      mod = { exports: {} };
      loaded.set(id, mod);
      run(path.join(__dirname, chunks[id]), mod);
    }
    return mod.exports;
  }, base);
}
if (process.env.DTO_WARM_CHUNKS === '1') for (const id of Object.keys(chunks)) requireFor(__filename)(id);
run(path.join(__dirname, ${JSON.stringify(`${name}.bundle.cjs`)}), { exports: {} });
`;
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

type Esbuild = typeof import('esbuild');

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

/** A relative URL from the bundle's folder to a source file ("../scripts/lib/x.ts"). */
function relativeUrl(outDir: string, file: string): string {
  return path.relative(outDir, file).split(path.sep).join('/');
}

/**
 * zod's `locales` namespace (error messages in 50 languages, 366 kB of the 1.5 MB bundle, about a
 * quarter of each agent's parse time) is replaced by one that holds English only: zod itself
 * imports `locales/en.js` directly for its default messages, and no script of the skill calls
 * `z.config(z.locales.xx())`. Measured in bench/RESULTS.md ("Start-up cost").
 */
const ZOD_LOCALES = /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.c?js$/;

const zodEnglishOnly: import('esbuild').Plugin = {
  name: 'dto-zod-english-only',
  setup(build) {
    // zod's ES module build (index.js) or its CommonJS one (index.cjs, what a chunk's require() finds).
    build.onLoad({ filter: ZOD_LOCALES }, (args) =>
      args.path.endsWith('.cjs')
        ? { contents: "exports.en = require('./en.cjs').default;\n", loader: 'js' }
        : { contents: "export { default as en } from './en.js';\n", loader: 'js' },
    );
  },
};

/**
 * Optional modules that packages require inside a try/catch and go on without: js-yaml's esprima
 * (see loaderSource) and pg's native binding. Never bundled; the loader refuses esprima.
 */
const OPTIONAL_PEERS = ['esprima', 'pg-native'];

/**
 * The packages that are chunks of their own (dist/chunks/, see loaderSource) rather than part of
 * each script's bundle: the large ones an agent start that only registers a task never runs (the
 * schema library, the process runner, the full YAML parser, the front-matter parser). Each is
 * required by name (`import { z } from 'zod'`, `import('execa')`) or is CommonJS (gray-matter),
 * which a chunk keeps exactly as Node would load it. The other packages stay in the bundles: an
 * ES module's default export (`import logUpdate from 'log-update'`) would not survive being a
 * CommonJS chunk, and the scripts that use BullMQ, pg and ioredis do not start by the dozen.
 */
const CHUNKED_PACKAGES = ['execa', 'gray-matter', 'yaml', 'zod'];

/** The package a specifier names: `zod` for `zod/v4/core`, `@scope/pkg` for `@scope/pkg/sub`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function isChunked(specifier: string): boolean {
  return CHUNKED_PACKAGES.includes(packageOf(specifier));
}

/** esbuild's `external` for the chunked packages (and their subpaths), less `own`. */
function chunkedExternals(own?: string): string[] {
  return CHUNKED_PACKAGES.filter((name) => name !== own).flatMap((name) => [name, `${name}/*`]);
}

function plugins(outDir: string, scriptsDir: string): import('esbuild').Plugin[] {
  return [
    {
      // `await import('pkg')` becomes a module that requires the package's chunk when first imported
      // (the loader maps the name to dist/chunks/), rather than an ES module import from node_modules.
      name: 'dto-lazy-package',
      setup(build) {
        // esbuild's filters are Go regular expressions (no look-ahead): the rest is checked here.
        build.onResolve({ filter: /^[^./]/ }, (args) => {
          if (args.namespace === 'dto-lazy') return { path: args.path, external: true };
          return args.kind === 'dynamic-import' && isChunked(args.path) ? { path: args.path, namespace: 'dto-lazy' } : undefined;
        });
        build.onLoad({ filter: /.*/, namespace: 'dto-lazy' }, (args) => ({
          contents: `module.exports = require(${JSON.stringify(args.path)});\n`,
          loader: 'js',
        }));
      },
    },
    {
      name: 'dto-entry',
      setup(build) {
        build.onResolve({ filter: /^dto-(entry|argv):/ }, (args) => ({ path: args.path, namespace: 'dto' }));
        build.onLoad({ filter: /.*/, namespace: 'dto' }, (args) => {
          const [kind, name] = args.path.split(':') as [string, string];
          const source = path.join(scriptsDir, `${name}.ts`);
          // Two modules, so argv is set before the script's own imports are evaluated.
          if (kind === 'dto-argv') {
            return {
              contents: `process.argv[1] = require('node:path').join(__dirname, ${JSON.stringify(path.relative(outDir, source))});\n`,
              resolveDir: scriptsDir,
              loader: 'js',
            };
          }
          return { contents: `import 'dto-argv:${name}';\nimport ${JSON.stringify(source)};\n`, resolveDir: scriptsDir, loader: 'js' };
        });
      },
    },
    {
      name: 'dto-source-url',
      setup(build) {
        build.onLoad({ filter: /\.ts$/ }, (args) => {
          if (!args.path.startsWith(scriptsDir + path.sep)) return undefined;
          const text = readFileSync(args.path, 'utf8');
          if (!text.includes('import.meta.url')) return undefined;
          // The bundle is CommonJS, run with __dirname = the bundle's folder (see loaderSource).
          const url = `new URL(${JSON.stringify(relativeUrl(outDir, args.path))}, require('node:url').pathToFileURL(__dirname + '/')).href`;
          return { contents: text.replaceAll('import.meta.url', url), loader: 'ts' };
        });
      },
    },
  ];
}

/** The files of one built script in `outDir`: the loader (what is started), the code, V8's code cache. */
export function distFiles(outDir: string, name: string): { loader: string; bundle: string; cache: string } {
  return {
    loader: path.join(outDir, `${name}.cjs`),
    bundle: path.join(outDir, `${name}.bundle.cjs`),
    cache: path.join(outDir, `${name}.cache`),
  };
}

/** Writes a file by temporary file and rename, so a process starting meanwhile reads the old or the new one. */
function replaceFile(file: string, contents: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, contents);
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/** The text written for an output file: its id (a hash of its code, which a code cache must name to be used) first. */
function withId(file: { contents: Uint8Array; text: string }): string {
  const id = createHash('sha256').update(file.contents).digest('hex').slice(0, 32);
  return `// dto-bundle ${id}\n${file.text}`;
}

/** The chunk of a package, relative to dist/: `chunks/<specifier>.cjs`, with `/` and `@` made safe for a file name. */
export function chunkFile(specifier: string): string {
  return `chunks/${specifier.replace(/^@/, '').replace(/[^A-Za-z0-9._-]/g, '+')}.cjs`;
}

/** The chunked packages (their specifiers) a build's output requires. */
function requiredPackages(metafile: import('esbuild').Metafile | undefined): string[] {
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
async function chunkClosure(
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
  const scriptsDir = path.join(SKILL_DIR, 'scripts');
  const names = options.scripts ?? listScripts();
  const esbuild = await loadEsbuild();
  mkdirSync(outDir, { recursive: true });
  const built: string[] = [];
  const failed: BuildResult['failed'] = [];
  const cached: string[] = [];
  const chunks = new Map<string, Promise<string[]>>();
  for (const name of names) {
    try {
      const result = await esbuild.build({
        entryPoints: [{ in: `dto-entry:${name}`, out: `${name}.bundle` }],
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'node20',
        outdir: outDir,
        outExtension: { '.js': '.cjs' },
        // These packages are chunks of their own (see loaderSource), loaded when first required.
        external: chunkedExternals(),
        metafile: true,
        write: false,
        logLevel: 'silent',
        legalComments: 'none',
        absWorkingDir: SKILL_DIR,
        plugins: plugins(outDir, scriptsDir),
      });
      const files = distFiles(outDir, name);
      const needed = await chunkClosure(esbuild, outDir, requiredPackages(result.metafile), chunks);
      for (const file of result.outputFiles) replaceFile(file.path, withId(file));
      rmSync(files.cache, { force: true });
      replaceFile(files.loader, loaderSource(name, Object.fromEntries(needed.map((specifier) => [specifier, chunkFile(specifier)]))));
      rmSync(path.join(outDir, `${name}.mjs`), { force: true });
      built.push(name);
      if (warmUp(outDir, name)) cached.push(name);
    } catch (error) {
      const first = (error as { errors?: Array<{ text: string }> }).errors?.[0]?.text ?? (error as Error).message;
      failed.push({ name, error: first });
      // Without its loader the launchers run the source through tsx, never an older bundle.
      rmSync(distFiles(outDir, name).loader, { force: true });
    }
  }
  const stamp = path.join(outDir, DIST_STAMP);
  writeFileSync(stamp, `${new Date(started).toISOString()}\n`);
  utimesSync(stamp, started / 1000, started / 1000);
  return { outDir, scripts: built, failed, cached, ms: Date.now() - started };
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
