// End to end: the real claude CLI, driven by a scripted model that follows SKILL.md's own code blocks, runs a
// 30-40 s plan of mock agents with the Bash tool's limit lowered to 10 s: detached start, waits in slices, report.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClaudeAsClient } from '../support/claude-fixtures.ts';
import { startMessagesApiStub, type MessagesApiStub } from '../support/messages-api-stub.ts';
import { blockFollowingModel, strings, type RunBlocks } from '../support/scripted-model.ts';
import { fillSkillDir, installSkillCopy, LAUNCHER, skillBlock, withPlan } from '../support/skill-blocks.ts';

/**
 * The Bash tool's default limit in this test (ms): far below the 120 s default, so a wait that ignored it would be
 * cut, yet with a few seconds' margin over a slice for a slow process start on a loaded 2-core machine.
 */
const BASH_LIMIT_MS = 20_000;
/** SKILL.md's rule: keep poll-session's --timeout at about three quarters of the Bash tool's limit. */
const SLICE_S = Math.floor((BASH_LIMIT_MS * 0.75) / 1000);
/** The budget for one wait's output read by the model (20 tasks; this plan has 6). */
const MAX_BYTES_PER_WAIT = 3 * 1024;
const MARKER = '[[e2e:scripted-model]]';

/** Six mock tasks whose critical path is scan -> review -> report: about 34 s. */
const PLAN = {
  request: 'Review the repository for quality, security and performance',
  tasks: [
    { id: 'scan', goal: 'List the source files (goal-scan)', delay_ms: 10_000 },
    { id: 'quality', goal: 'Review code quality (goal-quality)', depends_on: ['scan'], delay_ms: 14_000 },
    { id: 'security', goal: 'Review security (goal-security)', depends_on: ['scan'], delay_ms: 14_000 },
    { id: 'performance', goal: 'Review performance (goal-performance)', depends_on: ['scan'], delay_ms: 12_000 },
    { id: 'docs', goal: 'Check the README against the code (goal-docs)', delay_ms: 8_000 },
    { id: 'report', goal: 'Merge the reviews (goal-report)', depends_on: ['quality', 'security', 'performance', 'docs'], delay_ms: 10_000 },
  ],
};

/**
 * The scripted model of this test: loads the skill, reads its base directory from the conversation, then runs SKILL.md's
 * blocks (start detached with its plan on stdin, wait, verify) with only the skill's folder filled in.
 */
function scriptedModel(blocks: RunBlocks) {
  let base: string | null = null;
  const model = blockFollowingModel(MARKER, (body, calls) => {
    if (calls.length === 0) {
      calls.push({ kind: 'skill', id: 'toolu_e2e_skill' });
      return { type: 'tool_use', id: 'toolu_e2e_skill', name: 'Skill', input: { skill: 'distributed-task-orchestrator' } };
    }
    if (calls.at(-1)!.kind === 'skill') {
      const text = strings(body.messages).join('\n');
      const line = text.match(/Base directory for this skill: (.+)/);
      if (!line) return { type: 'text', text: 'No base directory line in the conversation.' };
      base = line[1]!.trim();
      // Claude Code filled in the skill's folder: the text the model read names no variable.
      if (text.includes('${CLAUDE_SKILL_DIR}')) return { type: 'text', text: 'The skill text still holds the variable.' };
    }
    const fill = (block: string) => fillSkillDir(block, base!);
    return { start: fill(blocks.start), wait: fill(blocks.wait), verify: fill(blocks.verify) };
  });
  return { ...model, base: () => base };
}

let home: string;
let skill: string;
let stub: MessagesApiStub | undefined;

beforeAll(async () => {
  ({ home, skill } = await installSkillCopy('dto-e2e-home-'));
}, 120_000);
afterAll(async () => {
  await stub?.close();
  await rm(home, { recursive: true, force: true });
});

