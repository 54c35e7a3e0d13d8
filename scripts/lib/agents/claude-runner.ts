// One run of the `claude` CLI: prompt on standard input (then closed), no shell, output read line by line as it comes, a timeout and a stall limit that end the whole process tree.
import { execa, type Result } from 'execa';
import { lineSplitter } from './claude-stream.ts';
import { errorMessage } from '../core/errors.ts';
import { DEFAULT_KILL_GRACE_MS, terminateProcessTree } from '../process/tree.ts';
import { identityOf } from '../process/identity.ts';
import { signalOwnChild } from '../process/signals.ts';

/** How long output may stay open after the CLI exited before its process group is ended (ms). */
const STDIO_LINGER_MS = 2000;

/** Options of {@link runClaude}. */
export interface ClaudeRunOptions {
  /** Executable: a command name looked up on PATH (`claude`) or a path. */
  bin: string;
  /** Arguments, passed as an array (never through a shell), e.g. from `buildClaudeArgs`. */
  args: readonly string[];
  /** Written to the CLI's standard input, which is then closed. */
  prompt: string;
  /** Working directory of the CLI (the project the agent works in). */
  cwd: string;
  /** Extra environment variables, on top of this process's environment. */
  env?: Record<string, string | undefined>;
  /** The run is ended (tree terminated) after this long (ms). */
  timeoutMs: number;
  /** Wait between SIGTERM and SIGKILL (ms). @default {@link DEFAULT_KILL_GRACE_MS} */
  killGraceMs?: number;
  /** Aborting ends the run like the timeout does. */
  signal?: AbortSignal;
  /**
   * The run is ended (tree terminated, `stalled` set) when standard output stays silent this long
   * (ms); undefined = no stall limit. Any output resets it, even part of a line.
   */
  stallTimeoutMs?: number;
  /** Called with each complete line of standard output as it arrives (newline removed, empty lines skipped). */
  onLine?: (line: string) => void;
  /** Told the CLI's identity (pid, start time, host) right after it started, or null if it did not start. */
  onSpawn?: (identity: { pid: number; start: string | null; host: string | null } | null) => void;
}

/** What one run of the CLI did: raw facts, classified by `classifyClaudeRun`. */
export interface ClaudeRun {
  /** The exit code, or null when the CLI did not start or was ended by a signal. */
  exitCode: number | null;
  /** The signal that ended the CLI, if any (e.g. `SIGKILL`). */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Wall-clock time of the run (ms). */
  durationMs: number;
  /** The timeout elapsed and the tree was terminated. */
  timedOut: boolean;
  /** Standard output was silent for `stallTimeoutMs` and the tree was terminated. */
  stalled: boolean;
  /** The longest silence of standard output seen (ms): from the start, or between chunks, to the next output or the end. */
  silenceMs: number;
  /** `signal` was aborted and the tree was terminated; `abortReason` says why. */
  aborted: boolean;
  abortReason: string | null;
  /** The CLI could not be started: `ENOENT` (not found), `EACCES` (not executable), ... */
  spawnError: { code: string; message: string } | null;
  /** Process id of the CLI, when it started. */
  pid: number | null;
}

/** What execa's result says of the process itself: exit code or signal, output, and a failure to start it at all. */
function processOutcome(result: Result): Pick<ClaudeRun, 'exitCode' | 'signal' | 'stdout' | 'stderr' | 'spawnError'> {
  const code = (result as { code?: unknown }).code;
  const spawnFailed = result.failed && result.exitCode === undefined && result.signal === undefined && typeof code === 'string';
  return {
    exitCode: result.exitCode ?? null,
    signal: result.signal ?? null,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    spawnError: spawnFailed ? { code, message: String(result.originalMessage ?? result.shortMessage) } : null,
  };
}

/** A line splitter feeding `onLine`, whose faults never end the run: the result is still classified from the whole output. */
function guardedLines(onLine: ((line: string) => void) | undefined) {
  return lineSplitter((line) => {
    try {
      onLine?.(line);
    } catch {
      // Ignored: see above.
    }
  });
}

