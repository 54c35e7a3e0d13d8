// One run of the `claude` CLI: prompt on standard input (then closed), no shell, a timeout that ends the whole process tree.
import { execa } from 'execa';
import { errorMessage } from './errors.ts';
import { DEFAULT_KILL_GRACE_MS, terminateProcessTree } from './process-tree.ts';
import { identityOf } from './process-identity.ts';
import { signalOwnChild } from './process-util.ts';

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
  /** `signal` was aborted and the tree was terminated; `abortReason` says why. */
  aborted: boolean;
  abortReason: string | null;
  /** The CLI could not be started: `ENOENT` (not found), `EACCES` (not executable), ... */
  spawnError: { code: string; message: string } | null;
  /** Process id of the CLI, when it started. */
  pid: number | null;
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
  let ending: 'timeout' | 'abort' | 'linger' | null = null;
  let terminated: Promise<void> = Promise.resolve();
  const end = (why: 'timeout' | 'abort' | 'linger') => {
    // Even after the CLI exited, its group may live on (a child holding stdout open): end it too.
    if (ending || child.pid === undefined) return;
    ending = why;
    terminated = terminateProcessTree(spawned ?? child.pid, { graceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS, ownGroup: true }).then(() => {});
  };
  const timer = setTimeout(() => end('timeout'), options.timeoutMs);
  // The CLI exited but something it started still holds its stdout or stderr open: end that group
  // rather than wait for the timeout, and keep the result the CLI printed.
  let linger: NodeJS.Timeout | undefined;
  child.once('exit', () => {
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
    const code = (result as { code?: unknown }).code;
    const spawnFailed = result.failed && result.exitCode === undefined && result.signal === undefined && typeof code === 'string';
    return {
      exitCode: result.exitCode ?? null,
      signal: result.signal ?? null,
      stdout: String(result.stdout ?? ''),
      stderr: String(result.stderr ?? ''),
      durationMs: Date.now() - began,
      timedOut: ending === 'timeout',
      aborted: ending === 'abort',
      abortReason: ending === 'abort' ? errorMessage(options.signal?.reason ?? 'aborted') : null,
      spawnError: spawnFailed ? { code: code as string, message: String(result.originalMessage ?? result.shortMessage) } : null,
      pid: child.pid ?? null,
    };
  } finally {
    clearTimeout(timer);
    clearTimeout(linger);
    options.signal?.removeEventListener('abort', onAbort);
    process.off('exit', onExit);
  }
}
