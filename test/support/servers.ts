// Test helpers: a throwaway PostgreSQL server on loopback in a temporary folder (initdb, random free port, its own socket folder).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Set to 1 to skip the tests that need a server binary (they fail with a clear message otherwise, never skip silently). */
export const SKIP_SERVER_TESTS = process.env.DTO_SKIP_SERVER_TESTS === '1';

/**
 * Whether a missing server binary fails the tests that need it: in CI (`.ci/run` sets
 * DTO_REQUIRE_SERVERS=1 after installing PostgreSQL and Redis from Debian packages; `CI` set too).
 * Elsewhere (`npm test` on a fresh machine, as the README's second set-up command) such tests are
 * skipped with a warning naming what to install, like the browser check without chromium.
 */
export const SERVERS_REQUIRED = process.env.DTO_REQUIRE_SERVERS === '1' || Boolean(process.env.CI);

/**
 * Why the tests needing `kind` skip, or null when they run (the binary exists, or it is required:
 * then `startPostgres`/`startRedis` fail with what to install). The reason is printed once.
 */
export function serverSkipReason(kind: 'postgres' | 'redis'): string | null {
  if (SKIP_SERVER_TESTS) return 'DTO_SKIP_SERVER_TESTS=1';
  if (SERVERS_REQUIRED) return null;
  const found = kind === 'postgres' ? findPostgresBin() : findRedisServer();
  if (found) return null;
  const why =
    kind === 'postgres'
      ? 'SKIPPED the BullMQ-on-PostgreSQL tests: no initdb/postgres found. Install them with `apt-get install -y --no-install-recommends postgresql`, as .ci/run does (where they are required).'
      : 'SKIPPED the BullMQ-on-Redis tests: no redis-server found. Install it with `apt-get install -y --no-install-recommends redis-server`, as .ci/run does (where it is required).';
  console.warn(why);
  return why;
}

/** A running throwaway PostgreSQL. */
export interface PostgresServer {
  /** `postgres://dto:<password>@127.0.0.1:<port>/postgres` (trust auth: the password is there to test its redaction). */
  url: string;
  password: string;
  port: number;
  dir: string;
  /** Stops the server (fast shutdown, then SIGKILL) and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** The folder holding `initdb` and `postgres`: PATH first, then the newest /usr/lib/postgresql/<version>/bin. */
export function findPostgresBin(): string | null {
  const onPath = pathDirHolding('initdb', 'postgres');
  if (onPath) return onPath;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const dir = path.join(root, version, 'bin');
    if (existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres'))) return dir;
  }
  return null;
}

/** A free TCP port on 127.0.0.1 (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A port nothing listens on (for the unreachable-server case). */
export async function closedPort(): Promise<number> {
  return freePort();
}

/** PostgreSQL refuses to run as root: the user to run it as, with `setpriv` (which execs in place, so the pid is the server's). */
function runAs(): { uid: number; gid: number; name: string } | null {
  if (process.getuid?.() !== 0) return null;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      return { uid, gid, name };
    } catch {
      // Try the next one.
    }
  }
  throw new Error('running as root and neither a "postgres" nor a "nobody" user exists to run PostgreSQL as');
}

/**
 * Starts PostgreSQL on 127.0.0.1 and a random free port, with its data and socket in a new temporary
 * folder, fsync off (a test server), and waits until it accepts connections.
 * @throws Error with what to install when `initdb`/`postgres` are missing (set DTO_SKIP_SERVER_TESTS=1 to skip instead).
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = findPostgresBin();
  if (!bin) {
    throw new Error(
      'PostgreSQL is not installed: the BullMQ backend tests need `initdb` and `postgres` (on PATH or in /usr/lib/postgresql/<version>/bin). ' +
        'Install it (Debian: apt-get install -y --no-install-recommends postgresql; .ci/run does this), or set DTO_SKIP_SERVER_TESTS=1 to skip these tests.',
    );
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dto-pg-'));
  const user = runAs();
  if (user) chownSync(dir, user.uid, user.gid);
  const prefix = user ? ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--'] : [];
  const run = (exe: string, args: string[]) => [...prefix, path.join(bin, exe), ...args];
  const data = path.join(dir, 'data');
  const init = run('initdb', ['-D', data, '-U', 'dto', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  execFileSync(init[0]!, init.slice(1), { stdio: 'pipe', cwd: dir });
  const port = await freePort();
  const args = run('postgres', [
    '-D',
    data,
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-k',
    dir,
    '-F',
    '-c',
    'max_connections=200',
    '-c',
    'shared_buffers=16MB',
  ]);
  const child: ChildProcess = spawn(args[0]!, args.slice(1), { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  const password = 'pw-Secret-42';
  const url = `postgres://dto:${password}@127.0.0.1:${port}/postgres`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT'); // Fast shutdown.
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await Promise.race([exited, sleep(2000)]);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready once the server says so on stderr (its log goes there): no client library needed.
  const deadline = Date.now() + 30_000;
  while (!stderr.includes('database system is ready to accept connections')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const reason = child.exitCode !== null ? `exited at start (code ${child.exitCode})` : 'did not get ready within 30 s';
      await stop();
      throw new Error(`PostgreSQL ${reason}: ${stderr}`);
    }
    await sleep(50);
  }
  return { url, password, port, dir, stop };
}

/** A running throwaway Redis. */
export interface RedisServer {
  /** `redis://:<password>@127.0.0.1:<port>/0` (the server requires the password). */
  url: string;
  password: string;
  port: number;
  /** Stops the server and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** `redis-server` on PATH, or null. */
export function findRedisServer(): string | null {
  const dir = pathDirHolding('redis-server');
  return dir ? path.join(dir, 'redis-server') : null;
}

/** The first folder on PATH that holds every one of `programs`, or null. */
function pathDirHolding(...programs: string[]): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && programs.every((program) => existsSync(path.join(dir, program)))) return dir;
  }
  return null;
}

/**
 * Starts Redis on 127.0.0.1 and a random free port with a password, no persistence, in a new
 * temporary folder, and waits until it accepts connections. `options.port`: that port instead (a restart
 * of a stopped server: the same URL, none of its data).
 * @throws Error with what to install when `redis-server` is missing (set DTO_SKIP_SERVER_TESTS=1 to skip instead).
 */
export async function startRedis(options: { port?: number } = {}): Promise<RedisServer> {
  const bin = findRedisServer();
  if (!bin) {
    throw new Error(
      'Redis is not installed: the BullMQ-on-Redis test needs `redis-server` on PATH. ' +
        'Install it (Debian: apt-get install -y --no-install-recommends redis-server; .ci/run does this), or set DTO_SKIP_SERVER_TESTS=1 to skip these tests.',
    );
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dto-redis-'));
  const port = options.port ?? (await freePort());
  const password = 'redis-Secret-7';
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--requirepass', password];
  const child: ChildProcess = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 20_000) output = output.slice(-10_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  while (!output.includes('Ready to accept connections')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(
        `Redis ${child.exitCode !== null ? `exited at start (code ${child.exitCode})` : 'did not get ready within 30 s'}: ${output}`,
      );
    }
    await sleep(50);
  }
  return { url: `redis://:${password}@127.0.0.1:${port}/0`, password, port, stop };
}
