// This repository installed as a Claude Code PLUGIN from a local marketplace, in a temporary HOME, as a user installs it.
import { cp, mkdir, mkdtemp, readdir, readFile, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { isSourceEntry, ROOT } from './skill-blocks.ts';

/** The plugin's name, its marketplace's name, and the skill's name (all three the same). */
export const PLUGIN = 'distributed-task-orchestrator';

/**
 * The real CLI installed as a devDependency (pinned), as claude-fixtures.ts names it (not imported from there: that
 * module registers vitest hooks when loaded).
 */
const REAL_CLAUDE = path.join(import.meta.dirname, '../../node_modules/.bin/claude');

/** Where {@link installPluginCopy} put the plugin. */
export interface InstalledPlugin {
  /** The temporary HOME holding `.claude/plugins/` (remove it when done). */
  home: string;
  /**
   * The local marketplace's source: the copy of this repository at `<home>/src/distributed-task-orchestrator`. The
   * CLI runs the plugin from here (`${CLAUDE_PLUGIN_ROOT}`, the skill's "Base directory"), and `scripts/build` ran here.
   */
  repo: string;
  /** Every `installPath` that `~/.claude/plugins/installed_plugins.json` records for the plugin. */
  installPaths: string[];
}

/**
 * The environment `claude plugin ...` runs in for a test: a temporary HOME and no traffic anywhere. Claude Code
 * 2.1.330 installs a plugin's dependencies itself (`npm ci --ignore-scripts --workspaces=false --no-audit --no-fund`
 * when the plugin ships package.json and a lockfile, for up to 60 s); npm is told to stay offline
 * (`npm_config_offline`, an empty cache of its own), so that step fails at once instead of downloading from the
 * registry, and the test links this repository's node_modules instead.
 */
export function offlinePluginEnv(home: string): Record<string, string> {
  return {
    HOME: home,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    npm_config_offline: 'true',
    npm_config_cache: path.join(home, '.npm-offline-cache'),
    npm_config_update_notifier: 'false',
  };
}

/**
 * Installs a copy of this repository as a plugin into a new temporary HOME, as the README's plugin install does:
 * copies the source entries (not `node_modules`, `.git`, `.agent`, `dist` or test build folders) to
 * `<home>/src/distributed-task-orchestrator`, runs `claude plugin marketplace add <that folder>` and
 * `claude plugin install distributed-task-orchestrator@distributed-task-orchestrator` with the real, pinned CLI (no
 * network: non-essential traffic, the auto-updater and telemetry are off), links this repository's `node_modules` into
 * the copy and every recorded install path (it stands in for the one-time `npm ci --omit=dev`: tests run offline), and
 * runs `scripts/build` in the copy (fresh prebuilt bundles where the plugin's commands point).
 * @param prefix - the temporary HOME's name prefix, e.g. `dto-plugin-e2e-home-`.
 * @throws Error with the CLI's output when `claude plugin ...` exits non-zero, or when the install records no path.
 */
export async function installPluginCopy(prefix: string): Promise<InstalledPlugin> {
  const home = await mkdtemp(path.join(os.tmpdir(), prefix));
  const repo = path.join(home, 'src', PLUGIN);
  await mkdir(repo, { recursive: true });
  for (const entry of await readdir(ROOT)) {
    if (!isSourceEntry(entry)) continue;
    await cp(path.join(ROOT, entry), path.join(repo, entry), { recursive: true });
  }
  const env = offlinePluginEnv(home);
  for (const args of [
    ['plugin', 'marketplace', 'add', repo],
    ['plugin', 'install', `${PLUGIN}@${PLUGIN}`],
  ]) {
    const result = await execa(REAL_CLAUDE, args, { cwd: home, env, extendEnv: false, reject: false });
    if (result.exitCode !== 0)
      throw new Error(`claude ${args.join(' ')} exited ${String(result.exitCode)}:\n${result.stdout}\n${result.stderr}`);
  }
  const installed = JSON.parse(await readFile(path.join(home, '.claude/plugins/installed_plugins.json'), 'utf8')) as {
    plugins: Record<string, Array<{ installPath: string }> | undefined>;
  };
  const installPaths = (installed.plugins[`${PLUGIN}@${PLUGIN}`] ?? []).map((p) => p.installPath);
  if (installPaths.length === 0) throw new Error(`installed_plugins.json records no install of ${PLUGIN}: ${JSON.stringify(installed)}`);
  for (const dir of [repo, ...installPaths]) {
    await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir').catch(() => {});
  }
  await execa(path.join(repo, 'scripts', 'build'), [], { cwd: repo });
  return { home, repo, installPaths };
}