describe('SKILL.md followed verbatim by a model in the real claude CLI (Bash tool limit 20 s, mock agents ~34 s)', () => {
  it('starts detached, waits in slices that each fit the tool limit, and ends with a complete rehearsal report', async () => {
    // SKILL.md section 4: the model's own plan goes to orchestrate on standard input, in the start block's heredoc.
    const start = withPlan(await skillBlock('orchestrate -', '--agent mock', '--detach'), YAML.stringify(PLAN));
    const wait = (await skillBlock('poll-session --timeout 90')).replace('--timeout 90', `--timeout ${SLICE_S}`);
    const verify = await skillBlock('scripts/run" aggregate');
    for (const block of [start, wait, verify]) expect(block.startsWith(LAUNCHER)).toBe(true);

    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-e2e-project-'));
    await execa('git', ['init', '-q'], { cwd: project });
    const model = scriptedModel({ start, wait, verify });
    stub = await startMessagesApiStub(model.reply);
    const { result, lines } = await runClaudeAsClient({
      cwd: project,
      input: `Do a dry run with mock agents of a review plan, wait for it and report. ${MARKER}`,
      stub,
      home,
      maxTurns: 60,
      allowedTools: 'Bash,Write,Skill',
      bashLimitMs: BASH_LIMIT_MS,
    });
    const final = lines.at(-1);
    expect(final, `stderr: ${result.stderr}`).toMatchObject({ type: 'result', is_error: false, result: 'Done: the rehearsal finished.' });
    expect(model.base()).toBe(skill);

    // The calls the model made, in order: skill, start (the plan on stdin), one or more waits, verify.
    const kinds = model.calls.map((c) => c.kind);
    expect(kinds.slice(0, 2)).toEqual(['skill', 'start']);
    expect(kinds.at(-1)).toBe('verify');
    const waits = model.calls.filter((c) => c.kind === 'wait').map((c) => model.results.get(c.id)!);
    // Every wait returned by itself with its summary line (none was cut by the tool and moved to the background).
    for (const w of waits) expect(w.text).toMatch(/^\[poll\] .*\(exit [03]\)\.?$/m);
    // ~34 s of work in slices of at most 15 s: the first slices said "still running" (exit 3), the last one exit 0.
    expect(waits.length).toBeGreaterThanOrEqual(2);
    expect(waits.slice(0, -1).every((w) => /Exit code 3\b/.test(w.text))).toBe(true);
    expect(waits.at(-1)!.isError).toBe(false);

    // Bounded tool output: each wait within the 3 kB, and the whole run's Bash output small.
    const startResult = model.results.get(model.calls.find((c) => c.kind === 'start')!.id)!;
    expect(startResult.isError).toBe(false);
    expect(startResult.text).toMatch(/^Started session \S+ in the background \(pid \d+\): 6 tasks, mock agents\.$/m);
    const waitBytes = waits.map((w) => Buffer.byteLength(w.text));
    expect(Math.max(...waitBytes)).toBeLessThanOrEqual(MAX_BYTES_PER_WAIT);
    const bashBytes = model.calls.filter((c) => c.command).reduce((sum, c) => sum + Buffer.byteLength(model.results.get(c.id)!.text), 0);
    expect(bashBytes).toBeLessThanOrEqual(MAX_BYTES_PER_WAIT * (waits.length + 2));
    if (process.env.DTO_E2E_FIGURES) console.log(JSON.stringify({ waits: waits.length, waitBytes, bashBytes, calls: kinds }));

    // The run itself: every task completed, and the report says it is a rehearsal and holds every task's result.
    const state = YAML.parse(await readFile(path.join(project, '.agent/sessions/latest.yaml'), 'utf8')) as {
      tasks: Record<string, { status: string }>;
    };
    expect(Object.fromEntries(Object.entries(state.tasks).map(([name, t]) => [name, t.status]))).toEqual(
      Object.fromEntries(PLAN.tasks.map((t) => [t.id, 'completed'])),
    );
    const report = await readFile(path.join(project, '.agent/final_output.md'), 'utf8');
    expect(report.split('\n').slice(0, 8).join('\n')).toMatch(/rehearsal/i);
    expect(report).toMatch(/Completed: \*\*6 of 6\*\*/);
    for (const task of PLAN.tasks) expect(report).toContain(task.goal.match(/\(goal-\w+\)/)![0]);
    await rm(project, { recursive: true, force: true });
  }, 180_000);
});
