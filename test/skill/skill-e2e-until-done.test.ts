// SKILL.md's main path in the real claude CLI, in Claude Code's default permission mode with only the skill itself
// allowed: start detached, wait with one background `poll-session --until_done`, end the turn, act on the wake-up.
// Counts the main conversation's requests for a 40-task run of about 75 s and one three times as long, next to what
// foreground slices of 90 s cost on the same runs; then a Monitor on `--attention` with one task failing.
import { readFileSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClaudeAsClient, tempDir } from '../support/claude-fixtures.ts';
import { startMessagesApiStub, type MessagesApiStub } from '../support/messages-api-stub.ts';
import { skillFollowingModel } from '../support/background-model.ts';
import { installSkillCopy, ROOT } from '../support/skill-blocks.ts';

const SKILL = 'distributed-task-orchestrator';
/** The budget of main-conversation requests for a whole run, wake-ups included. */
const MAX_REQUESTS = 7;
/** The bound on the digest `--until_done` prints. */
const MAX_DIGEST_BYTES = 2048;
/** Requests the slice path costs besides its slices: skill, plan file, start, aggregate, the answer. */
const SLICE_PATH_FIXED_REQUESTS = 5;

/** A plan of `count` independent mock tasks of `delayMs` each (8 workers: count / 8 waves); `failing` fails fast. */
function plan(count: number, delayMs: number, failing?: string): string {
  const tasks = Array.from({ length: count }, (_, i) => {
    const id = `t-${String(i + 1).padStart(2, '0')}`;
    return id === failing
      ? { id, goal: `Check part ${i + 1} (goal-${id})`, delay_ms: 3000, fail: true }
      : { id, goal: `Check part ${i + 1} (goal-${id})`, delay_ms: delayMs };
  });
  return YAML.stringify({ request: `Check ${count} parts`, tasks });
}

const homes: string[] = [];
const stubs: MessagesApiStub[] = [];
beforeAll(async () => {
  for (let i = 0; i < 3; i++) homes.push((await installSkillCopy('dto-e2e-until-done-home-')).home);
}, 180_000);
afterAll(async () => {
  await Promise.all(stubs.map((stub) => stub.close()));
  await Promise.all(homes.map((home) => rm(home, { recursive: true, force: true })));
});

/** Counts the slices `poll-session --timeout 90` needs on the same run: what the foreground path would cost. */
async function countSlices(project: string): Promise<number> {
  const state = path.join(project, '.agent/sessions/latest.yaml');
  while (!(await stat(state).catch(() => null))) await new Promise((resolve) => setTimeout(resolve, 200));
  let slices = 0;
  for (;;) {
    slices++;
    const slice = await execa(path.join(ROOT, 'scripts/run'), ['poll-session', '--timeout', '90'], { cwd: project, reject: false });
    if (slice.exitCode !== 3) return slices;
  }
}

/** One run of the main path: the real CLI, default permission mode, only `Skill(distributed-task-orchestrator)` allowed. */
async function runMainPath(
  home: string,
  planText: string,
  options: { monitor?: boolean; slices?: boolean; onEvent?: (project: string, event: string) => void } = {},
) {
  const project = await tempDir('dto-e2e-until-done-project-');
  await execa('git', ['init', '-q'], { cwd: project });
  const marker = `[[e2e:until-done:${path.basename(project)}]]`;
  const model = skillFollowingModel({
    marker,
    skill: SKILL,
    plan: planText,
    workers: '--workers 8',
    monitor: options.monitor,
    project,
    onEvent: (event) => options.onEvent?.(project, event),
  });
  const stub = await startMessagesApiStub(model.reply);
  stubs.push(stub);
  const [{ result, lines }, slices] = await Promise.all([
    runClaudeAsClient({
      cwd: project,
      input: `Check every part with mock agents and tell me when it is done. ${marker}`,
      stub,
      home,
      maxTurns: 40,
      allowedTools: `Skill(${SKILL})`,
      permissionMode: 'default',
      bashLimitMs: 120_000,
      timeoutMs: 720_000,
    }),
    options.slices ? countSlices(project) : Promise.resolve(null),
  ]);
  const final = lines.at(-1) as { type?: string; result?: string; permission_denials?: unknown[] } | undefined;
  const trace = `steps: ${JSON.stringify(model.steps.map((s) => s.kind))}\nstderr: ${result.stderr.slice(-800)}`;
  return { project, model, final, slices, trace };
}

