// Test helpers: temporary project folders and running the skill's scripts in them as real processes.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { runScript } from '../../scripts/lib/launcher/run-script.ts';
import { resolveSessionPaths, type SessionPaths } from '../../scripts/lib/state/session-paths.ts';
import { readState } from '../../scripts/lib/state/state-store.ts';
import type { SessionState } from '../../scripts/lib/state/schema.ts';

const created: string[] = [];
afterEach(async () => {
  await Promise.all(created.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A temporary project directory, removed after the test. */
export async function tempProject(
  prefix = 'dto-test-',
): Promise<{ dir: string; paths: SessionPaths; state(): Promise<SessionState | null> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  created.push(dir);
  const paths = resolveSessionPaths({ cwd: dir });
  return { dir, paths, state: () => readState(paths) };
}

/** Runs a script to completion in `cwd`; never rejects (check exitCode). */
export function run(name: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  return runScript(name, args, { cwd, reject: false, env: { ...env }, all: true });
}

/** Starts a script without waiting (for background agents). */
export function start(name: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  return runScript(name, args, { cwd, reject: false, env, all: true });
}

/** Lists every file below a folder (relative paths), or [] if it does not exist. */
export async function listFiles(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
      .sort();
  } catch {
    return [];
  }
}

export { readFile };
