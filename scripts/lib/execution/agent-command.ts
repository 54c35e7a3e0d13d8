// The one way to build an agent's command: a known agent script, flags checked against that script's own flag spec, run by the skill's launcher.
import { statSync } from 'node:fs';
import path from 'node:path';
import { parseCommandLine, stringFlag, type CommandSpec, type FlagSpec } from '../cli/cli.ts';
import { CLAUDE_FLAGS } from '../agents/claude-options.ts';
import { errorMessage, usageError } from '../core/errors.ts';
import { resolveSessionPaths } from '../state/session-paths.ts';
import { readSpawnSettings, SPAWN_FLAGS } from './spawn-options.ts';
import { AGENT_SCRIPTS, type AgentLaunch, type AgentScript } from './launch-types.ts';
import { launchSignatureValid, signLaunch } from './launch-signature.ts';

export { AGENT_SCRIPTS, type AgentLaunch, type AgentScript } from './launch-types.ts';

/** Flags spawn-agent-mock adds to the shared spawn flags. */
export const MOCK_FLAGS: Record<string, FlagSpec> = {
  delay_ms: { type: 'string', placeholder: 'N', description: 'Simulated work time in ms (default random 1000-3000).' },
  fail: { type: 'boolean', description: 'Simulate a failure: the task ends "failed".' },
  write: {
    type: 'string',
    placeholder: 'FILE=TEXT',
    description: 'Write TEXT to FILE (relative to the agent\'s folder; "\\n" is a newline) before reporting success; repeatable.',
    multiple: true,
  },
  append: {
    type: 'string',
    placeholder: 'FILE=TEXT',
    description: 'Append TEXT to FILE (after every --write); repeatable.',
    multiple: true,
  },
  lazy: {
    type: 'boolean',
    description: 'Claim success without doing anything: no tool call, no edit (rehearses an "unverified" verdict).',
  },
  claim: {
    type: 'string',
    placeholder: 'TEXT',
    description: 'The answer to give, e.g. "Done, all tests pass." (default: a SIMULATED summary).',
  },
  ran: {
    type: 'string',
    placeholder: 'CMD=EXIT',
    description: 'A command to pretend it ran, with its exit code, for the receipts (never run), e.g. "npm test=1"; repeatable.',
    multiple: true,
  },
};

/** The flags each agent script accepts (the same tables its `--help` shows). */
export function agentFlagSpec(script: AgentScript): CommandSpec {
  return script === 'spawn-agent'
    ? { name: script, summary: '', usage: '', examples: [], flags: { ...SPAWN_FLAGS, ...CLAUDE_FLAGS }, passthrough: true }
    : { name: script, summary: '', usage: '', examples: [], flags: { ...SPAWN_FLAGS, ...MOCK_FLAGS } };
}

/**
 * The launch to record for an agent started with `argv`: the same flags minus `--new_session` and
 * `--session_id` (a replacement or a queued task's agent joins the current session) and `--wait`. One with `--check`
 * (a program of the user's) is signed with the user's launch key (launch-signature.ts), without which it is never replayed.
 */
export function agentLaunch(script: AgentScript, argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): AgentLaunch {
  const args: string[] = [];
  let runsProgram = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.push(...argv.slice(i));
      break;
    }
    const name = arg.replace(/^--?/, '').split('=')[0]!.replace(/-/g, '_');
    if (name === 'new_session' || name === 'wait') continue;
    if (name === 'check' && arg.startsWith('-')) runsProgram = true;
    if (name === 'session_id') {
      if (!arg.includes('=')) i++;
      continue;
    }
    args.push(arg);
  }
  const launch: AgentLaunch = { script, args, cwd: path.resolve(cwd) };
  const signature = runsProgram ? signLaunch(launch, env) : null;
  return signature === null ? launch : { ...launch, signature };
}

