// The state file's text: decoded and encoded with the fast codec where it can, else with the yaml package and the zod schema (loaded only then), and a corrupt file described.
import { OrchestratorError } from '../core/errors.ts';
import { parseStateJson, STATE_VERSION, type SessionState } from './model.ts';
import { checkCanonicalState } from './state-check.ts';
import { parseFastYaml, stringifyFastYaml } from './state-codec.ts';

type SchemaModule = typeof import('./schema.ts');
let schemaModule: Promise<SchemaModule> | null = null;

/**
 * The zod schema of the state, loaded only for a state the fast check does not take (a hand edit,
 * an older layout, a value out of range): see state-check.ts.
 */
function loadSchema(): Promise<SchemaModule> {
  schemaModule ??= import('./schema.ts');
  return schemaModule;
}

/**
 * Validates a state read from a file or about to be written: the fast check when it is in canonical
 * form, else the zod schema (which fills defaults and reads older layouts).
 * @returns the valid state (a new object when the schema read it), or the schema's issues.
 */
export async function validateState(data: unknown): Promise<{ state: SessionState } | { issues: string }> {
  const fast = checkCanonicalState(data);
  if (fast) return { state: fast };
  const { SessionStateSchema, formatIssues } = await loadSchema();
  const parsed = SessionStateSchema.safeParse(data);
  return parsed.success ? { state: parsed.data } : { issues: formatIssues(parsed.error) };
}

type YamlModule = typeof import('yaml');
let yamlModule: Promise<YamlModule> | null = null;

/** The yaml package, loaded only for text outside the fast codec's subset (a hand-edited file). */
function loadYaml(): Promise<YamlModule> {
  yamlModule ??= import('yaml').then((mod) => (mod as { default?: YamlModule }).default ?? mod);
  return yamlModule;
}

/**
 * The last state text this process read or wrote, per state file, with its validated state as
 * JSON. Every waiting agent re-reads the file after each change, often to find it as it was (the
 * wake-up came from events.jsonl or the poll timer): then neither parsing nor validation is
 * repeated, and JSON.parse gives the caller its own copy.
 */
const lastSeen = new Map<string, { text: string; json: string }>();

export function remember(statePath: string, text: string, json: string): void {
  lastSeen.delete(statePath);
  lastSeen.set(statePath, { text, json });
  // A process follows one session folder, tests many: keep the few most recent.
  if (lastSeen.size > 8) lastSeen.delete(lastSeen.keys().next().value!);
}

/**
 * Parses and validates the text of a state file; the state is the caller's to change.
 * @returns the state and its JSON (zod's output has a fixed key order, so equal states have equal JSON).
 */
export async function parseStateWithJson(text: string, statePath: string): Promise<{ state: SessionState; json: string }> {
  const seen = lastSeen.get(statePath);
  if (seen && seen.text === text) return { state: parseStateJson(seen.json), json: seen.json };
  let data = parseFastYaml(text);
  if (data === undefined) {
    const YAML = await loadYaml();
    try {
      data = YAML.parse(text);
    } catch (error) {
      throw corruptState(statePath, `it is not valid YAML (${(error as Error).message.split('\n')[0]})`, error);
    }
  }
  const checked = await validateState(data);
  if ('issues' in checked) {
    throw corruptState(statePath, `it does not match the state schema v${STATE_VERSION} (${checked.issues})`);
  }
  const json = JSON.stringify(checked.state);
  remember(statePath, text, json);
  return { state: checked.state, json };
}

/** Parses and validates the text of a state file; the result is the caller's to change. */
export async function parseState(text: string, statePath: string): Promise<SessionState> {
  return (await parseStateWithJson(text, statePath)).state;
}

/** The text of a state file: block YAML (the fast codec's subset when it can, else the yaml package's). */
export async function stringifyState(state: SessionState): Promise<string> {
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

export function corruptState(statePath: string, why: string, cause?: unknown): OrchestratorError {
  return new OrchestratorError(
    'corrupt_state',
    `The session state file ${statePath} cannot be used: ${why}. It was left untouched. ` +
      `To recover, fix it by hand, or move it aside (mv "${statePath}" "${statePath}.broken") and start again.`,
    { cause },
  );
}
