// Calls to the BullMQ server that cannot hang a run: each bounded in time and by the run's abort signal, and outages told once and given up on after a limit.
import { errorMessage } from '../core/errors.ts';
import { scrubSecrets, type BackendConnection } from './connection.ts';

/**
 * Longest wait for one call to the server (ms). A Redis client made for BullMQ queues commands while
 * the server is away (`maxRetriesPerRequest: null`) and never fails them: without a bound, a run
 * whose server went away waited forever, deaf to SIGTERM.
 */
export const SERVER_CALL_TIMEOUT_MS = 5000;

/**
 * Longest wait for one call made while the run stops (cancelling a job, closing connections) (ms):
 * short, so a run whose server is away still ends within the few seconds a SIGTERM allows.
 */
export const SHUTDOWN_CALL_TIMEOUT_MS = 1000;

/**
 * How long tasks wait for a server that does not answer before they fail (ms): 10 minutes, long
 * enough for a restart or a failover, short enough that a run does not hang for its whole timeout.
 */
export const OUTAGE_LIMIT_MS = 600_000;

/** A call that got no answer within its bound. */
export class ServerTimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms / 1000} s`);
    this.name = 'ServerTimeoutError';
  }
}

/**
 * Whether an error says the server could not be reached or did not answer (a timeout, a refused or
 * dropped connection), as opposed to a refusal by a server that answered (bad data, a version mismatch).
 */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof ServerTimeoutError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^(ECONN|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|57P0)/.test(code)) return true;
  return /connection is closed|connect(ion)? (refused|timeout|terminated)|ECONNREFUSED|ECONNRESET|socket hang up/i.test(
    errorMessage(error),
  );
}

/**
 * Runs `call`, giving up after `ms` ({@link ServerTimeoutError}) or when `signal` aborts (its reason).
 * The call itself may still complete later (a queued Redis command is sent on reconnection): use it
 * only for reads, or for writes that are safe to repeat (adding a job under a fixed id).
 */
export async function bounded<T>(call: () => Promise<T>, signal?: AbortSignal, ms = SERVER_CALL_TIMEOUT_MS): Promise<T> {
  signal?.throwIfAborted();
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      call(),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new ServerTimeoutError(ms)), ms);
        onAbort = () => reject(signal!.reason instanceof Error ? signal!.reason : new Error(String(signal!.reason)));
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The state of the server as the tasks of one run see it, shared by all of them so an outage is told
 * once (not once per task) and its length measured from the first failed call: `failed` after a call
 * that threw or timed out, `answered` after one that succeeded. The error text is scrubbed of the
 * connection's password.
 */
export class ServerOutage {
  private since: number | null = null;
  private lastError = '';

  constructor(
    private readonly connection: BackendConnection,
    private readonly log: (line: string) => void,
    readonly limitMs = OUTAGE_LIMIT_MS,
    private readonly onRecovered: () => void = () => {},
  ) {}

  /** A call failed: the first failure of an outage is told (what, where, how long tasks wait). */
  failed(error: unknown, now = Date.now()): void {
    this.lastError = scrubSecrets(errorMessage(error), this.connection).replace(/[.\s]+$/, '');
    if (this.since !== null) return;
    this.since = now;
    this.log(
      `⚠️  The BullMQ server at ${this.connection.redacted} does not answer (${this.lastError}): ` +
        `running tasks wait for it, at most ${Math.round(this.limitMs / 1000)} s; jobs already on workers go on.`,
    );
  }

  /** A call succeeded: an outage, if there was one, is over (told, with its length). */
  answered(now = Date.now()): void {
    if (this.since === null) return;
    this.log(`The BullMQ server at ${this.connection.redacted} answers again after ${Math.round((now - this.since) / 1000)} s.`);
    this.since = null;
    this.onRecovered();
  }

  /** Why a task gives up now (the outage outlasted the limit), or null while it may wait on. */
  exceeded(now = Date.now()): string | null {
    if (this.since === null || now - this.since < this.limitMs) return null;
    return (
      `the BullMQ server at ${this.connection.redacted} has not answered for ${Math.round((now - this.since) / 1000)} s ` +
      `(last error: ${this.lastError}); the job may still run on its worker, its result cannot reach this run`
    );
  }
}
