// The prebuilt JavaScript of the scripts (dist/NAME.cjs and NAME.bundle.cjs, made by scripts/build) and whether it may be used.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The skill's root folder (the one holding scripts/, dist/ and node_modules/). */
export const SKILL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Where scripts/build writes each script's loader `NAME.cjs`, its bundle `NAME.bundle.cjs`, its code cache and the `.stamp`. */
export const DIST_DIR = path.join(SKILL_DIR, 'dist');

/** The file whose mtime is the moment the last build started; every input must be older. */
export const DIST_STAMP = '.stamp';

/**
 * The files a build depends on: every `.ts` file under scripts/, package.json, and npm's record of
 * the installed packages (node_modules/.package-lock.json, rewritten by every install).
 */
function buildInputs(skillDir: string): string[] {
  const scriptsDir = path.join(skillDir, 'scripts');
  const files = readdirSync(scriptsDir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
  return [...files, path.join(skillDir, 'package.json'), path.join(skillDir, 'node_modules', '.package-lock.json')];
}

/**
 * Tells whether `dist/<name>.cjs` and its bundle exist and are fresh: built after the last change of any input
 * (see {@link buildInputs}). The same rule as `scripts/run` (`find -newer dist/.stamp`), so both
 * launch the same code. Costs one stat per input (about 0.5 ms).
 *
 * `DTO_LAUNCH=tsx` in the environment makes it false, so every script runs from its TypeScript
 * source (for debugging, or to compare the two); `DTO_LAUNCH=dist` skips the comparison of dates,
 * so the bundles built at the start of a benchmark stay in use while sources are being edited.
 *
 * @param name - a script name such as `spawn-agent-mock`; omitted, only the stamp is checked.
 */
export function isDistFresh(name?: string, distDir = DIST_DIR, skillDir = SKILL_DIR): boolean {
  if (process.env.DTO_LAUNCH === 'tsx') return false;
  try {
    if (name !== undefined && !(existsSync(path.join(distDir, `${name}.cjs`)) && existsSync(path.join(distDir, `${name}.bundle.cjs`))))
      return false;
    const built = statSync(path.join(distDir, DIST_STAMP)).mtimeMs;
    if (process.env.DTO_LAUNCH === 'dist') return true;
    return buildInputs(skillDir).every((file) => {
      try {
        return statSync(file).mtimeMs <= built;
      } catch {
        return true; // An input that does not exist (no node_modules/.package-lock.json) changes nothing.
      }
    });
  } catch {
    return false;
  }
}

/** Path of a script's prebuilt entry (the loader of its bundle), e.g. `<skill>/dist/spawn-agent-mock.cjs`. */
export function distScriptPath(name: string, distDir = DIST_DIR): string {
  return path.join(distDir, `${name}.cjs`);
}

/** Absolute path of this install's launcher, `<skill>/scripts/run`: what help texts and next-step hints print. */
export const RUN_PATH = path.join(SKILL_DIR, 'scripts', 'run');

/**
 * A copy-paste-runnable command line for a script of this install, from any directory:
 * `"<abs>/scripts/run" NAME ARGS` (the launcher's path double-quoted; `args` are put as given).
 * @example launcherCommand('poll-session', '--timeout 90') // "/home/me/.claude/skills/distributed-task-orchestrator/scripts/run" poll-session --timeout 90
 */
export function launcherCommand(name: string, args = ''): string {
  return `${doubleQuoted(RUN_PATH)} ${name}${args ? ` ${args}` : ''}`;
}

/** Text as one double-quoted POSIX shell word: `"`, `\`, `$` and backquotes escaped. */
function doubleQuoted(text: string): string {
  return `"${text.replace(/(["\\$`])/g, '\\$1')}"`;
}

/**
 * Text as one POSIX shell word, for commands printed to be run: as is when it holds only characters the shell leaves
 * alone (`[A-Za-z0-9_@%+=:,./-]`), else double-quoted as {@link launcherCommand} quotes the launcher.
 */
export function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : doubleQuoted(text);
}
