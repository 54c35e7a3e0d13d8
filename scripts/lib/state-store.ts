// Reads the session state without the lock, and changes it only under the lock by write-temp-then-rename.
import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { OrchestratorError } from './errors.ts';
import { appendEvents, type EventType, type SessionEvent } from './events.ts';
import { withLock } from './lock.ts';
import { newSessionId, validateSessionId } from './names.ts';
import { formatIssues, SessionStateSchema, STATE_VERSION, type SessionState } from './schema.ts';
import { archivePaths, type SessionPaths } from './session-paths.ts';
import { parseFastYaml, stringifyFastYaml } from './state-codec.ts';

type YamlModule = typeof import('yaml');
let yamlModule: Promise<YamlModule> | null = null;

/** The yaml package, loaded only for text outside the fast codec's subset (a hand-edited file). */
function loadYaml(): Promise<YamlModule> {
  yamlModule ??= import('yaml').then((mod) => ((mod as { default?: YamlModule }).default ?? mod) as YamlModule);
  return yamlModule;
}

/**
 * The last state text this process read or wrote, per state file, with its validated state as
 * JSON. Every waiting agent re-reads the file after each change, often to find it as it was (the
 * wake-up came from events.jsonl or the poll timer): then neither parsing nor validation is
 * repeated, and JSON.parse gives the caller its own copy.
 */
const lastSeen = new Map<string, { text: string; json: string }>();

function remember(statePath: string, text: string, json: string): void {
  lastSeen.delete(statePath);
  lastSeen.set(statePath, { text, json });
  // A process follows one session folder, tests many: keep the few most recent.
  if (lastSeen.size > 8) lastSeen.delete(lastSeen.keys().next().value!);
}

/**
 * Parses and validates the text of a state file; the state is the caller's to change.
 * @returns the state and its JSON (zod's output has a fixed key order, so equal states have equal JSON).
 */
async function parseStateWithJson(text: string, statePath: string): Promise<{ state: SessionState; json: string }> {
  const seen = lastSeen.get(statePath);
  if (seen && seen.text === text) return { state: JSON.parse(seen.json) as SessionState, json: seen.json };
  let data = parseFastYaml(text);
  if (data === undefined) {
    const YAML = await loadYaml();
    try {
      data = YAML.parse(text);
    } catch (error) {
      throw corruptState(statePath, `it is not valid YAML (${(error as Error).message.split('\n')[0]})`, error);
    }
  }
  const parsed = SessionStateSchema.safeParse(data);
  if (!parsed.success) {
    throw corruptState(statePath, `it does not match the state schema v${STATE_VERSION} (${formatIssues(parsed.error)})`);
  }
  const json = JSON.stringify(parsed.data);
  remember(statePath, text, json);
  return { state: parsed.data, json };
}

/** Parses and validates the text of a state file; the result is the caller's to change. */
async function parseState(text: string, statePath: string): Promise<SessionState> {
  return (await parseStateWithJson(text, statePath)).state;
}

/** The text of a state file: block YAML (the fast codec's subset when it can, else the yaml package's). */
async function stringifyState(state: SessionState): Promise<string> {
  return stringifyFastYaml(state) ?? (await loadYaml()).stringify(state);
}

/**
 * Parses and validates the text of a state file, as {@link readState} does.
 * @throws OrchestratorError `corrupt_state`.
 */
export function decodeState(text: string, statePath: string): Promise<SessionState> {
  return parseState(text, statePath);
}

/** The text {@link updateState} writes for a state. */
export function encodeState(state: SessionState): Promise<string> {
  return stringifyState(state);
}

function corruptState(statePath: string, why: string, cause?: unknown): OrchestratorError {
  return new OrchestratorError(
    'corrupt_state',
    `The session state file ${statePath} cannot be used: ${why}. It was left untouched. ` +
      `To recover, fix it by hand, or move it aside (mv "${statePath}" "${statePath}.broken") and start again.`,
    { cause },
  );
}

/**
 * Reads `latest.yaml` without taking the lock. Writers replace the file by rename, so a reader
 * sees either the old or the new state, never half of one.
 *
 * @returns the validated state, or `null` when there is no session yet.
 * @throws OrchestratorError `corrupt_state` (exit 2) when the file does not parse or validate.
 */
