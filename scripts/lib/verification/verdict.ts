// The verdict on a completed task: verified, unverified or contradicted, each naming its evidence (references/verification.md, "Verdict rules").
import { describeReceipt, summarize, totalCalls, type AttemptReceipt, type CommandReceipt } from './receipts.ts';

import { VERDICTS, type VerdictValue } from '../state/constants.ts';

export { VERDICTS, type VerdictValue };

/** A verdict and the evidence it rests on (short sentences, at most {@link EVIDENCE_ITEMS}). */
export interface Verdict {
  value: VerdictValue;
  evidence: string[];
}

/** Most evidence sentences kept per verdict. */
export const EVIDENCE_ITEMS = 6;

/** How a declared file compares before and after the agent: `unknown` when it could not be read either time. */
export type FileChange = 'changed' | 'unchanged' | 'unknown';

/** What a verdict is judged from. */
export interface VerdictInput {
  goal: string;
  /** The agent's final answer. */
  result: string;
  /** The files the task declared (`--files`, plan `files:`). */
  declaredFiles: readonly string[];
  /** Each declared file's change over the run (file-snapshot.ts), by path. */
  changes: ReadonlyMap<string, FileChange>;
  attempts: readonly AttemptReceipt[];
  /** The task's check (`check:`, `--check`) of the last attempt, or null without one. */
  check?: { command: string; exit: number | null } | null;
}

/** A claim that tests pass: "all tests pass", "tests passed", "12 passed", "tests are green". */
const TEST_CLAIM =
  /\b(?:all\s+(?:the\s+)?)?tests?\s+(?:now\s+|all\s+)?(?:pass(?:es|ed|ing)?|succeed(?:ed|s)?|(?:are|is)\s+(?:green|passing))\b|\b\d+\s+(?:tests?\s+)?passed\b/i;

/** A command that runs a test suite (npm/pnpm/yarn/bun test, vitest, jest, pytest, go/cargo/deno test, make test/check, ...). */
const TEST_COMMAND =
  /\b(?:(?:npm|pnpm|yarn|bun)\s+(?:run\s+)?test\b|npx\s+(?:vitest|jest|mocha)\b|vitest\b|jest\b|pytest\b|py\.test\b|python3?\s+-m\s+(?:pytest|unittest)\b|go\s+test\b|cargo\s+test\b|deno\s+test\b|make\s+(?:test|check)\b|mvn\s+test\b|gradlew?\s+test\b|ctest\b|rspec\b|phpunit\b|mocha\b|tox\b)/;

/** A sentence saying a file was written. */
const WRITE_VERB = /\b(?:wrote|written|writes|created|creates|updated|updates|modified|edited|changed|added|fixed|implemented|saved)\b/i;

/** Does `command` run a test suite? */
export function isTestCommand(command: string): boolean {
  return TEST_COMMAND.test(command);
}

/** Does the answer claim that tests pass? */
export function claimsTestsPass(result: string): boolean {
  return TEST_CLAIM.test(result);
}

/** The lowercase words of a text of 3 letters or more. */
function words(text: string): Set<string> {
  return new Set(text.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) ?? []);
}

/** The answer adds at most two words to the goal's (after "done", "completed" and the like). */
export function restatesGoal(result: string, goal: string): boolean {
  const filler = new Set(['done', 'completed', 'complete', 'finished', 'task', 'the', 'and', 'have', 'has', 'been', 'all', 'successfully']);
  const said = [...words(result)].filter((word) => !filler.has(word));
  if (said.length === 0) return true;
  const asked = words(goal);
  return said.filter((word) => !asked.has(word)).length <= 2;
}

function quoteCommand(command: string): string {
  const one = command.replace(/\s+/g, ' ').trim();
  return `\`${one.length > 80 ? `${one.slice(0, 79)}…` : one}\``;
}

/** Lines of the answer that say a declared file was written, by file: "src/a.ts: updated the handler". */
function filesClaimedWritten(result: string, declared: readonly string[]): string[] {
  const lines = result.split('\n').filter((line) => WRITE_VERB.test(line));
  return declared.filter((file) => {
    const base = file.split('/').at(-1)!;
    return lines.some((line) => line.includes(file) || (base.length >= 4 && line.includes(base)));
  });
}

