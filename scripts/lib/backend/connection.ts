// Connection strings of the BullMQ backend: parsing, the engine they name, and the redacted form that is the only one ever shown or stored.
import { usageError } from '../core/errors.ts';

/** Environment variable read when `--connection` is absent (keeps the secret out of `ps` and shell history). */
export const CONNECTION_ENV = 'DTO_BULLMQ_CONNECTION';

/** The data stores BullMQ 6 runs on (field notes "BullMQ 6": Redis >= 6.2 or PostgreSQL >= 13). */
export type Engine = 'postgres' | 'redis';

/** URL schemes accepted, and the engine each one selects. */
const SCHEMES: Record<string, Engine> = { 'postgres:': 'postgres', 'postgresql:': 'postgres', 'redis:': 'redis', 'rediss:': 'redis' };

/** A parsed connection string. `url` is a secret: never print it, log it or store it; show `redacted`. */
export interface BackendConnection {
  engine: Engine;
  /** The connection string as given (may hold a password). */
  url: string;
  /** `scheme://user:***@host:port/db`: no password, no query parameters (they may carry one, e.g. `?password=`). */
  redacted: string;
  /** The password (or Redis auth token) in `url`, if any, so error messages from the driver can be scrubbed of it. */
  secret: string | null;
}

/**
 * The shown form of a connection string: scheme, user, host, port and database; the password
 * replaced by `***` and the query string by `?***` (libpq accepts `?password=...`). A string that
 * does not parse as a URL is shown as `<unparsable connection string>`, never echoed.
 *
 * @example redactConnection('postgres://dto:s3cret@db.local:5432/jobs?sslmode=require') // 'postgres://dto:***@db.local:5432/jobs?***'
 */
export function redactConnection(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return '<unparsable connection string>';
  }
  const user = url.username ? `${url.username}${url.password ? ':***' : ''}@` : url.password ? ':***@' : '';
  const query = url.search ? '?***' : '';
  return `${url.protocol}//${user}${url.host}${url.pathname}${query}`;
}

/**
 * Parses `--connection` (or {@link CONNECTION_ENV}).
 *
 * @param raw - `postgres://`, `postgresql://`, `redis://` or `rediss://` URL.
 * @param source - how the value was given, for the message (default `--connection`).
 * @throws OrchestratorError usage (exit 2) when the value is empty, not a URL, has another scheme or
 *   no host; the message shows the redacted value only.
 */
export function parseConnection(raw: string, source = '--connection'): BackendConnection {
  const shown = redactConnection(raw);
  const example = 'e.g. postgres://user:password@127.0.0.1:5432/postgres or redis://127.0.0.1:6379';
  if (raw.trim() === '') throw usageError(`Expected ${source} to be a connection string (${example}), got "".`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError(`Expected ${source} to be a URL (${example}), got ${shown}.`);
  }
  const engine = Object.hasOwn(SCHEMES, url.protocol) ? SCHEMES[url.protocol] : undefined;
  if (engine === undefined) {
    throw usageError(
      `Expected ${source} to start with postgres://, postgresql://, redis:// or rediss:// (the stores BullMQ runs on), got ${shown}.`,
    );
  }
  if (url.hostname === '') throw usageError(`Expected ${source} to name a host (${example}), got ${shown}.`);
  const password = url.password ? decodeURIComponent(url.password) : null;
  return { engine, url: raw, redacted: shown, secret: password };
}

/**
 * The connection to use: `--connection` when given, else {@link CONNECTION_ENV}.
 * @returns the parsed connection, or null when neither is set.
 */
export function connectionFrom(flagValue: string | undefined, env: NodeJS.ProcessEnv = process.env): BackendConnection | null {
  if (flagValue !== undefined) return parseConnection(flagValue);
  const fromEnv = env[CONNECTION_ENV];
  if (fromEnv === undefined || fromEnv === '') return null;
  return parseConnection(fromEnv, `$${CONNECTION_ENV}`);
}

/**
 * {@link connectionFrom}, then {@link CONNECTION_ENV} removed from `env`: a secret is read once, and no
 * process started afterwards (agents, gates, git) inherits it. A process that needs it gets it explicitly.
 * @returns the parsed connection, or null when neither is set.
 */
export function takeConnection(flagValue: string | undefined, env: NodeJS.ProcessEnv = process.env): BackendConnection | null {
  const connection = connectionFrom(flagValue, env);
  delete env[CONNECTION_ENV];
  return connection;
}

/**
 * A driver's error message with the connection's secrets removed (the whole URL and its password,
 * raw and URL-encoded), so it can be printed.
 */
export function scrubSecrets(message: string, connection: BackendConnection): string {
  let text = message.split(connection.url).join(connection.redacted);
  if (connection.secret) {
    for (const form of new Set([connection.secret, encodeURIComponent(connection.secret)])) text = text.split(form).join('***');
  }
  return text;
}
