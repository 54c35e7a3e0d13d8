// Receipts: what an agent really did (tool calls by kind, files written, commands run and their exit codes, denials, lines changed), kept per attempt.
import path from 'node:path';

/** Kinds of tool call counted in a receipt (as Claude Code's own Agent tool counts them in its `toolStats`). */
export const TOOL_KINDS = ['read', 'search', 'edit', 'bash', 'web', 'other'] as const;
export type ToolKind = (typeof TOOL_KINDS)[number];

/** Tool calls by kind. */
export type ToolCounts = Record<ToolKind, number>;

/**
 * The kind of a Claude Code tool, by name (tool names of Claude Code 2.1.330's `system/init` list, plus those of
 * earlier releases): Read/NotebookRead/LS read; Grep/Glob search; Edit/MultiEdit/Write/NotebookEdit edit; Bash and
 * PowerShell run commands; WebFetch/WebSearch reach the web; everything else (Task, TodoWrite, Skill, MCP tools) is other.
 */
export function toolKind(name: string): ToolKind {
  switch (name) {
    case 'Read':
    case 'NotebookRead':
    case 'LS':
      return 'read';
    case 'Grep':
    case 'Glob':
      return 'search';
    case 'Edit':
    case 'MultiEdit':
    case 'Write':
    case 'NotebookEdit':
      return 'edit';
    case 'Bash':
    case 'PowerShell':
      return 'bash';
    case 'WebFetch':
    case 'WebSearch':
      return 'web';
    default:
      return 'other';
  }
}

/** One file edit or write, as the tool call and its result tell it. */
export interface FileReceipt {
  /** Relative to the agent's working directory when inside it, else as the agent gave it. */
  path: string;
  tool: string;
  /** The tool reported success (false: an error or a denial; null: no result seen, e.g. the run was cut). */
  ok: boolean | null;
  lines_added: number;
  lines_removed: number;
}

/** One command the agent ran (Bash/PowerShell). */
export interface CommandReceipt {
  /** The command, at most {@link COMMAND_CHARS} characters. */
  command: string;
  /** 0 on success, N from the tool's `Exit code N`, null when unknown (denied, interrupted, no result seen). */
  exit: number | null;
  denied: boolean;
  interrupted: boolean;
}

/** A tool call denied by permissions. */
export interface DenialReceipt {
  tool: string;
  /** The file or command it was denied on, or null. */
  target: string | null;
}

/** Everything one attempt did. */
export interface AttemptReceipt {
  attempt: number;
  tool_calls: ToolCounts;
  files: FileReceipt[];
  commands: CommandReceipt[];
  denials: DenialReceipt[];
  /** The receipt was simulated by the mock agent (a rehearsal): no real tool ran. */
  simulated: boolean;
}

/** The compact receipt kept in the state (task field `receipts`): totals over every attempt. */
export interface ReceiptSummary {
  tool_calls: ToolCounts;
  /** Distinct files written or edited successfully. */
  files_written: number;
  commands: number;
  /** Commands that ended with a known non-zero exit code. */
  commands_failed: number;
  denials: number;
  lines_added: number;
  lines_removed: number;
  /** `git`: exact, from the task's worktree diff (`git diff --numstat`); `edits`: added up from the edit tools' patches or inputs. */
  lines_from: 'git' | 'edits';
  simulated: boolean;
}

/** Longest command kept in a receipt (characters). */
export const COMMAND_CHARS = 300;

/** Tool calls by kind, all zero. */
export function noToolCalls(): ToolCounts {
  return { read: 0, search: 0, edit: 0, bash: 0, web: 0, other: 0 };
}

/** An empty receipt of attempt `attempt`. */
export function emptyAttempt(attempt: number, simulated = false): AttemptReceipt {
  return { attempt, tool_calls: noToolCalls(), files: [], commands: [], denials: [], simulated };
}

/** Total tool calls of a count. */
export function totalCalls(counts: ToolCounts): number {
  return TOOL_KINDS.reduce((sum, kind) => sum + counts[kind], 0);
}

/** `path` relative to `cwd` when it lies inside it (forward slashes), else as given. */
export function relativeToCwd(cwd: string, file: string): string {
  const absolute = path.resolve(cwd, file);
  const relative = path.relative(cwd, absolute);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return file;
  return relative.split(path.sep).join('/');
}

/** Lines of a text as an editor counts them: a trailing newline ends the last line, it does not start one. */
export function lineCount(text: string): number {
  if (text === '') return 0;
  const lines = text.split('\n').length;
  return text.endsWith('\n') ? lines - 1 : lines;
}

/**
 * Adds up attempts into the state's compact receipt.
 * @param lines - exact counts from git (worktree isolation), which replace the edits' sums; omit otherwise.
 */
export function summarize(attempts: readonly AttemptReceipt[], lines?: { added: number; removed: number }): ReceiptSummary {
  const tool_calls = noToolCalls();
  const written = new Set<string>();
  let commands = 0;
  let failed = 0;
  let denials = 0;
  let added = 0;
  let removed = 0;
  for (const attempt of attempts) {
    for (const kind of TOOL_KINDS) tool_calls[kind] += attempt.tool_calls[kind];
    for (const file of attempt.files) {
      if (file.ok !== true) continue;
      written.add(file.path);
      added += file.lines_added;
      removed += file.lines_removed;
    }
    commands += attempt.commands.length;
    failed += attempt.commands.filter((command) => command.exit !== null && command.exit !== 0).length;
    denials += attempt.denials.length;
  }
  return {
    tool_calls,
    files_written: written.size,
    commands,
    commands_failed: failed,
    denials,
    lines_added: lines?.added ?? added,
    lines_removed: lines?.removed ?? removed,
    lines_from: lines ? 'git' : 'edits',
    simulated: attempts.length > 0 && attempts.every((attempt) => attempt.simulated),
  };
}

/** One line for people: `3 reads, 1 search, 2 edits (1 file, +12 -3), 2 commands (1 failed), 1 denial`; `no tool calls` when none. */
export function describeReceipt(summary: ReceiptSummary): string {
  const calls = summary.tool_calls;
  if (totalCalls(calls) === 0 && summary.denials === 0) return summary.simulated ? 'no tool calls (simulated)' : 'no tool calls';
  const parts: string[] = [];
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  if (calls.read) parts.push(plural(calls.read, 'read', 'reads'));
  if (calls.search) parts.push(plural(calls.search, 'search', 'searches'));
  if (calls.edit) {
    const lines = `+${summary.lines_added} -${summary.lines_removed}`;
    parts.push(`${plural(calls.edit, 'edit', 'edits')} (${plural(summary.files_written, 'file', 'files')}, ${lines})`);
  }
  if (calls.bash)
    parts.push(`${plural(calls.bash, 'command', 'commands')}${summary.commands_failed ? ` (${summary.commands_failed} failed)` : ''}`);
  if (calls.web) parts.push(plural(calls.web, 'web call', 'web calls'));
  if (calls.other) parts.push(plural(calls.other, 'other', 'others'));
  if (summary.denials) parts.push(plural(summary.denials, 'denial', 'denials'));
  return `${parts.join(', ')}${summary.simulated ? ' (simulated)' : ''}`;
}