/**
 * Arguments after `--` a replacement may pass on to claude: options that only tune the model.
 * Anything else (`--settings`, `--mcp-config`, `--dangerously-skip-permissions`, ...) could make a
 * state file run code or lift permissions, so it is not replayed.
 */
const REPLAYABLE_PASSTHROUGH: ReadonlySet<string> = new Set(['--effort', '--fallback-model']);

/**
 * Validates a launch read from a state file (which may come from anywhere, e.g. a cloned
 * repository) before anything is started: the script is one of {@link AGENT_SCRIPTS}; its flags
 * parse strictly with that script's flag spec (unknown flags, node options such as `--require` or
 * `-e`, and stray arguments are refused); `--task_name`, when given, is the task's name; the
 * directory exists and the flags resolve to the same session state file as `statePath`; path
 * flags (`--output_dir`, `--task_file`, `--add_dir`, `--cwd`) stay inside that directory; and, for
 * spawn-agent, no `--claude_bin` (it names an executable), no `--permission_mode bypassPermissions`
 * and, after `--`, only {@link REPLAYABLE_PASSTHROUGH} options; a `--check` (a program to run) only with this user's
 * signature of the launch (launch-signature.ts), so a state file from elsewhere never runs one.
 *
 * @param raw - the recorded `launch` (any shape).
 * @param taskName - the task it must start.
 * @param statePath - the session state the replacement must join (absolute).
 * @returns the launch, typed.
 * @throws OrchestratorError usage, saying what was refused and why.
 */
export function validateAgentLaunch(raw: unknown, taskName: string, statePath: string): AgentLaunch {
  const launch = raw as Partial<AgentLaunch> | null;
  if (!launch || typeof launch !== 'object') throw usageError('no launch is recorded');
  if (typeof launch.script !== 'string' || !(AGENT_SCRIPTS as readonly string[]).includes(launch.script)) {
    throw usageError(`the recorded script ${JSON.stringify(launch.script)} is not one of ${AGENT_SCRIPTS.join(', ')}`);
  }
  const script = launch.script;
  if (!Array.isArray(launch.args) || !launch.args.every((arg) => typeof arg === 'string'))
    throw usageError('the recorded args are not a list of strings');
  if (typeof launch.cwd !== 'string' || !path.isAbsolute(launch.cwd))
    throw usageError(`the recorded cwd ${JSON.stringify(launch.cwd)} is not an absolute path`);
  let isDir = false;
  try {
    isDir = statSync(launch.cwd).isDirectory();
  } catch {
    // Reported below.
  }
  if (!isDir) throw usageError(`the recorded cwd ${JSON.stringify(launch.cwd)} is not an existing directory`);
  let parsed;
  try {
    parsed = parseCommandLine(launch.args, agentFlagSpec(script));
  } catch (error) {
    throw usageError(`the recorded flags of ${script} do not parse: ${errorMessage(error)}`);
  }
  if (parsed.help) throw usageError('the recorded flags ask for --help');
  if (parsed.flags.check !== undefined) refuseUnsigned({ script, args: launch.args, cwd: launch.cwd, signature: launch.signature });
  const name = stringFlag(parsed.flags, 'task_name');
  if (name !== undefined && name !== taskName)
    throw usageError(`the recorded --task_name ${JSON.stringify(name)} is not the task's name ${JSON.stringify(taskName)}`);
  if (name === undefined && stringFlag(parsed.flags, 'task_file') === undefined)
    throw usageError('the recorded flags name no task (--task_name or --task_file)');
  const sessionDir = stringFlag(parsed.flags, 'session_dir');
  const target = resolveSessionPaths({ cwd: launch.cwd, sessionDir }).statePath;
  if (path.resolve(target) !== path.resolve(statePath)) {
    throw usageError(`the recorded flags would join the session at ${JSON.stringify(target)}, not this one (${statePath})`);
  }
  // Paths stay inside the project the agent was started in: a replayed --task_file could send any
  // readable file to the model, and --output_dir, --add_dir or --cwd could reach any folder.
  for (const flag of ['output_dir', 'task_file', 'add_dir', 'cwd']) {
    const value = parsed.flags[flag];
    for (const item of value === undefined ? [] : Array.isArray(value) ? value : [String(value)]) {
      const full = path.resolve(launch.cwd, item);
      const inside = path.relative(launch.cwd, full);
      if (inside.startsWith('..') || path.isAbsolute(inside)) {
        throw usageError(
          `the recorded --${flag} ${JSON.stringify(item)} is outside the directory the agent was started in (${launch.cwd})`,
        );
      }
    }
  }
  try {
    // The values too (names, priorities, numbers), as the script itself would check them.
    readSpawnSettings(parsed.flags, script === 'spawn-agent' ? 'claude' : 'mock', { taskName, goal: 'replacement' }, launch.cwd);
  } catch (error) {
    throw usageError(`the recorded flags of ${script} are not valid: ${errorMessage(error)}`);
  }
  if (script === 'spawn-agent') {
    if (parsed.flags.claude_bin !== undefined)
      throw usageError('the recorded flags name an executable (--claude_bin); a replacement runs the claude of $CLAUDE_BIN or PATH only');
    if (parsed.flags.permission_mode === 'bypassPermissions')
      throw usageError(
        'the recorded flags bypass permissions (--permission_mode bypassPermissions), which is never replayed from a state file',
      );
    for (let i = 0; i < parsed.passthrough.length; i++) {
      const arg = parsed.passthrough[i]!;
      const option = arg.split('=')[0]!;
      if (!REPLAYABLE_PASSTHROUGH.has(option)) {
        throw usageError(
          `the recorded claude argument ${JSON.stringify(arg)} is not replayed from a state file (only ${[...REPLAYABLE_PASSTHROUGH].join(', ')})`,
        );
      }
      if (!arg.includes('=')) {
        const value = parsed.passthrough[++i];
        if (value === undefined || value.startsWith('-')) throw usageError(`the recorded claude argument ${arg} has no value`);
      }
    }
  }
  return { script, args: [...launch.args], cwd: launch.cwd, ...(launch.signature === undefined ? {} : { signature: launch.signature }) };
}

