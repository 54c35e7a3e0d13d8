// Rehearsing the verdicts with mock agents told what to claim and what to do: plans (orchestrate) and flags (spawn-agent-mock).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempProject } from '../support/project.ts';
import { readState } from '../../scripts/lib/state/state-store.ts';

describe('verdicts of mock agents', () => {
  it('a plan of a diligent, a lazy and a lying agent: verified, unverified, contradicted; contradicted fails the run (exit 1)', async () => {
    const project = await tempProject('dto-mock-verdict-');
    await writeFile(
      path.join(project.dir, 'plan.yaml'),
      [
        'tasks:',
        '  - { id: diligent, goal: "Write out.txt", files: [out.txt], write: { out.txt: "done" }, ran: { "npm test": 0 }, delay_ms: 20 }',
        '  - { id: lazy, goal: "Fix the parser", lazy: true, claim: "Done, all tests pass.", delay_ms: 20 }',
        '  - { id: liar, goal: "Fix the lexer", claim: "Fixed it; all tests pass.", ran: { "npm test": 1 }, delay_ms: 20 }',
        '',
      ].join('\n'),
    );
    const orchestrated = await run('orchestrate', ['plan.yaml', '--agent', 'mock'], project.dir);
    expect(orchestrated.exitCode, orchestrated.all).toBe(1);
    expect(orchestrated.stdout).toMatch(/3 of 3 completed \(1 unverified, 1 contradicted\)/);
    const state = (await readState(project.paths))!;
    expect(state.tasks.diligent!.verdict).toEqual({
      value: 'verified',
      evidence: ['ran `npm test` (exit 0)', 'changed out.txt', '1 read, 1 search, 1 edit (1 file, +1 -0), 1 command (simulated)'],
    });
    expect(state.tasks.lazy!.verdict).toEqual({
      value: 'unverified',
      evidence: ['the answer claims the tests pass, but no test command ran', 'no tool call at all', 'the answer only restates the goal'],
    });
    expect(state.tasks.liar!.verdict).toEqual({
      value: 'contradicted',
      evidence: ['the answer claims the tests pass, but `npm test` exited 1'],
    });
    expect(state.tasks.liar!.receipts).toMatchObject({ commands: 1, commands_failed: 1, simulated: true });

    // The waiting and the report say it out loud; contradicted counts as a failure for poll-session, either for aggregate.
    const polled = await run('poll-session', ['--once', '--from_start'], project.dir);
    expect(polled.exitCode, polled.all).toBe(1);
    expect(polled.stdout).toContain('liar completed by Agent-03');
    expect(polled.stdout).toMatch(
      /liar completed by Agent-03 in .* — ⚠️ contradicted: the answer claims the tests pass, but `npm test` exited 1/,
    );
    expect(polled.stdout).toMatch(/All 3 tasks ended: 3 completed \(1 unverified, 1 contradicted\)/);
    const aggregate = await run('aggregate', [], project.dir);
    expect(aggregate.exitCode, aggregate.all).toBe(1);
    expect(aggregate.stdout).toContain('Contradicted (the receipts or the check disprove the answer: treat as failed): liar (');
    expect(aggregate.stdout).toContain('Unverified (success claimed without evidence: do not present as done): lazy (');
    const receipt = JSON.parse(await readFile(path.join(project.dir, '.agent/results/liar.receipt.json'), 'utf8')) as {
      attempts: Array<{ commands: unknown; simulated: boolean }>;
    };
    expect(receipt.attempts).toMatchObject([{ commands: [{ command: 'npm test', exit: 1, denied: false }], simulated: true }]);
  });

  it('spawn-agent-mock --lazy --claim: unverified; a bad --ran is refused before anything is registered', async () => {
    const project = await tempProject('dto-mock-verdict-');
    const bad = await run('spawn-agent-mock', ['--task_name', 'x', '--goal', 'g', '--ran', 'npm test=yes'], project.dir);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('Expected --ran CMD=EXIT with EXIT from 0 to 255 (e.g. --ran "npm test=1"), got "npm test=yes".');
    expect(await readState(project.paths)).toBeNull();
    const lazy = await run(
      'spawn-agent-mock',
      ['--task_name', 'lazy', '--goal', 'Refactor the cache', '--lazy', '--claim', 'Refactored the cache.', '--delay_ms', '10'],
      project.dir,
    );
    expect(lazy.exitCode, lazy.all).toBe(0);
    const task = (await readState(project.paths))!.tasks.lazy!;
    expect(task.verdict).toEqual({ value: 'unverified', evidence: ['no tool call at all', 'the answer only restates the goal'] });
    expect(await readFile(path.join(project.dir, '.agent/results/lazy.md'), 'utf8')).toContain('## Result\nRefactored the cache.\n');
  });
});
