// spawn-agent's own flags (model, turns, budget, permissions, timeout, ...) and the `claude` argv built from them.
import { statSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_BACKOFF_BASE_MS } from './backoff.ts';
import { enumFlag, integerFlag, numberFlag, stringFlag, type FlagSpec, type ParsedFlags } from '../cli/cli.ts';
import { usageError } from '../core/errors.ts';
import { flag } from '../cli/options.ts';
import { MAX_TIMER_MS } from '../state/model.ts';

/** Default `--timeout` of one claude run (s): 30 minutes. */
export const DEFAULT_CLAUDE_TIMEOUT_S = 30 * 60;

/**
 * Default `--stall_timeout` (s): 3 minutes without an output line. Above the CLI's 30 s
 * `tool_progress` heartbeat (a long tool call is not a stall) and its own ~181 s of retries of a
 * persistent 429, which print `system/api_retry` lines (references/cli-integration.md, "Streaming events").
 */
export const DEFAULT_STALL_TIMEOUT_S = 180;

/** The longest duration a timer can wait (s): 2^31-1 ms (Node's setTimeout limit). */
const MAX_DURATION_S = MAX_TIMER_MS / 1000;

/** `--permission-mode` values of Claude Code 2.1.330 (`claude --help`). */
export const PERMISSION_MODES = ['acceptEdits', 'auto', 'bypassPermissions', 'manual', 'dontAsk', 'plan'] as const;

/** Flags spawn-agent adds to the shared spawn flags. */
export const CLAUDE_FLAGS = {
  task_file: {
    type: 'string',
    placeholder: 'PATH',
    description: 'Markdown task file: frontmatter task_name, goal, depends_on, priority, files; body = instructions.',
  },
  model: { type: 'string', placeholder: 'NAME', description: 'Model for the sub-agent (claude --model), e.g. sonnet, opus.' },
  max_turns: { type: 'string', placeholder: 'N', description: 'Most agent turns (claude --max-turns); reaching it fails the task.' },
  max_budget_usd: {
    type: 'string',
    placeholder: 'USD',
    description:
      "Most dollars this agent may spend (claude --max-budget-usd); reaching it fails the task. With a session --budget_usd, the smaller of this and the task's share is passed.",
  },
  allowed_tools: {
    type: 'string',
    placeholder: 'TOOLS',
    description: 'Tools allowed without asking, e.g. "Read,Edit,Bash(git *)" (claude --allowedTools).',
    multiple: true,
  },
  disallowed_tools: { type: 'string', placeholder: 'TOOLS', description: 'Tools denied (claude --disallowedTools).', multiple: true },
  permission_mode: {
    type: 'string',
    placeholder: 'MODE',
    description: `claude --permission-mode: ${PERMISSION_MODES.join(', ')} (default: the CLI's).`,
  },
  append_system_prompt: {
    type: 'string',
    placeholder: 'TEXT',
    description: 'Text appended to the system prompt (claude --append-system-prompt).',
  },
  add_dir: {
    type: 'string',
    placeholder: 'DIR',
    description: 'Another directory the agent may use (claude --add-dir); repeatable.',
    multiple: true,
  },
  claude_bin: { type: 'string', placeholder: 'PATH', description: 'The claude executable (default $CLAUDE_BIN, else "claude" on PATH).' },
  cwd: {
    type: 'string',
    placeholder: 'DIR',
    description: 'Directory the agent works in (default the current one; the session stays here).',
  },
  timeout: {
    type: 'string',
    placeholder: 'S',
    description: `Seconds before a run's whole process tree is terminated (default ${DEFAULT_CLAUDE_TIMEOUT_S}).`,
  },
  stall_timeout: {
    type: 'string',
    placeholder: 'S',
    description: `Seconds without an output line after which a run counts as stalled: its process tree is ended and the agent's Claude session is resumed (--resume), within --retries (default ${DEFAULT_STALL_TIMEOUT_S}).`,
  },
  backoff_ms: {
    type: 'string',
    placeholder: 'N',
    description: `Base of the exponential backoff between retries, in ms (default ${DEFAULT_BACKOFF_BASE_MS}).`,
  },
} satisfies Record<string, FlagSpec>;

/**
 * The claude flags of a command that runs many tasks with one set of flags (`orchestrate --agent
 * claude`, `worker --agent claude`): spawn-agent's, without the per-task ones (`--task_file`,
 * `--cwd`, `--timeout`), plus `--agent_timeout` (spawn-agent's `--timeout` under a name that says
 * it is per agent run, with its bounds) and `--retries`.
 */
const { task_file: _taskFile, cwd: _cwd, timeout: _timeout, ...perRunFlags } = CLAUDE_FLAGS;
export const MANY_TASK_CLAUDE_FLAGS = {
  ...perRunFlags,
  agent_timeout: flag.number({
    placeholder: 'S',
    description: 'claude only: seconds before one agent run is terminated (default 1800).',
    min: 0,
    exclusiveMin: true,
    max: 7 * 24 * 3600,
  }),
  retries: flag.integer({
    placeholder: 'N',
    description: 'Retries per task: after a transient API failure (claude) or a failed --check (claude and mock) (default 3).',
    min: 0,
    max: 20,
    default: 3,
  }),
};

/** The validated claude-specific settings. */
export interface ClaudeSettings {
  /** Command name or absolute path of the CLI. */
  bin: string;
  /** Absolute directory the agent works in. */
  cwd: string;
  /** Arguments of every run: `-p --output-format stream-json --verbose`, the passed-through flags, then the args after `--`. */
  args: string[];
  /** Timeout of one run (s). */
  timeoutS: number;
  /** Backoff base (ms). */
  backoffMs: number;
  /** Silence of the CLI's output (s) that counts as a stall. */
  stallTimeoutS: number;
}

