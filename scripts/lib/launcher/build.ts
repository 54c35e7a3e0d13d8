// scripts/build: bundles each script into dist/NAME.mjs with esbuild (which tsx brings), so agents start without the TypeScript loader.
//
// Why: `node --import tsx script.ts` spends ~0.2 s compiling and ~60 MB more memory in every agent
// process; a bundle starts in ~0.1 s. A bundle behaves as its TypeScript source: process.argv[1]
// is set to the source path before any module runs (so each script's "am I the entry point" check
// holds), and `import.meta.url` in the skill's own files is their source URL (so paths derived from
// it, such as the launcher's scripts folder, are unchanged). Packages are bundled in.
import { createRequire } from 'node:module';
import { mkdirSync, readdirSync, readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { DIST_DIR, DIST_STAMP, SKILL_DIR } from './dist.ts';

/**
 * Prepended to every bundle. CommonJS packages (gray-matter, among others) call require() for
 * Node's own modules. js-yaml (under gray-matter) also tries require('esprima') at load time, for
 * the unsafe !!js/function type that gray-matter's safe loading never uses: refusing it saves
 * loading a 2 MB parser into every agent (js-yaml catches the error and goes on without it).
 */
const BANNER = [
  "import { createRequire as __dtoCreateRequire } from 'node:module';",
  'const __dtoRequire = __dtoCreateRequire(import.meta.url);',
  "const require = Object.assign((id) => { if (id === 'esprima') throw new Error('esprima is left out of the bundle'); return __dtoRequire(id); }, __dtoRequire);",
].join('\n');

/** What a build produced. */
export interface BuildResult {
  outDir: string;
  /** Scripts bundled (names without extension). */
  scripts: string[];
  /** Scripts that could not be bundled, with esbuild's first error; they keep running through tsx. */
  failed: Array<{ name: string; error: string }>;
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

function plugins(outDir: string, scriptsDir: string): import('esbuild').Plugin[] {
  return [
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
              contents: `import { fileURLToPath } from 'node:url';\nprocess.argv[1] = fileURLToPath(new URL(${JSON.stringify(relativeUrl(outDir, source))}, import.meta.url));\n`,
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
          const url = `new URL(${JSON.stringify(relativeUrl(outDir, args.path))}, import.meta.url).href`;
          return { contents: text.replaceAll('import.meta.url', url), loader: 'ts' };
        });
      },
    },
  ];
}

/**
 * Bundles scripts into `outDir/NAME.mjs`, each file replaced atomically (temporary file, rename),
 * then writes `outDir/.stamp` with the build's start time as its mtime: any source changed after
 * that makes the bundles stale (see isDistFresh in dist.ts).
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
  for (const name of names) {
    try {
      const result = await esbuild.build({
        entryPoints: [{ in: `dto-entry:${name}`, out: name }],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        outdir: outDir,
        outExtension: { '.js': '.mjs' },
        write: false,
        logLevel: 'silent',
        legalComments: 'none',
        absWorkingDir: SKILL_DIR,
        banner: { js: BANNER },
        plugins: plugins(outDir, scriptsDir),
      });
      for (const file of result.outputFiles) {
        const tmp = `${file.path}.${process.pid}.tmp`;
        writeFileSync(tmp, file.contents);
        renameSync(tmp, file.path);
      }
      built.push(name);
    } catch (error) {
      const first = (error as { errors?: Array<{ text: string }> }).errors?.[0]?.text ?? (error as Error).message;
      failed.push({ name, error: first });
    }
  }
  const stamp = path.join(outDir, DIST_STAMP);
  writeFileSync(stamp, `${new Date(started).toISOString()}\n`);
  utimesSync(stamp, started / 1000, started / 1000);
  return { outDir, scripts: built, failed, ms: Date.now() - started };
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
