// One command run within bounds: no shell of its own, a process group of its own, a time limit, and only the tail of its output kept.
import { StringDecoder } from 'node:string_decoder';
import { identityOf } from './identity.ts';
import { terminateProcessTree } from './tree.ts';

/** Options of {@link runBounded}. */
export interface BoundedRunOptions {
  /** The program (looked up on PATH) and its arguments, passed as an array: never through a shell. */
  file: string;
  args: readonly string[];
  cwd: string;
  /** Extra environment, on top of this process's. */
  env?: Record<string, string>;
  /** The time limit (ms): the whole tree is stopped and `timedOut` set. */
  timeoutMs: number;
  /** Wait between SIGTERM and SIGKILL when the tree is stopped (ms). */
  graceMs: number;
  /** Characters of output kept: the last ones of stdout and stderr interleaved, and as many of stderr alone. */
  tailChars: number;
  /** Aborting stops the tree (the run's answer no longer matters). */
  signal?: AbortSignal;
}

/** What {@link runBounded} saw. */
export interface BoundedRun {
  /** The exit code; null when a signal ended it or it never started. */
  exitCode: number | null;
  timedOut: boolean;
  /** The last `tailChars` characters of stdout and stderr, interleaved in the order they were read. */
  tail: string;
  /** The last `tailChars` characters of stderr alone. */
  stderrTail: string;
  /** Output older than `tail` was dropped. */
  dropped: boolean;
  /** Why it could not start (ENOENT, EACCES, ...), or null. */
  startError: string | null;
}

/** Keeps the last `chars` characters of a stream (UTF-8 decoded across chunks). */
function tailKeeper(chars: number) {
  const decoder = new StringDecoder('utf8');
  const kept = { text: '', dropped: false };
  return {
    add: (chunk: Buffer) => {
      kept.text += decoder.write(chunk);
      if (kept.text.length > chars) {
        kept.text = kept.text.slice(-chars);
        kept.dropped = true;
      }
    },
    end: () => {
      kept.text = (kept.text + decoder.end()).slice(-chars);
      return kept;
    },
  };
}

/**
 * Runs a command in a process group of its own (detached), standard input closed, keeping only the tail of its output,
 * so one that prints hundreds of MB costs no memory. At `timeoutMs`, on an abort, and as soon as the program exits, the
 * group and every descendant still running are stopped (process/tree.ts `terminateProcessTree`, with the identity read
 * when it started: SIGTERM, SIGKILL after `graceMs`), so a child it left running can neither hold its output open nor
 * live on. Used by the merge gate (`--merge_check`) and by a task's check (`--check`). Never throws for the command's
 * own failure.
 */
export async function runBounded(options: BoundedRunOptions): Promise<BoundedRun> {
  const { execa } = await import('execa');
  const child = execa(options.file, [...options.args], {
    cwd: options.cwd,
    reject: false,
    all: true,
    buffer: false,
    detached: true,
    stdin: 'ignore',
    ...(options.env ? { env: options.env } : {}),
  });
  // Its identity now, while it surely is our unreaped child: a later signal goes to its group only if it is ours.
  const spawned = child.pid === undefined ? null : identityOf(child.pid);
  const all = tailKeeper(options.tailChars);
  const stderr = tailKeeper(options.tailChars);
  child.all?.on('data', all.add);
  child.stderr?.on('data', stderr.add);
  let timedOut = false;
  // Once: the time limit's SIGTERM makes the program exit, which would stop the tree a second time.
  let stopping: Promise<unknown> | null = null;
  const stop = () =>
    (stopping ??= spawned === null ? Promise.resolve() : terminateProcessTree(spawned, { graceMs: options.graceMs, ownGroup: true }));
  const timer = setTimeout(() => {
    timedOut = true;
    void stop();
  }, options.timeoutMs);
  child.once('exit', () => void stop());
  const onAbort = () => void stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  try {
    const result = await child;
    const { text: tail, dropped } = all.end();
    const notStarted = result.exitCode === undefined && result.signal === undefined;
    return {
      exitCode: result.exitCode ?? null,
      timedOut,
      tail,
      stderrTail: stderr.end().text,
      dropped,
      startError: notStarted ? String(result.originalMessage ?? result.shortMessage) : null,
    };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}
