/**
 * spawn-agent: run one real Claude Code sub-agent (`claude -p`) for a task, under the shared session state.
 *
 * Usage:   "$S/scripts/run" spawn-agent --task_name NAME --goal TEXT [--task_file PATH] [--model M] [--max_turns N] [...] [-- CLAUDE_ARGS] &
 * Example: "$S/scripts/run" spawn-agent --task_name scan --goal "List the TODO comments in src/" --permission_mode plan &
 *          (S is this skill's folder; `--help` prints the absolute path of this install's launcher. scripts/run starts the
 *          agent in a session of its own, so killing the caller's process group does not stop it: cancel-session does.)
 * Reads/writes: <cwd>/.agent/sessions/latest.yaml (under its lock) and events.jsonl;
 *               writes <output_dir>/<task_name>.md (default .agent/results); reads --task_file.
 * Runs: `claude -p --output-format stream-json --verbose [flags]` in the project (or --cwd), the prompt on stdin; see references/cli-integration.md.
 * Exit: 0 completed, or queued (started later by another process; --wait stays until it ends), 1 failed/skipped/cancelled (including: claude not installed), 2 usage error or unusable state.
 */
import path from 'node:path';
import { enumFlag, parseCommandLine, parseOrShowHelp, runMain, stringFlag, type CommandSpec } from './lib/cli/cli.ts';
import { EXIT } from './lib/core/errors.ts';
import { guardBrokenOutput } from './lib/execution/detach.ts';
import { launcherCommand } from './lib/launcher/dist.ts';
import { runBackgroundTask, type BackgroundTaskOptions } from './lib/execution/background-task.ts';
import { taskLine } from './lib/progress/event-lines.ts';
import type { AgentExecutor } from './lib/agents/agent-types.ts';
import { CLAUDE_FLAGS, readClaudeSettings } from './lib/agents/claude-options.ts';
import { readCheckFlags, readSpawnSettings, SPAWN_FLAGS, takeAdoptToken } from './lib/execution/spawn-options.ts';
import { agentLaunch } from './lib/execution/agent-command.ts';
import { checkIsolatedStart, isolatedFromFlag, ISOLATION_MODES } from './lib/isolation/isolated-executor.ts';

export const spec: CommandSpec = {
  name: 'spawn-agent',
  summary:
    'Registers a task in the session; if its dependencies and a worker slot allow, runs a real Claude Code ' +
    'sub-agent (`claude -p --output-format stream-json`, read live; prompt on stdin, no shell) in the project directory. Its answer goes to ' +
    '<output_dir>/<task_name>.md; the state records cost, tokens, turns and the claude session id. Rate limits, 5xx and ' +
    'connection failures are retried with exponential backoff; other failures end the task at once. A task that cannot start yet is ' +
    'queued and this process exits 0 at once: the agent that frees a slot (or poll-session, orchestrate) starts it later. Start many with "&", ' +
    'or register them with --detach joined by "&&" (each returns at once; the form Claude Code pre-approves for the skill): ' +
    'started through scripts/run, each agent runs in a session of its own, so killing the shell or tool call that started it does ' +
    'not stop it (cancel-session does).',
  usage:
    '--task_name NAME --goal TEXT [--task_file PATH] [--model M] [--max_turns N] [--permission_mode MODE] [--allowed_tools T] [...] [-- CLAUDE_ARGS]',
  flags: { ...SPAWN_FLAGS, ...CLAUDE_FLAGS },
  passthrough: true,
  examples: [
    launcherCommand('spawn-agent', '--task_name scan --goal "List the TODO comments in src/" --permission_mode plan &'),
    launcherCommand(
      'spawn-agent',
      '--task_file .agent/tasks/T-02.md --permission_mode acceptEdits --allowed_tools "Read,Edit,Bash(npm test)" --max_turns 30 &',
    ),
    launcherCommand('spawn-agent', '--task_name review --goal "Review the diff" --depends_on scan --model sonnet -- --effort high &'),
    launcherCommand(
      'spawn-agent',
      '--session_id docs-1 --detach --task_name lint --goal "List the broken links in docs/" --permission_mode plan',
    ),
  ],
  notes: [
    'Arguments after "--" are passed to claude verbatim. No permission-bypassing flag is ever added by default.',
    'Files: reads and writes <cwd>/.agent/sessions/latest.yaml (under its lock) and events.jsonl; writes <output_dir>/<task_name>.md.',
    'Exit codes: 0 completed, or queued (without --wait), 1 failed, skipped or cancelled (also when claude is missing), 2 usage error or unusable state file.',
    'Details: references/cli-integration.md.',
  ],
};