export async function readState(paths: SessionPaths): Promise<SessionState | null> {
  let text: string;
  try {
    text = await readFile(paths.statePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return parseState(text, paths.statePath);
}

/**
 * Like {@link readState}, but a missing session is an error.
 * @throws OrchestratorError `no_session` (exit 2) saying how to start one.
 */
export async function requireState(paths: SessionPaths): Promise<SessionState> {
  const state = await readState(paths);
  if (!state) {
    throw new OrchestratorError(
      'no_session',
      `No session found: ${paths.statePath} does not exist. Start agents first (spawn-agent-mock, spawn-agent or orchestrate), ` +
        'run this from the project directory they ran in, or pass the same --session_dir.',
    );
  }
  return state;
}

/** Creates the state of an empty session. */
export function createSessionState(options: { sessionId?: string; maxWorkers?: number; now?: Date } = {}): SessionState {
  const now = (options.now ?? new Date()).toISOString();
  return SessionStateSchema.parse({
    version: STATE_VERSION,
    session_id: options.sessionId ? validateSessionId(options.sessionId) : newSessionId(options.now),
    created_at: now,
    updated_at: now,
    max_workers: options.maxWorkers ?? 5,
    tasks: {},
  });
}

/** What a change may do inside {@link updateState}. */
export interface StateTransaction {
  /** The state to change in place, or `null` when there is no session; assign a new one to create it. */
  state: SessionState | null;
  /** Moves the current session to `<session_id>.yaml` (and its events) before the new state is written. */
  archiveCurrent(): void;
  /** Records an event, appended to `events.jsonl` after the state is written. */
  emit(type: EventType, fields?: Omit<SessionEvent, 'ts' | 'session_id' | 'type'>): void;
  /** The time of this change (one clock read for every field it sets). */
  readonly now: Date;
}

/**
 * Changes the state under the lock: take the lock, read and validate, let `change` edit the state,
 * write a temporary file, rename it over `latest.yaml`, append the events, release.
 *
 * Nothing is written when the state did not change. A state file that does not validate is never
 * overwritten: the error propagates and the file stays byte-for-byte as it was.
 *
 * @param change - edits `tx.state` in place (or replaces it) and returns a value; it may throw to abort.
 * @returns what `change` returned.
 * @throws OrchestratorError `corrupt_state`, `lock_failed`, or whatever `change` throws.
 */
export async function updateState<T>(paths: SessionPaths, change: (tx: StateTransaction) => T): Promise<T> {
  await mkdir(paths.dir, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    try {
      return await withLock(paths.lockPath, (isCompromised) => applyChange(paths, change, isCompromised));
    } catch (error) {
      if (error instanceof CompromisedLock && attempt < 3) continue;
      throw error;
    }
  }
}

class CompromisedLock extends Error {}

async function applyChange<T>(
  paths: SessionPaths,
  change: (tx: StateTransaction) => T,
  isCompromised: () => boolean,
): Promise<T> {
  let before: string | null = null;
  try {
    before = await readFile(paths.statePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const read = before === null ? null : await parseStateWithJson(before, paths.statePath);
  const current = read?.state ?? null;
  // Compared after the change to skip writing when nothing changed.
  const currentJson = read?.json ?? null;
  const events: Array<Omit<SessionEvent, 'session_id'>> = [];
  let archive = false;
  const now = new Date();
  const tx: StateTransaction = {
    state: current,
    archiveCurrent: () => {
      archive = true;
    },
    emit: (type, fields = {}) => {
      events.push({ ts: now.toISOString(), type, ...fields });
    },
    now,
  };
  const value = change(tx);
  const next = tx.state;
  if (next === null) return value;
  const validated = SessionStateSchema.parse(next);
  const unchanged = !archive && currentJson !== null && JSON.stringify(validated) === currentJson;
  if (unchanged && events.length === 0) return value;
  validated.updated_at = now.toISOString();
  const json = JSON.stringify(validated);

  const text = await stringifyState(validated);
  const tmp = `${paths.statePath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, text, 'utf8');
  if (isCompromised()) {
    await unlink(tmp).catch(() => {});
    throw new CompromisedLock('lock compromised before commit');
  }
  if (archive && current !== null) {
    const target = archivePaths(paths, current.session_id);
    if (await exists(target.state)) {
      await unlink(tmp).catch(() => {});
      throw new OrchestratorError(
        'session_conflict',
        `Cannot archive session ${current.session_id}: ${target.state} already exists. Move it aside and try again.`,
      );
    }
    await rename(paths.statePath, target.state);
    if (await exists(paths.eventsPath)) await rename(paths.eventsPath, target.events);
  }
  await rename(tmp, paths.statePath);
  remember(paths.statePath, text, json);
  await appendEvents(
    paths.eventsPath,
    events.map((event) => ({ ...event, session_id: validated.session_id }) as SessionEvent),
  );
  return value;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