/** Checks that a flag names an existing directory; returns it absolute. */
function existingDir(value: string, flag: string, cwd: string): string {
  const full = path.resolve(cwd, value);
  let isDir = false;
  try {
    isDir = statSync(full).isDirectory();
  } catch {
    // Reported below.
  }
  if (!isDir)
    throw usageError(`Expected --${flag} to be an existing directory, got ${JSON.stringify(value)} (${full}). Create it or fix the path.`);
  return full;
}

/**
 * Refuses arguments after `--` that would break how the output is read: another `--output-format`
 * (a single JSON object at the end would look like silence to the stall check, and progress would
 * never show). `stream-json` itself is allowed (it is what spawn-agent passes anyway).
 * @throws OrchestratorError usage (exit 2) naming the argument.
 */
function checkPassthrough(passthrough: readonly string[]): void {
  passthrough.forEach((arg, i) => {
    const value =
      arg === '--output-format'
        ? passthrough[i + 1]
        : arg.startsWith('--output-format=')
          ? arg.slice('--output-format='.length)
          : undefined;
    if (value !== undefined && value !== 'stream-json') {
      throw usageError(
        `Expected no --output-format after --, got "--output-format ${value ?? ''}": spawn-agent runs claude with --output-format stream-json --verbose itself, to follow the agent as it works. Remove it.`,
      );
    }
  });
}

/** Values of a repeatable string flag, in order, empty ones dropped (not split: the CLI splits tool lists itself). */
function repeated(flags: ParsedFlags, name: string): string[] {
  const value = flags[name];
  const items = value === undefined ? [] : Array.isArray(value) ? value : [String(value)];
  return items.map((item) => item.trim()).filter(Boolean);
}

/**
 * Validates spawn-agent's claude flags and builds the CLI's argv. Never adds a permission-bypassing
 * flag: `bypassPermissions` or `--dangerously-skip-permissions` only when the caller gives them.
 *
 * @param flags - parsed flags.
 * @param passthrough - arguments after `--`, appended verbatim.
 * @param env - reads `CLAUDE_BIN` (used when --claude_bin is absent; empty counts as unset).
 * @param cwd - where relative paths are resolved (the caller's working directory).
 * @throws OrchestratorError usage (exit 2) naming the flag, the value and what to do.
 */
export function readClaudeSettings(
  flags: ParsedFlags,
  passthrough: string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): ClaudeSettings {
  const binFlag = stringFlag(flags, 'claude_bin');
  if (binFlag !== undefined && binFlag.trim() === '')
    throw usageError('Expected --claude_bin to name the claude executable (a path or a command on PATH), got "".');
  const binRaw = binFlag ?? (env.CLAUDE_BIN || 'claude');
  const bin = binRaw.includes('/') ? path.resolve(cwd, binRaw) : binRaw;
  const agentCwd = existingDir(stringFlag(flags, 'cwd') ?? cwd, 'cwd', cwd);
  const model = stringFlag(flags, 'model');
  if (model !== undefined && model.trim() === '')
    throw usageError(`Expected --model to name a model, e.g. --model sonnet, got ${JSON.stringify(model)}.`);
  const maxTurns = integerFlag(flags, 'max_turns', { min: 1, max: 10_000 });
  const budget = numberFlag(flags, 'max_budget_usd', { min: 0, exclusiveMin: true });
  const mode = enumFlag(flags, 'permission_mode', PERMISSION_MODES);
  const appendSystemPrompt = stringFlag(flags, 'append_system_prompt');
  const addDirs = repeated(flags, 'add_dir').map((dir) => existingDir(dir, 'add_dir', cwd));
  const allowed = repeated(flags, 'allowed_tools');
  const disallowed = repeated(flags, 'disallowed_tools');
  const timeoutS = numberFlag(flags, 'timeout', { min: 0, exclusiveMin: true, max: 7 * 24 * 3600 }) ?? DEFAULT_CLAUDE_TIMEOUT_S;
  const backoffMs = integerFlag(flags, 'backoff_ms', { min: 0, max: 3_600_000 }) ?? DEFAULT_BACKOFF_BASE_MS;
  const stallTimeoutS = numberFlag(flags, 'stall_timeout', { min: 0, exclusiveMin: true, max: MAX_DURATION_S }) ?? DEFAULT_STALL_TIMEOUT_S;
  // stream-json needs --verbose with -p; its last line is the same result object as `--output-format json` prints.
  const args = ['-p', '--output-format', 'stream-json', '--verbose'];
  if (model !== undefined) args.push('--model', model);
  if (maxTurns !== undefined) args.push('--max-turns', String(maxTurns));
  if (budget !== undefined) args.push('--max-budget-usd', String(budget));
  if (mode !== undefined) args.push('--permission-mode', mode);
  if (appendSystemPrompt !== undefined) args.push('--append-system-prompt', appendSystemPrompt);
  // Variadic options of the CLI: each takes every value up to the next flag.
  if (allowed.length > 0) args.push('--allowedTools', ...allowed);
  if (disallowed.length > 0) args.push('--disallowedTools', ...disallowed);
  if (addDirs.length > 0) args.push('--add-dir', ...addDirs);
  checkPassthrough(passthrough);
  args.push(...passthrough);
  return { bin, cwd: agentCwd, args, timeoutS, backoffMs, stallTimeoutS };
}
