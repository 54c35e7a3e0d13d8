// Starts this skill's scripts as child processes: prebuilt JavaScript when fresh, else `node --import tsx`; never npx or a shell.
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { distScriptPath, isDistFresh, SKILL_DIR } from './dist.ts';

/** Absolute folder of the skill's scripts. */
export const SCRIPTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let tsxLoaderUrl: string | undefined;

/**
 * The tsx loader (a file URL), resolved from the skill folder (so it works from any working
 * directory) when first needed: resolving it costs every agent start a package lookup, and only a
 * start through the TypeScript source needs it. By require's resolution, which finds the same file
 * as `import.meta.resolve('tsx')` (tsx exports one entry for both) and also works in the CommonJS
 * bundles of scripts/build.
 */
export function tsxLoader(): string {
  tsxLoaderUrl ??= pathToFileURL(createRequire(path.join(SKILL_DIR, 'package.json')).resolve('tsx')).href;
  return tsxLoaderUrl;
}

/**
 * The node arguments that run a script of the skill: `<dist>/<name>.cjs ...args` when scripts/build
 * made a bundle that is still fresh (see isDistFresh in dist.ts), else
 * `--import <tsx> <scripts>/<name>.ts ...args`. Both behave the same; the bundle starts in about a
 * quarter of the time and half the memory. `DTO_LAUNCH=tsx` forces the TypeScript source.
 * Arguments are passed as an array (no shell), so goals and prompts are never interpreted.
 */
export function scriptArgv(name: string, args: readonly string[]): string[] {
  if (isDistFresh(name)) return [distScriptPath(name), ...args];
  return ['--import', tsxLoader(), path.join(SCRIPTS_DIR, `${name}.ts`), ...args];
}