/** Refuses a recorded launch that runs a check unless this user's launch key signed it (launch-signature.ts). */
function refuseUnsigned(launch: AgentLaunch): void {
  if (launchSignatureValid(launch)) return;
  throw usageError(
    "the recorded --check is not signed with this user's launch key: a check read from a state file runs only when this " +
      "user's own agent recorded it (never from a state file made elsewhere, e.g. in a cloned repository); start the task again by hand",
  );
}

/**
 * Starts the agent of a validated launch: detached (a session and process group of its own),
 * stdio ignored, no shell, in `launch.cwd`, through this install's launcher form (`runScript`:
 * this install's bundle or `--import tsx` and this install's source), then the flags. Never a
 * path or option read from a file. Used by the queue (adoption) and by worker replacement.
 *
 * @param env - extra environment (e.g. the adoption token), on top of this process's.
 * @returns the child's pid once it has started, or why it could not start (never throws).
 */
export async function startAgent(launch: AgentLaunch, env: Record<string, string> = {}): Promise<{ pid: number } | { error: string }> {
  try {
    // Loaded here, not at the top: a start that only registers a task never needs execa.
    const { runScript } = await import('../launcher/run-script.ts');
    const child = runScript(launch.script, launch.args, { cwd: launch.cwd, detached: true, stdio: 'ignore', reject: false, env });
    child.unref();
    void child.catch(() => undefined);
    const failure = await new Promise<string | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (error) => resolve(errorMessage(error)));
    });
    if (failure !== null) return { error: failure };
    return child.pid === undefined ? { error: 'the agent process did not start' } : { pid: child.pid };
  } catch (error) {
    return { error: errorMessage(error) };
  }
}
