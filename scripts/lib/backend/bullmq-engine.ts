// BullMQ on PostgreSQL or Redis: the queue classes for a connection, the timings of stalled-job recovery, and the reachability check.
import {
  createPostgresBackend,
  Queue as RedisQueue,
  QueueEvents as RedisQueueEvents,
  Worker as RedisWorker,
  withBackend,
  type Processor,
  type Queue,
  type QueueEvents,
  type Worker,
} from 'bullmq';
import { Redis } from 'ioredis';
import { OrchestratorError, errorMessage } from '../core/errors.ts';
import { scrubSecrets, type BackendConnection } from './connection.ts';
import { bounded, SHUTDOWN_CALL_TIMEOUT_MS } from './server-calls.ts';

export { DEFAULT_QUEUE, QUEUE_NAME_PATTERN } from './backend-names.ts';

/**
 * Stalled-job recovery (BullMQ Worker options). A worker holds a lock on each job it runs and renews
 * it every `lockDurationMs / 2`; a host that dies stops renewing, and the next stalled check of any
 * live worker (every `stalledIntervalMs`) moves its jobs back to the queue for another worker. So a
 * dead host's task is started again within about `lockDurationMs + stalledIntervalMs` (16 s) plus a
 * pick-up; measured on loopback: 5.2 s with 4 s and 2 s (field notes "BullMQ 6"). A job stalled more
 * than `maxStalledCount` times fails (its host kept dying: something in the task kills hosts).
 */
export const STALL_TIMING = { lockDurationMs: 10_000, stalledIntervalMs: 6_000, maxStalledCount: 2 } as const;

/** Longest wait for the server to answer the reachability check (ms). */
export const CONNECT_TIMEOUT_MS = 10_000;

/** The queue classes bound to one engine. */
export interface EngineClasses {
  Queue: new (name: string, opts: { connection: unknown }) => Queue;
  QueueEvents: new (name: string, opts: { connection: unknown }) => QueueEvents;
  Worker: new (name: string, processor: Processor, opts: Record<string, unknown> & { connection: unknown }) => Worker;
}

/** An engine's queue classes and the `connection` option each instance gets. */
export interface Engine {
  classes: EngineClasses;
  /** The `connection` option for one more Queue, QueueEvents or Worker. */
  connection(): unknown;
  /** Closes what {@link Engine.connection} opened (Redis clients); call after the instances closed. */
  close(): Promise<void>;
  /** The last connection error a client reported (Redis retries quietly: this says why it got no answer), or null. */
  lastError(): unknown;
}

/**
 * BullMQ's classes for the connection's engine. PostgreSQL runs with `migrate: true` (without it a
 * worker retries its bootstrap in a hot loop, field notes "BullMQ 6") and a connect timeout. Redis
 * gets one ioredis client per instance, built from the URL (BullMQ 6 cannot load ioredis itself
 * from native ESM) with `maxRetriesPerRequest: null`, as BullMQ requires for workers.
 */
export function engineFor(connection: BackendConnection): Engine {
  if (connection.engine === 'postgres') {
    return {
      classes: withBackend(createPostgresBackend) as unknown as EngineClasses,
      connection: () => ({ connectionString: connection.url, migrate: true, connectionTimeoutMillis: CONNECT_TIMEOUT_MS }),
      close: async () => {},
      lastError: () => null,
    };
  }
  const clients: Redis[] = [];
  let lastError: unknown = null;
  return {
    classes: { Queue: RedisQueue, QueueEvents: RedisQueueEvents, Worker: RedisWorker },
    connection: () => {
      const client = new Redis(connection.url, { maxRetriesPerRequest: null, connectTimeout: CONNECT_TIMEOUT_MS });
      client.on('error', (error) => {
        lastError = error; // Reported by the BullMQ call that needed the server (waitUntilReady first of all).
      });
      clients.push(client);
      return client;
    },
    close: async () => {
      // Bounded: quit waits for a server that may be gone; then the socket is simply dropped.
      await Promise.all(
        clients
          .splice(0)
          .map((client) => bounded(() => client.quit(), undefined, SHUTDOWN_CALL_TIMEOUT_MS).catch(() => client.disconnect())),
      );
    },
    lastError: () => lastError,
  };
}

/**
 * The error of an unreachable or unusable server: names the backend and the redacted connection,
 * never the password. Exit 2, as for any set-up error found before anything is registered.
 */
export function unreachableError(connection: BackendConnection, queueName: string, cause: unknown): OrchestratorError {
  return new OrchestratorError(
    'usage',
    `Cannot reach the BullMQ backend (${connection.engine}) at ${connection.redacted}, queue ${queueName}: ` +
      `${scrubSecrets(errorMessage(cause), connection).replace(/[.\s]+$/, '')}. Start the server (see references/distributed.md) or fix --connection; nothing was registered.`,
  );
}

/**
 * Opens the queue and waits until the server answered (PostgreSQL: migrations applied), at most
 * `timeoutMs`. On failure the queue is closed and an {@link unreachableError} thrown.
 */
export async function openQueue(
  connection: BackendConnection,
  queueName: string,
  timeoutMs = CONNECT_TIMEOUT_MS,
): Promise<{ queue: Queue; engine: Engine }> {
  const engine = engineFor(connection);
  const queue = new engine.classes.Queue(queueName, { connection: engine.connection() });
  queue.on('error', () => {
    // Reported by waitUntilReady below, or by the next call that needs the server.
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      queue.waitUntilReady(),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
    return { queue, engine };
  } catch (error) {
    await queue.close().catch(() => undefined);
    const cause = engine.lastError() ?? error;
    await engine.close();
    throw unreachableError(connection, queueName, cause);
  } finally {
    clearTimeout(timer);
  }
}
