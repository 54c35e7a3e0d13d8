// Validation of task names and session ids, and the paths built from them, before they touch the file system.
import path from 'node:path';
import { OrchestratorError } from './errors.ts';

/** The rule every task name must meet: 1-64 of `[A-Za-z0-9._-]`, not starting with `.`. */
export const TASK_NAME_PATTERN = /^(?!\.)[A-Za-z0-9._-]{1,64}$/;

/** Human-readable form of {@link TASK_NAME_PATTERN}, used in error messages and `--help`. */
export const TASK_NAME_RULE = '[A-Za-z0-9._-]{1,64}, not starting with "."';

/** The rule for session ids (they become file names: `<session_id>.yaml`). */
export const SESSION_ID_PATTERN = /^(?!\.)[A-Za-z0-9._-]{1,64}$/;

/**
 * Checks a task name and returns it unchanged.
 *
 * Names become file names (`<output_dir>/<task_name>.md`), so anything that could leave the folder
 * (`..`, `/`, a leading `.`, spaces, an empty name) is refused.
 *
 * @param name - the raw value of `--task_name` or a plan's task id.
 * @param source - how to name the value in the error, e.g. `--task_name`.
 * @throws OrchestratorError `invalid_task_name` (exit 2) naming the value and the rule.
 * @example validateTaskName('T-01') // 'T-01'
 */
export function validateTaskName(name: string, source = '--task_name'): string {
  if (name === '') {
    throw new OrchestratorError(
      'invalid_task_name',
      `${source} is required: give the task a name matching ${TASK_NAME_RULE}, for example ${source} T-01 or ${source} security-scan.`,
    );
  }
  if (!TASK_NAME_PATTERN.test(name)) {
    throw new OrchestratorError(
      'invalid_task_name',
      `Expected ${source} to match ${TASK_NAME_RULE}, got ${JSON.stringify(name)}. ` +
        'Use letters, digits, ".", "_" or "-" only, for example "T-01" or "security-scan".',
    );
  }
  return name;
}

/**
 * Checks a session id and returns it unchanged.
 * @throws OrchestratorError `usage` (exit 2) naming the value and the rule.
 */
export function validateSessionId(id: string, source = '--session_id'): string {
  if (!SESSION_ID_PATTERN.test(id) || id === 'latest') {
    throw new OrchestratorError(
      'usage',
      `Expected ${source} to match [A-Za-z0-9._-]{1,64}, not starting with "." and not "latest", got ${JSON.stringify(id)}.`,
    );
  }
  return id;
}

/**
 * Joins a validated file name onto a folder and checks the result stays inside it.
 *
 * @param dir - an absolute folder.
 * @param fileName - a single path segment (already validated).
 * @returns the absolute path `dir/fileName`.
 * @throws OrchestratorError `invalid_path` if the result would leave `dir`.
 */
export function resolveInside(dir: string, fileName: string): string {
  const full = path.resolve(dir, fileName);
  const rel = path.relative(dir, full);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel) || rel.includes(path.sep)) {
    throw new OrchestratorError('invalid_path', `Refusing to write ${JSON.stringify(fileName)}: it resolves to ${full}, outside ${dir}.`);
  }
  return full;
}

/** Creates a new session id from the time and a random suffix, e.g. `20261122-201500-3f9a`. */
export function newSessionId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const suffix = Math.floor(Math.random() * 0x10000)
    .toString(16)
    .padStart(4, '0');
  return `${stamp}-${suffix}`;
}
