// The verdict rules (references/verification.md): each verdict from the evidence that decides it, and the evidence named.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Evidence } from '../../scripts/lib/verification/evidence.ts';
import { emptyAttempt, type AttemptReceipt } from '../../scripts/lib/verification/receipts.ts';
import { claimsTestsPass, isTestCommand, judge, restatesGoal, type FileChange } from '../../scripts/lib/verification/verdict.ts';

function attempt(parts: Partial<AttemptReceipt> = {}): AttemptReceipt {
  return { ...emptyAttempt(1), ...parts, tool_calls: { ...emptyAttempt(1).tool_calls, ...parts.tool_calls } };
}
const bash = (command: string, exit: number | null, denied = false) => ({ command, exit, denied, interrupted: false });
const base = {
  goal: 'Add input validation to src/api.ts and make the tests pass',
  declaredFiles: [] as string[],
  changes: new Map<string, FileChange>(),
};

describe('verdicts', () => {
  it('unverified: success claimed with no tool call at all', () => {
    const verdict = judge({ ...base, result: 'Done, all tests pass.', attempts: [attempt()] });
    expect(verdict).toEqual({
      value: 'unverified',
      evidence: ['the answer claims the tests pass, but no test command ran', 'no tool call at all', 'the answer only restates the goal'],
    });
  });

  it('verified: the declared file written and the tests run with exit 0, named in the evidence', () => {
    const verdict = judge({
      ...base,
      result: 'Added validation; all tests pass.',
      declaredFiles: ['src/api.ts'],
      changes: new Map([['src/api.ts', 'changed']]),
      attempts: [attempt({ tool_calls: { edit: 1, bash: 1 } as never, commands: [bash('npm test', 0)] })],
    });
    expect(verdict.value).toBe('verified');
    expect(verdict.evidence).toEqual(['ran `npm test` (exit 0)', 'changed src/api.ts', '1 edit (0 files, +0 -0), 1 command']);
  });

  it('contradicted: the answer claims the tests pass but the last test run failed (a later passing run clears it)', () => {
    const failing = [attempt({ tool_calls: { bash: 2 } as never, commands: [bash('npm test', 0), bash('npx vitest run', 1)] })];
    expect(judge({ ...base, result: 'All tests pass.', attempts: failing })).toEqual({
      value: 'contradicted',
      evidence: ['the answer claims the tests pass, but `npx vitest run` exited 1'],
    });
    const fixed = [attempt({ tool_calls: { bash: 2 } as never, commands: [bash('pytest -q', 2), bash('pytest -q', 0)] })];
    expect(judge({ ...base, result: '12 passed.', attempts: fixed }).value).toBe('verified');
  });

  it('contradicted: writing a declared file was denied and it is unchanged; or the answer says it wrote one that is unchanged', () => {
    const denied = attempt({ tool_calls: { edit: 1 } as never, denials: [{ tool: 'Write', target: 'src/api.ts' }] });
    const unchanged = new Map<string, FileChange>([['src/api.ts', 'unchanged']]);
    expect(judge({ ...base, result: 'Validation added.', declaredFiles: ['src/api.ts'], changes: unchanged, attempts: [denied] })).toEqual({
      value: 'contradicted',
      evidence: ['writing src/api.ts was denied by permissions, and it is unchanged'],
    });
    const read = attempt({ tool_calls: { read: 2 } as never });
    expect(
      judge({
        ...base,
        result: 'I updated src/api.ts with a zod schema.',
        declaredFiles: ['src/api.ts'],
        changes: unchanged,
        attempts: [read],
      }),
    ).toEqual({ value: 'contradicted', evidence: ['the answer says src/api.ts was written, but it is unchanged'] });
    // Not said to be written, only untouched: unverified, not contradicted.
    expect(judge({ ...base, result: 'Looked into it.', declaredFiles: ['src/api.ts'], changes: unchanged, attempts: [read] })).toEqual({
      value: 'unverified',
      evidence: ['declared src/api.ts is unchanged'],
    });
  });

  it('a check decides: a failed check contradicts, a passed one verifies even without tool calls', () => {
    expect(judge({ ...base, result: 'ok', attempts: [attempt()], check: { command: 'npm test', exit: 1 } })).toEqual({
      value: 'contradicted',
      evidence: ['check `npm test` failed (exit 1)'],
    });
    expect(judge({ ...base, result: 'ok', attempts: [attempt()], check: { command: 'npm test', exit: 0 } })).toEqual({
      value: 'verified',
      evidence: ['check `npm test` passed'],
    });
  });

  it('unverified: an answer that only restates the goal, from a task with no files and no check', () => {
    const reads = [attempt({ tool_calls: { read: 3 } as never })];
    expect(judge({ ...base, result: 'Added input validation to src/api.ts.', attempts: reads }).value).toBe('unverified');
    expect(
      judge({ ...base, result: 'The handler in src/api.ts trusts req.body.id; line 42 builds SQL from it.', attempts: reads }).value,
    ).toBe('verified');
  });

  it('recognises test commands and claims, and restated goals', () => {
    expect(
      [
        'npm test',
        'npm run test -- --run',
        'pnpm test',
        'npx vitest run',
        'go test ./...',
        'cargo test',
        'python -m pytest',
        'make check',
      ].every(isTestCommand),
    ).toBe(true);
    expect(['npm install', 'git status', 'echo test', 'cat tests/a.ts'].some(isTestCommand)).toBe(false);
    expect(['All tests pass.', 'tests passed', '12 passed, 0 failed', 'The tests are green'].every(claimsTestsPass)).toBe(true);
    expect(['I did not run the tests.', 'Wrote a test file.'].some(claimsTestsPass)).toBe(false);
    expect(restatesGoal('Done.', 'anything')).toBe(true);
  });
});

describe('Evidence: the declared files before and after the agent', () => {
  it('tells changed, unchanged, created and unknown (a folder) apart, and judges only a completed run', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dto-evidence-'));
    await writeFile(path.join(dir, 'same.txt'), 'a');
    await writeFile(path.join(dir, 'edited.txt'), 'a');
    const task = { taskName: 't', session_id: 's', goal: 'g', files: ['same.txt', 'edited.txt', 'new.txt', '.'], cwd: dir };
    const evidence = await Evidence.begin(task);
    await writeFile(path.join(dir, 'edited.txt'), 'b');
    await writeFile(path.join(dir, 'new.txt'), 'c');
    evidence.add(attempt({ tool_calls: { edit: 2 } as never }));
    const doc = await evidence.document({ completed: true, result: 'Edited the files.' });
    expect(doc.declared_files).toEqual([
      { path: 'same.txt', change: 'unchanged' },
      { path: 'edited.txt', change: 'changed' },
      { path: 'new.txt', change: 'changed' },
      { path: '.', change: 'unknown' },
    ]);
    expect(doc.verdict).toEqual({ value: 'unverified', evidence: ['declared same.txt is unchanged'] });
    expect((await evidence.document({ completed: false, result: '' })).verdict).toBeNull();
  });
});