// The two tests run at once: the long run takes about 4 minutes, and the Monitor run fits beside it.
describe.concurrent('SKILL.md in Claude Code: one background wait, a free conversation, no approvals (real CLI, default mode)', () => {
  it('a 40-task run of about 75 s and one three times as long cost the same few requests, 0 permission denials', async () => {
    const [short, long] = await Promise.all([
      // 5 waves of 15 s and of 45 s: one or two slices of 90 s, and at least three.
      runMainPath(homes[0]!, plan(40, 15_000), { slices: true }),
      runMainPath(homes[1]!, plan(40, 45_000), { slices: true }),
    ]);
    for (const run of [short, long]) {
      expect(run.final, run.trace).toMatchObject({ type: 'result', result: 'Done: the run ended and the report is read.' });
      expect(run.final!.permission_denials, run.trace).toEqual([]);
      // Skill, start (plan on stdin), background wait, end of turn; the wake-up: read the report, answer.
      expect(run.model.steps.map((s) => s.kind)).toEqual(['skill', 'start', 'wait', 'end_turn', 'read', 'answer']);
      expect(run.model.wakeUps.map((w) => w.exitCode)).toEqual([0]);
      expect(run.model.requests).toBeLessThanOrEqual(MAX_REQUESTS);
      // The digest is the whole output of the background command; the report was written before it.
      const digest = await readFile(run.model.wakeUps[0]!.outputFile!, 'utf8');
      expect(Buffer.byteLength(digest), digest).toBeLessThanOrEqual(MAX_DIGEST_BYTES);
      expect(digest).toMatch(/40 completed/);
      const report = await readFile(path.join(run.project, '.agent/final_output.md'), 'utf8');
      expect(report).toMatch(/Completed: \*\*40 of 40\*\*/);
      const read = run.model.results.get(run.model.steps.find((s) => s.kind === 'read')!.id)!;
      expect(read.isError, read.text.slice(0, 300)).toBe(false);
    }
    expect(long.model.requests).toBe(short.model.requests);
    // Foreground slices of 90 s on the same runs grow with the run's length.
    const sliced = [short.slices!, long.slices!].map((n) => n + SLICE_PATH_FIXED_REQUESTS);
    expect(sliced[1]).toBeGreaterThan(sliced[0]!);
    console.log(
      `main-conversation requests: --until_done in the background ${short.model.requests} (75 s run), ` +
        `${long.model.requests} (3x as long); foreground slices of 90 s ${sliced[0]} and ${sliced[1]}`,
    );
  }, 900_000);

  it('a Monitor on --attention reports the one failure before the run ends, in at most 4 lines; the wake-up renews the approval', async () => {
    // How many tasks had not ended yet when each Monitor line woke the model (read from the state at that moment).
    const activeAt = new Map<string, number>();
    const onEvent = (project: string, event: string) => {
      const state = YAML.parse(readFileSync(path.join(project, '.agent/sessions/latest.yaml'), 'utf8')) as {
        tasks: Record<string, { status: string }>;
      };
      const ended = new Set(['completed', 'failed', 'merge_failed', 'skipped', 'cancelled']);
      activeAt.set(event, Object.values(state.tasks).filter((t) => !ended.has(t.status)).length);
    };
    const run = await runMainPath(homes[2]!, plan(40, 20_000, 't-03'), { monitor: true, onEvent });
    expect(run.final, run.trace).toMatchObject({ type: 'result', result: 'Done: the run ended and the report is read.' });
    expect(run.final!.permission_denials, run.trace).toEqual([]);
    const lines = run.model.events.flatMap((event) => event.split('\n').filter(Boolean));
    expect(lines.length, lines.join('\n')).toBeLessThanOrEqual(4);
    const failure = lines.findIndex((line) => /t-03/.test(line) && /fail/i.test(line));
    const end = lines.findIndex((line) => /All 40 tasks ended/.test(line));
    expect(failure, lines.join('\n')).toBeGreaterThanOrEqual(0);
    // The failure's line came while other tasks were still to finish, and before the line that says the run ended.
    const failureEvent = run.model.events.find((event) => event.includes(lines[failure]!))!;
    expect(activeAt.get(failureEvent), lines.join('\n')).toBeGreaterThan(0);
    if (end >= 0) expect(failure).toBeLessThan(end);
    expect(run.model.wakeUps.map((w) => w.exitCode)).toEqual([1]);
    // Exit 1: the skill is invoked again (its approval lapsed with the new turn), then aggregate runs unrefused.
    const kinds = run.model.steps.map((s) => s.kind);
    expect(kinds.slice(0, 5)).toEqual(['skill', 'start', 'toolsearch', 'monitor', 'wait']);
    expect(kinds.slice(-3)).toEqual(['skill', 'aggregate', 'answer']);
    const aggregate = run.model.results.get(run.model.steps.find((s) => s.kind === 'aggregate')!.id)!;
    expect(aggregate.isError, aggregate.text.slice(0, 300)).toBe(false);
    expect(aggregate.text).toContain('Completed: 39 of 40 tasks');
  }, 600_000);
});
