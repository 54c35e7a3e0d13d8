#!/usr/bin/env -S npx tsx
/**
 * spawn-agent-mock: simulate one sub-agent (a delay, then a result file) under the shared session state.
 *
 * Usage:   npx tsx scripts/spawn-agent-mock.ts --task_name NAME --goal TEXT [--delay_ms N] [--fail] [...] &
 * Example: npx tsx scripts/spawn-agent-mock.ts --task_name scan --goal "List the source files" --delay_ms 500 &
 * Reads/writes: <cwd>/.agent/sessions/latest.yaml (under its lock) and events.jsonl;
 *               writes <output_dir>/<task_name>.md (default .agent/results).
 * Exit: 0 completed, 1 failed/skipped/cancelled, 2 usage error or unusable state.
 */
import { parseOrShowHelp, integerFlag, runMain, type CommandSpec } from './lib/cli.ts';
import { EXIT } from './lib/errors.ts';
import { runBackgroundTask } from './lib/background-task.ts';
import { createMockExecutor } from './lib/mock-agent.ts';
import { readSpawnSettings, relaunchArgv, SPAWN_FLAGS } from './lib/spawn-options.ts';

export const spec: CommandSpec = {
  name: 'spawn-agent-mock',
  summary:
    'Registers a task in the session, waits for its dependencies and a worker slot, simulates an agent ' +
    '(sleeps, then writes <output_dir>/<task_name>.md quoting the goal) and records it completed, or failed with --fail. ' +
    'Needs no Claude account; start many at once with "&".',
  usage: '--task_name NAME --goal TEXT [--delay_ms N] [--fail] [--depends_on A,B] [--output_dir DIR] [...]',
  flags: {
    ...SPAWN_FLAGS,
    delay_ms: { type: 'string', placeholder: 'N', description: 'Simulated work time in ms (default random 1000-3000).' },
    fail: { type: 'boolean', description: 'Simulate a failure: the task ends "failed".' },
  },
  examples: [
    'npx tsx scripts/spawn-agent-mock.ts --task_name scan --goal "List the source files" --delay_ms 500 &',
    'npx tsx scripts/spawn-agent-mock.ts --task_name report --goal "Write the report" --depends_on quality,security &',
  ],
  notes: [
    'Files: reads and writes <cwd>/.agent/sessions/latest.yaml (under its lock) and events.jsonl; writes <output_dir>/<task_name>.md.',
    'Exit codes: 0 completed, 1 failed, skipped or cancelled, 2 usage error or unusable state file.',
  ],
};

/** Runs the mock agent for argv; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const parsed = parseOrShowHelp(argv, spec);
  if (!parsed) return EXIT.ok;
  const settings = readSpawnSettings(parsed.flags, 'mock');
  const delayMs = integerFlag(parsed.flags, 'delay_ms', { min: 0, max: 24 * 3600_000 });
  settings.task.launch = { argv: relaunchArgv(import.meta.url, argv), cwd: settings.agentCwd };
  const result = await runBackgroundTask({
    ...settings,
    executor: createMockExecutor({ delayMs, fail: Boolean(parsed.flags.fail) }),
  });
  return result.status === 'completed' ? EXIT.ok : EXIT.taskFailed;
}

if (process.argv[1]?.endsWith('spawn-agent-mock.ts')) runMain(main);
