// Signed launches: a recorded launch that runs a program of the user's (`--check`) is replayed from the state only with
// an HMAC made with this user's own launch key, which a state file from elsewhere (a cloned repository) cannot carry.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import envPaths from 'env-paths';
import type { AgentLaunch } from './launch-types.ts';

/** Names another launch key file (tests, or a user who keeps it elsewhere). */
export const LAUNCH_KEY_ENV = 'DTO_LAUNCH_KEY_FILE';

/** Bytes of a launch key (256 bits: the HMAC-SHA256 key length of RFC 2104's recommendation, the hash's output size). */
const KEY_BYTES = 32;

/**
 * Where this user's launch key is kept: `$DTO_LAUNCH_KEY_FILE`, else `launch.key` in the user's data folder for this
 * skill (env-paths: `$XDG_DATA_HOME` or `~/.local/share` on Linux, `~/Library/Application Support` on macOS,
 * `%LOCALAPPDATA%` on Windows), never inside a project.
 */
export function launchKeyFile(env: NodeJS.ProcessEnv = process.env): string {
  const named = env[LAUNCH_KEY_ENV];
  if (named) return path.resolve(named);
  return path.join(envPaths('distributed-task-orchestrator', { suffix: '' }).data, 'launch.key');
}

/**
 * This user's launch key, created on first use (random, mode 0600 in a folder of mode 0700; two first uses at once read
 * the one that was written first).
 * @returns the key, or null when it can be neither read nor created (a read-only home): launches are then left unsigned.
 */
function launchKey(env: NodeJS.ProcessEnv): Buffer | null {
  const file = launchKeyFile(env);
  const read = (): Buffer | null => {
    try {
      const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
      return key.length === KEY_BYTES ? key : null;
    } catch {
      return null;
    }
  };
  const existing = read();
  if (existing) return existing;
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${randomBytes(KEY_BYTES).toString('hex')}\n`, { flag: 'wx', mode: 0o600 });
  } catch {
    // Written by another process meanwhile (EEXIST), or not writable: whatever is there now decides.
  }
  return read();
}

/** The signed text of a launch: its script, flags and folder, in an unambiguous encoding. */
function signedText(launch: AgentLaunch): string {
  return JSON.stringify(['dto-launch-v1', launch.script, launch.args, launch.cwd]);
}

/**
 * Signs a launch with this user's key: HMAC-SHA256 (RFC 2104) over its script, flags and folder, hex.
 * @returns the signature, or null when no key can be had.
 */
export function signLaunch(launch: AgentLaunch, env: NodeJS.ProcessEnv = process.env): string | null {
  const key = launchKey(env);
  return key && createHmac('sha256', key).update(signedText(launch)).digest('hex');
}

/** Whether `launch.signature` is this user's signature of it (compared in constant time). */
export function launchSignatureValid(launch: AgentLaunch, env: NodeJS.ProcessEnv = process.env): boolean {
  if (typeof launch.signature !== 'string' || !/^[0-9a-f]{64}$/.test(launch.signature)) return false;
  const expected = signLaunch({ ...launch, signature: undefined }, env);
  return expected !== null && timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(launch.signature, 'hex'));
}