/**
 * Judges a completed task by conservative rules (references/verification.md, "Verdict rules"); each sentence of
 * evidence names what was seen.
 *
 * `contradicted` (the receipts or the check disprove the answer), any of:
 * - the check failed (its command and exit code);
 * - the answer claims tests pass, and the last test command the agent ran exited non-zero or was denied, with no
 *   test command passing after it;
 * - a permission denial on writing a declared file that is unchanged;
 * - the answer says it wrote a declared file that is unchanged.
 *
 * `unverified` (success claimed without evidence), when not contradicted, any of:
 * - no tool call at all (and no check passed);
 * - a declared file unchanged;
 * - the answer claims tests pass but no test command ran and no check passed;
 * - an empty answer, or one that only restates the goal, from a task with no declared files and no check that wrote
 *   no file and passed no test command.
 *
 * `verified` otherwise, with the evidence: the receipts' summary, the declared files changed, the check passed, the
 * test commands that passed.
 */
export function judge(input: VerdictInput): Verdict {
  const against: string[] = [];
  const missing: string[] = [];
  const support: string[] = [];
  const commands = input.attempts.flatMap((attempt) => attempt.commands);
  const summary = summarize(input.attempts);
  const check = input.check ?? null;
  const checkPassed = check !== null && check.exit === 0;
  if (check && !checkPassed) against.push(`check ${quoteCommand(check.command)} failed (exit ${check.exit ?? 'unknown'})`);
  if (checkPassed) support.push(`check ${quoteCommand(check.command)} passed`);

  judgeTests(input.result, commands, checkPassed, { against, missing, support });

  const unchanged = input.declaredFiles.filter((file) => input.changes.get(file) === 'unchanged');
  const deniedWrites = new Set(
    input.attempts.flatMap((attempt) =>
      attempt.denials.filter((d) => d.target !== null && /Edit|Write/.test(d.tool)).map((d) => d.target!),
    ),
  );
  const claimed = new Set(filesClaimedWritten(input.result, input.declaredFiles));
  for (const file of unchanged) {
    if (deniedWrites.has(file)) against.push(`writing ${file} was denied by permissions, and it is unchanged`);
    else if (claimed.has(file)) against.push(`the answer says ${file} was written, but it is unchanged`);
    else missing.push(`declared ${file} is unchanged`);
  }
  const changed = input.declaredFiles.filter((file) => input.changes.get(file) === 'changed');
  if (changed.length > 0) support.push(`changed ${changed.join(', ')}`);

  if (totalCalls(summary.tool_calls) === 0 && !checkPassed) missing.push('no tool call at all');
  else if (totalCalls(summary.tool_calls) > 0) support.push(describeReceipt(summary));
  // An answer that is the deliverable (no files declared, no check, nothing written, no test passed) must say something.
  const otherEvidence = summary.files_written > 0 || commands.some((c) => c.exit === 0 && isTestCommand(c.command));
  if (input.declaredFiles.length === 0 && check === null && !otherEvidence) {
    if (input.result.trim() === '') missing.push('the answer is empty');
    else if (restatesGoal(input.result, input.goal)) missing.push('the answer only restates the goal');
  }

  if (against.length > 0) return { value: 'contradicted', evidence: against.slice(0, EVIDENCE_ITEMS) };
  if (missing.length > 0) return { value: 'unverified', evidence: missing.slice(0, EVIDENCE_ITEMS) };
  return { value: 'verified', evidence: support.slice(0, EVIDENCE_ITEMS) };
}

/** The test-claim rules: a claim disproved by the last test run, or made with none. */
function judgeTests(
  result: string,
  commands: readonly CommandReceipt[],
  checkPassed: boolean,
  out: { against: string[]; missing: string[]; support: string[] },
): void {
  const tests = commands.filter((command) => isTestCommand(command.command));
  const last = tests.at(-1);
  const passed = tests.filter((command) => command.exit === 0);
  if (passed.length > 0) out.support.push(`ran ${quoteCommand(passed.at(-1)!.command)} (exit 0)`);
  if (!claimsTestsPass(result)) return;
  if (last && last.exit !== 0 && (last.denied || last.exit !== null)) {
    const how = last.denied ? 'was denied by permissions' : `exited ${last.exit}`;
    out.against.push(`the answer claims the tests pass, but ${quoteCommand(last.command)} ${how}`);
  } else if (!last && !checkPassed) {
    out.missing.push('the answer claims the tests pass, but no test command ran');
  }
}