/**
 * Runs the CLI once and reports what happened; never throws for a failure of the CLI itself.
 *
 * The child is started `detached` (its own process group), so on timeout or abort the CLI and
 * everything it started (shells of its Bash tool, their children) are terminated together:
 * SIGTERM, then SIGKILL after `killGraceMs`. If the CLI exits but something it started keeps its
 * output open, that group is ended after 2 s and what the CLI printed is kept. The prompt goes to
 * standard input, which is then closed, so it never shows in the argument list and the CLI never
 * waits for more input (see references/cli-integration.md, "What spawn-agent runs").
 *
 * @example
 *   const run = await runClaude({ bin: 'claude', args: ['-p', '--output-format', 'json'], prompt, cwd, timeoutMs: 60_000 });
 */
export async function runClaude(options: ClaudeRunOptions): Promise<ClaudeRun> {
  const began = Date.now();
  const child = execa(options.bin, options.args, {
    cwd: options.cwd,
    env: options.env,
    input: options.prompt,
    shell: false,
    detached: true,
    reject: false,
    stripFinalNewline: false,
    maxBuffer: 256 * 1024 * 1024,
  });
  // Its identity now, while it surely is our child: later its pid may have been reused.
  const spawned = child.pid === undefined ? null : identityOf(child.pid);
  options.onSpawn?.(spawned);
  // Silence of standard output: the only sign of a stalled API call (references/cli-integration.md, "Streaming events").
  let lastOutput = Date.now();
  let silenceMs = 0;
  let stallTimer: NodeJS.Timeout | undefined;
  let ending: 'timeout' | 'abort' | 'linger' | 'stall' | null = null;
  let terminated: Promise<void> = Promise.resolve();
  const end = (why: 'timeout' | 'abort' | 'linger' | 'stall') => {
    // Even after the CLI exited, its group may live on (a child holding stdout open): end it too.
    if (ending || child.pid === undefined) return;
    ending = why;
    if (why === 'stall') silenceMs = Math.max(silenceMs, Date.now() - lastOutput);
    terminated = terminateProcessTree(spawned ?? child.pid, { graceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS, ownGroup: true }).then(
      () => {},
    );
  };
  const timer = setTimeout(() => end('timeout'), options.timeoutMs);
  const armStall = () => {
    clearTimeout(stallTimer);
    if (options.stallTimeoutMs !== undefined && !ending) stallTimer = setTimeout(() => end('stall'), options.stallTimeoutMs);
  };
  armStall();
  const lines = guardedLines(options.onLine);
  const decoder = new TextDecoder();
  child.stdout?.on('data', (chunk: Buffer | string) => {
    const now = Date.now();
    silenceMs = Math.max(silenceMs, now - lastOutput);
    lastOutput = now;
    armStall();
    lines.push(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
  });
  // The CLI exited but something it started still holds its stdout or stderr open: end that group
  // rather than wait for the timeout, and keep the result the CLI printed.
  let linger: NodeJS.Timeout | undefined;
  child.once('exit', () => {
    clearTimeout(stallTimer);
    linger = setTimeout(() => end('linger'), STDIO_LINGER_MS);
  });
  const onAbort = () => end('abort');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  // A detached child outlives us unless we end it: do so if this process exits first.
  const onExit = () => spawned !== null && signalOwnChild(spawned, 'SIGKILL');
  process.on('exit', onExit);
  try {
    const result = await child;
    await terminated;
    lines.push(decoder.decode());
    lines.end();
    // After a stall the silence is the one that ended the run, not that plus the kill's grace.
    if (ending !== 'stall') silenceMs = Math.max(silenceMs, Date.now() - lastOutput);
    return {
      ...processOutcome(result),
      durationMs: Date.now() - began,
      timedOut: ending === 'timeout',
      stalled: ending === 'stall',
      silenceMs,
      aborted: ending === 'abort',
      abortReason: ending === 'abort' ? errorMessage(options.signal?.reason ?? 'aborted') : null,
      pid: child.pid ?? null,
    };
  } finally {
    clearTimeout(timer);
    clearTimeout(stallTimer);
    clearTimeout(linger);
    options.signal?.removeEventListener('abort', onAbort);
    process.off('exit', onExit);
  }
}
