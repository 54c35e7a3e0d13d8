// esbuild's settings for the skill's bundles (build.ts): which packages are chunks of their own, and the plugins that
// load them lazily, set each script's argv and source URL, and keep zod's messages to English.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Plugin } from 'esbuild';

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

export const zodEnglishOnly: Plugin = {
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
 * (see bundle-loader.ts) and pg's native binding. Never bundled; the loader refuses esprima.
 */
export const OPTIONAL_PEERS = ['esprima', 'pg-native'];

/**
 * The packages that are chunks of their own (dist/chunks/, see bundle-loader.ts) rather than part of
 * each script's bundle: the large ones an agent start that only registers a task never runs (the
 * schema library, the process runner, the full YAML parser, the front-matter parser). Each is
 * required by name (`import { z } from 'zod'`, `import('execa')`) or is CommonJS (gray-matter),
 * which a chunk keeps exactly as Node would load it. The other packages stay in the bundles: an
 * ES module's default export (`import logUpdate from 'log-update'`) would not survive being a
 * CommonJS chunk, and the scripts that use BullMQ, pg and ioredis do not start by the dozen.
 */
export const CHUNKED_PACKAGES = ['execa', 'gray-matter', 'yaml', 'zod'];

/** The package a specifier names: `zod` for `zod/v4/core`, `@scope/pkg` for `@scope/pkg/sub`. */
export function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Whether `specifier` (a package or a subpath of one) is a chunk of its own. */
export function isChunked(specifier: string): boolean {
  return CHUNKED_PACKAGES.includes(packageOf(specifier));
}

/** esbuild's `external` for the chunked packages (and their subpaths), less `own`. */
export function chunkedExternals(own?: string): string[] {
  return CHUNKED_PACKAGES.filter((name) => name !== own).flatMap((name) => [name, `${name}/*`]);
}

/**
 * The plugins of a script's bundle (`outDir`: where it is written; `scriptsDir`: the skill's scripts/): chunked packages
 * imported dynamically are required lazily, the entry sets `process.argv[1]` to the script's source path before its
 * imports run, and `import.meta.url` in the skill's files becomes their source URL.
 */
export function bundlePlugins(outDir: string, scriptsDir: string): Plugin[] {
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
          // The bundle is CommonJS, run with __dirname = the bundle's folder (see bundle-loader.ts).
          const url = `new URL(${JSON.stringify(relativeUrl(outDir, args.path))}, require('node:url').pathToFileURL(__dirname + '/')).href`;
          return { contents: text.replaceAll('import.meta.url', url), loader: 'ts' };
        });
      },
    },
  ];
}
