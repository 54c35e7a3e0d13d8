/**
 * spawn-agent-mock: simulate one sub-agent (a delay, then a result file marked SIMULATED) under the shared session state.
 *
 * Usage:   "$S/scripts/run" spawn-agent-mock --task_name NAME --goal TEXT [--delay_ms N] [--fail] [...] &
 * Example: "$S/scripts/run" spawn-agent-mock --task_name scan --goal "List the source files" --delay_ms 500 &
 *          (S is this skill's folder; `--help` prints the absolute path of this install's launcher. scripts/run starts the
 *          agent in a session of its own, so killing the caller's process group does not stop it: cancel-session does.)
 * Reads/writes: <cwd>/.agent/sessions/latest.yaml (under its lock) and events.jsonl;
 *               writes <output_dir>/<task_name>.md (default .agent/results).
 * Exit: 0 completed, or queued (started later by another process; --wait stays until it ends), 1 failed/skipped/cancelled, 2 usage error or unusable state.
 */
import path from 'node:path';
import { parseCommandLine, parseOrShowHelp, integerFlag, runMain, enumFlag, type CommandSpec, type ParsedFlags } from './lib/cli/cli.ts';
import { EXIT } from './lib/core/errors.ts';
import { guardBrokenOutput } from './lib/execution/detach.ts';
import { launcherCommand } from './lib/launcher/dist.ts';
import { runBackgroundTask, type BackgroundTaskOptions } from './lib/execution/background-task.ts';
import { taskLine } from './lib/progress/event-lines.ts';
import { createMockExecutor, parseEditFlag, parseRanFlag } from './lib/agents/mock-agent.ts';
import { checkIsolatedStart, isolatedFromFlag, ISOLATION_MODES } from './lib/isolation/isolated-executor.ts';
import { readCheckFlags, readSpawnSettings, SPAWN_FLAGS, takeAdoptToken } from './lib/execution/spawn-options.ts';
import { agentLaunch, MOCK_FLAGS } from './lib/execution/agent-command.ts';

export const spec: CommandSpec = {
  name: 'spawn-agent-mock',
  summary:
    'Registers a task in the session; if its dependencies and a worker slot allow, simulates an agent at once ' +
    '(sleeps, then writes <output_dir>/<task_name>.md quoting the goal) and records it completed, or failed with --fail. ' +
    'Otherwise the task is queued and this process exits 0 at once: the agent that frees a slot (or poll-session, orchestrate) starts it later. ' +
    'Needs no Claude account and does no real work (a rehearsal); start many at once with "&", or register them with --detach joined by "&&" (each returns at once). Started through scripts/run, ' +
    'the agent runs in a session of its own: killing the shell or tool call that started it does not stop it (cancel-session does).',
  usage:
    '--task_name NAME --goal TEXT [--delay_ms N] [--fail] [--write FILE=TEXT] [--append FILE=TEXT] [--lazy] [--claim TEXT] [--ran CMD=EXIT] [--check CMD] [--isolation none|worktree] [--depends_on A,B] [...]',
  flags: {
    ...SPAWN_FLAGS,
    ...MOCK_FLAGS,
  },
  examples: [
    launcherCommand('spawn-agent-mock', '--task_name scan --goal "List the source files" --delay_ms 500 &'),
    launcherCommand('spawn-agent-mock', '--task_name report --goal "Write the report" --depends_on scan &'),
  ],
  notes: [
    'Files: reads and writes <cwd>/.agent/sessions/latest.yaml (under its lock) and events.jsonl; writes <output_dir>/<task_name>.md.',
    'Exit codes: 0 completed, or queued (without --wait), 1 failed, skipped or cancelled, 2 usage error or unusable state file.',
  ],
};

/**
 * The options of one mock agent from its flags: this process's own, or a queued task's recorded
 * (validated) launch it runs next in the same process (`continueWith`).
 * @throws OrchestratorError usage, naming the flag and value.
 */
async function agentOptions(argv: string[], cwd: string): Promise<BackgroundTaskOptions> {
  const parsed = parseCommandLine(argv, spec);
  const settings = readSpawnSettings(parsed.flags, 'mock', {}, cwd);
  const delayMs = integerFlag(parsed.flags, 'delay_ms', { min: 0, max: 24 * 3600_000 });
  settings.task.launch = agentLaunch('spawn-agent-mock', argv, cwd);
  const edits = [
    ...rawValues(parsed.flags, 'write').map((v) => parseEditFlag('write', v)),
    ...rawValues(parsed.flags, 'append').map((v) => parseEditFlag('append', v)),
  ];
  const mock = createMockExecutor({
    delayMs,
    fail: Boolean(parsed.flags.fail),
    edits,
    lazy: Boolean(parsed.flags.lazy),
    claim: parsed.flags.claim === undefined ? undefined : String(parsed.flags.claim),
    ran: rawValues(parsed.flags, 'ran').map(parseRanFlag),
    check: await readCheckFlags(parsed.flags),
    retries: (settings.task.maxAttempts ?? 1) - 1,
    log: settings.log ?? ((line: string) => process.stdout.write(`${line}\n`)),
  });
  const isolation = enumFlag(parsed.flags, 'isolation', ISOLATION_MODES) ?? 'none';
  return {
    ...settings,
    executor: isolatedFromFlag(isolation, mock, path.resolve(cwd), settings.paths),
    continueWith: { script: 'spawn-agent-mock', cwd: path.resolve(cwd), build: (launch) => agentOptions(launch.args, launch.cwd) },
  };
}

/** The raw values of a repeatable flag (never split on commas: the text of an edit may hold them). */
function rawValues(flags: ParsedFlags, name: string): string[] {
  const value = flags[name];
  return value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)];
}

/** Runs the mock agent for argv; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  guardBrokenOutput();
  if (!parseOrShowHelp(argv, spec)) return EXIT.ok;
  const options = await agentOptions(argv, process.cwd());
  // Refused before the task is registered: not a git repository, one without a commit, a session id in use there.
  if (parseCommandLine(argv, spec).flags.isolation === 'worktree')
    await checkIsolatedStart(process.cwd(), options.task.name, options.session.sessionId, options.paths);
  const result = await runBackgroundTask({ ...options, describe: taskLine, adoptToken: takeAdoptToken() });
  return result.status === 'completed' || (result.queued && !options.wait) ? EXIT.ok : EXIT.taskFailed;
}

if (process.argv[1]?.endsWith('spawn-agent-mock.ts')) runMain(main);