/**
 * The options of one real agent from its flags: this process's own, or a queued task's recorded
 * (validated) launch it runs next in the same process (`continueWith`).
 * @throws OrchestratorError usage, naming the flag and value.
 */
async function agentOptions(argv: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<BackgroundTaskOptions> {
  const parsed = parseCommandLine(argv, spec);
  const taskFileFlag = stringFlag(parsed.flags, 'task_file');
  // The task file's reader (gray-matter, zod) and the claude runner (execa) are loaded only when
  // needed: a start that only registers a task that must wait never loads them (bench/RESULTS.md).
  const taskFile = taskFileFlag === undefined ? null : (await import('./lib/agents/claude-prompt.ts')).readTaskFile(taskFileFlag);
  const settings = readSpawnSettings(parsed.flags, 'claude', taskFile ?? {}, cwd);
  const claude = readClaudeSettings(parsed.flags, parsed.passthrough, env);
  settings.agentCwd = claude.cwd;
  settings.task.launch = agentLaunch('spawn-agent', argv, cwd);
  const isolation = enumFlag(parsed.flags, 'isolation', ISOLATION_MODES) ?? 'none';
  const check = await readCheckFlags(parsed.flags);
  let loaded: Promise<AgentExecutor> | undefined;
  const claudeExecutor: AgentExecutor = async (ctx) => {
    loaded ??= import('./lib/agents/claude-agent.ts').then(({ createClaudeExecutor }) => createClaudeExecutor(executorOptions));
    return (await loaded)(ctx);
  };
  const executorOptions = {
    bin: claude.bin,
    args: claude.args,
    timeoutS: claude.timeoutS,
    stallTimeoutS: claude.stallTimeoutS,
    backoffMs: claude.backoffMs,
    retries: (settings.task.maxAttempts ?? 1) - 1,
    instructions: taskFile?.instructions,
    taskFilePath: taskFile?.path,
    check,
    log: settings.log ?? ((line: string) => process.stdout.write(`${line}\n`)),
  };
  return {
    ...settings,
    // --isolation worktree: the agent works in a git worktree of its own (scripts/lib/isolation/); --cwd names the repository.
    executor: isolatedFromFlag(isolation, claudeExecutor, claude.cwd, settings.paths),
    continueWith: { script: 'spawn-agent', cwd: path.resolve(cwd), build: (launch) => agentOptions(launch.args, launch.cwd, env) },
  };
}

/**
 * Runs one real sub-agent for argv; returns the exit code. Every flag and path is checked before
 * the session state is touched.
 * @param env - reads `CLAUDE_BIN`.
 */
export async function main(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  guardBrokenOutput();
  if (!parseOrShowHelp(argv, spec)) return EXIT.ok;
  const options = await agentOptions(argv, process.cwd(), env);
  // Refused before the task is registered: not a git repository, one without a commit, a session id in use there.
  if (parseCommandLine(argv, spec).flags.isolation === 'worktree')
    await checkIsolatedStart(options.agentCwd, options.task.name, options.session.sessionId, options.paths);
  const result = await runBackgroundTask({ ...options, describe: taskLine, adoptToken: takeAdoptToken(env) });
  if (result.status === 'failed' && result.record?.error) process.stderr.write(`error: ${options.task.name}: ${result.record.error}\n`);
  return result.status === 'completed' || (result.queued && !options.wait) ? EXIT.ok : EXIT.taskFailed;
}

if (process.argv[1]?.endsWith('spawn-agent.ts')) runMain(main);
