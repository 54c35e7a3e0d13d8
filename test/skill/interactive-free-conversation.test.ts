// The INTERACTIVE real claude CLI (in tmux), driven by a scripted model: the skill starts a ~45 s run of mock agents
// detached, waits for it with a background Bash command (`poll-session --until_done`, run_in_background: true) and ends
// its turn; the user asks something else meanwhile and gets the answer while tasks still run; when the background
// command exits, Claude Code wakes the model (<task-notification>), which renews the skill and aggregates.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVE_STATUSES, type TaskStatus } from '../../scripts/lib/state/model.ts';
import { DIALOG_PATTERN, interactiveClaude, type InteractiveClaude } from '../support/interactive-claude.ts';
import { startMessagesApiStub, type MessagesApiStub, type StubReply, type StubRequest } from '../support/messages-api-stub.ts';
import { readTurn, strings, toolResultsOf, type RequestBody, type ToolResult } from '../support/scripted-model.ts';
import { blocksOf } from '../support/background-model.ts';
import { installSkillCopy, withPlan } from '../support/skill-blocks.ts';

const SKILL = 'distributed-task-orchestrator';
const MARK = {
  run: '[[tmux:run]]',
  started: '[[tmux:started]]',
  second: '[[tmux:second]]',
  answer: '[[tmux:answer]]',
  done: '[[tmux:done]]',
};
const ID = {
  skill: 'toolu_tmux_skill',
  start: 'toolu_tmux_start',
  wait: 'toolu_tmux_wait',
  skillAgain: 'toolu_tmux_skill_again',
  aggregate: 'toolu_tmux_aggregate',
};
const BASH_IDS = [ID.start, ID.wait, ID.aggregate];
/** What Claude Code puts in a tool result it refused for lack of permission. */
const DENIAL =
  /requires approval|Permission for this tool use was denied|permission to use \S+ (?:has been|was) denied|doesn't want to proceed/i;

/** Six mock tasks whose critical path is scan -> one review -> report: about 44 s at 4 workers. */
const PLAN = {
  request: 'Review the repository for quality, security and performance',
  tasks: [
    { id: 'scan', goal: 'List the source files', delay_ms: 12_000 },
    { id: 'quality', goal: 'Review code quality', depends_on: ['scan'], delay_ms: 16_000 },
    { id: 'security', goal: 'Review security', depends_on: ['scan'], delay_ms: 16_000 },
    { id: 'performance', goal: 'Review performance', depends_on: ['scan'], delay_ms: 14_000 },
    { id: 'docs', goal: 'Check the README against the code', delay_ms: 10_000 },
    { id: 'report', goal: 'Merge the reviews', depends_on: ['quality', 'security', 'performance', 'docs'], delay_ms: 14_000 },
  ],
};

/** One answer of the scripted model, with the request it answered. */
interface Step {
  step: 'skill' | 'start' | 'wait' | 'started' | 'answer' | 'wake' | 'aggregate' | 'done' | 'other';
  request: StubRequest;
}

/**
 * The scripted model. It reads its own last move (the last assistant message's tool call) and what came after it:
 * - message 1 ([[tmux:run]]): Skill, then Bash start (foreground), then Bash `poll-session --until_done` with
 *   `run_in_background: true`, then the text "Started; ...";
 * - message 2 ([[tmux:second]]): the text "42";
 * - the wake-up (a <task-notification> naming the background call): Skill again (the skill's grant lapses at a new
 *   turn), Bash aggregate, then the text "Done.";
 * - anything else after a finished turn (a plugin monitor's event): a short text.
 * Requests without [[tmux:run]] or without the Bash tool (title and summary side requests) get "ok".
 */
function scriptedModel() {
  const steps: Step[] = [];
  const results = new Map<string, ToolResult>();
  let base: string | null = null;
  let wakeUp: string | null = null;
  // SKILL.md's own blocks, as the skill's text reached the model (its folder filled in by Claude Code).
  let blocks: ReturnType<typeof blocksOf> = null;
  const commands = {
    start: () => withPlan(blocks!.start, YAML.stringify(PLAN)),
    wait: () => blocks!.wait,
    aggregate: () => blocks!.aggregate,
  };

  const reply = (request: StubRequest): StubReply => {
    if (request.method !== 'POST' || !request.body.includes(MARK.run) || !request.body.includes('"name":"Bash"'))
      return { type: 'text', text: 'ok' };
    const turn = readTurn(request, results);
    const { lastCall, since } = turn;
    base ??= turn.base;
    if (base) blocks ??= blocksOf(strings(turn.body.messages).join('\n'));
    const act = (step: Step['step'], answer: StubReply): StubReply => {
      steps.push({ step, request });
      return answer;
    };
    const bash = (step: Step['step'], id: string, command: string, background = false): StubReply =>
      act(step, {
        type: 'tool_use',
        id,
        name: 'Bash',
        input: { command, description: `${step} (${id})`, ...(background ? { run_in_background: true } : {}) },
      });
    const skill = (step: Step['step'], id: string) => act(step, { type: 'tool_use', id, name: 'Skill', input: { skill: SKILL } });

    switch (lastCall) {
      case ID.skill:
        if (!base || !blocks) return act('other', { type: 'text', text: 'No base directory line or no blocks in the skill text.' });
        return bash('start', ID.start, commands.start());
      case ID.start:
        return bash('wait', ID.wait, commands.wait(), true);
      case ID.wait:
        return act('started', { type: 'text', text: `Started; I will report when it ends. ${MARK.started}` });
      case ID.skillAgain:
        return bash('aggregate', ID.aggregate, commands.aggregate());
      case ID.aggregate:
        return act('done', { type: 'text', text: `Done. ${MARK.done}` });
      case undefined:
        break;
      default:
        return act('other', { type: 'text', text: `Unexpected last call ${String(lastCall)}.` });
    }
    // A new turn: the first message, the user's second one, the wake-up, or something else.
    if (turn.fresh) return skill('skill', ID.skill);
    if (since.includes(MARK.second) && !steps.some((s) => s.step === 'answer'))
      return act('answer', { type: 'text', text: `42 ${MARK.answer}` });
    const notification = [...since.matchAll(/<task-notification>[\s\S]*?<\/task-notification>/g)]
      .map((m) => m[0])
      .find((text) => text.includes(`<tool-use-id>${ID.wait}</tool-use-id>`) || isWaitTask(text));
    if (notification && !wakeUp) {
      wakeUp = notification;
      return skill('wake', ID.skillAgain);
    }
    return act('other', { type: 'text', text: 'Noted. [[tmux:other]]' });
  };

  /** Whether a notification names the background call's task id (from its "running in background with ID" result). */
  const isWaitTask = (notification: string): boolean => {
    const id = /running in background with ID: (\w+)/.exec(results.get(ID.wait)?.text ?? '')?.[1];
    return id !== undefined && notification.includes(`<task-id>${id}</task-id>`);
  };

  return { reply, steps, results, commands, base: () => base, wakeUp: () => wakeUp };
}

/** The statuses of the run's tasks (empty while no state file is there). */
async function statuses(project: string): Promise<Record<string, TaskStatus>> {
  try {
    const state = YAML.parse(await readFile(path.join(project, '.agent/sessions/latest.yaml'), 'utf8')) as {
      tasks: Record<string, { status: TaskStatus }>;
    };
    return Object.fromEntries(Object.entries(state.tasks).map(([name, task]) => [name, task.status]));
  } catch {
    return {};
  }
}
const active = (tasks: Record<string, TaskStatus>) => Object.keys(tasks).filter((name) => ACTIVE_STATUSES.has(tasks[name]!));

let home: string | undefined;
let skillDir: string;
let project: string | undefined;
let stub: MessagesApiStub | undefined;
let claude: InteractiveClaude | undefined;
const model = scriptedModel();

beforeAll(async () => {
  ({ home, skill: skillDir } = await installSkillCopy('dto-tmux-home-'));
  project = await mkdtemp(path.join(os.tmpdir(), 'dto-tmux-project-'));
  await execa('git', ['init', '-q'], { cwd: project });
  stub = await startMessagesApiStub(model.reply);
  claude = interactiveClaude({ cwd: project, home, stub, args: ['--allowedTools', `Skill(${SKILL})`] });
}, 120_000);

afterAll(async () => {
  await claude?.stop();
  // A failed test may leave the detached run going: stop its agents before the folders go.
  if (project && active(await statuses(project)).length > 0)
    await execa(path.join(skillDir, 'scripts', 'run'), ['cancel-session', '--grace_ms', '1000'], { cwd: project, reject: false });
  await stub?.close();
  if (project) await rm(project, { recursive: true, force: true });
  if (home) await rm(home, { recursive: true, force: true });
}, 60_000);

describe('the interactive claude CLI (tmux) with the skill: a run in the background leaves the conversation free', () => {
  it('answers a second question while tasks run, then wakes on the background wait and aggregates, with no permission prompt', async () => {
    const cli = claude!;
    const failOn = DIALOG_PATTERN;
    // One budget for every wait, inside the test's timeout, so a stuck step fails with its screen, not a bare timeout.
    const end = Date.now() + 170_000;
    const within = (ms: number) => Math.max(1000, Math.min(ms, end - Date.now()));
    await cli.start();

    await cli.type(`Rehearse a review of the repository with mock agents. ${MARK.run}`);
    await cli.waitForScreen(/Started; I will report when it ends\./, within(90_000), { failOn });
    expect(model.base(), await cli.screen()).toBe(skillDir);
    const before = await statuses(project!);
    expect(active(before), `tasks: ${JSON.stringify(before)}\n${await cli.screen()}`).not.toEqual([]);

    await cli.type(`What is 6 times 7? ${MARK.second}`);
    const answered = await cli.waitForScreen(/42 \[\[tmux:answer\]\]/, within(60_000), { failOn });
    // Read at once: the answer came while tasks were still running, so the user was not blocked by the run.
    const during = await statuses(project!);
    expect(active(during), `tasks right after the answer: ${JSON.stringify(during)}\n${answered}`).not.toEqual([]);

    const screen = await cli.waitForScreen(/Done\. \[\[tmux:done\]\]/, within(150_000), { failOn });
    const diagnosis = () =>
      `steps: ${model.steps.map((s) => `${s.step}@${stub!.requests.indexOf(s.request)}`).join(', ')}\n` +
      `wake-up: ${model.wakeUp()}\ntasks right after the answer: ${JSON.stringify(during)}\nscreen:\n${screen}`;

    if (process.env.DTO_E2E_FIGURES)
      console.log(
        JSON.stringify({
          requests: stub!.requests.map((r, i) => `${i} ${r.method} ${r.url} ${model.steps.find((s) => s.request === r)?.step ?? '-'}`),
        }),
      );
    // The calls, in order; the answer to message 2 was requested before the wake-up.
    const order = model.steps.filter((s) => s.step !== 'other').map((s) => s.step);
    expect(order, diagnosis()).toEqual(['skill', 'start', 'wait', 'started', 'answer', 'wake', 'aggregate', 'done']);
    const indexOf = (step: Step['step']) => stub!.requests.indexOf(model.steps.find((s) => s.step === step)!.request);
    expect(indexOf('answer'), diagnosis()).toBeGreaterThan(indexOf('started'));
    expect(indexOf('answer'), diagnosis()).toBeLessThan(indexOf('wake'));

    // The wake-up: the background wait ended by itself with exit code 0.
    expect(model.wakeUp(), diagnosis()).toMatch(/<status>completed<\/status>/);
    expect(model.wakeUp(), diagnosis()).toMatch(/\(exit code 0\)/);

    // Every Bash call of the model ran: no refusal in any tool result the stub received, and the expected outputs.
    const everyResult = stub!.requests
      .filter((r) => r.method === 'POST' && r.body.startsWith('{'))
      .flatMap((r) => toolResultsOf(JSON.parse(r.body) as RequestBody));
    const denied = everyResult.filter((r) => DENIAL.test(r.text));
    expect(denied, diagnosis()).toEqual([]);
    for (const id of BASH_IDS) expect(model.results.get(id)?.isError, `${id}: ${model.results.get(id)?.text}\n${diagnosis()}`).toBe(false);
    expect(model.results.get(ID.start)!.text).toMatch(/^Started session \S+ in the background \(pid \d+\): 6 tasks, mock agents\.$/m);
    expect(model.results.get(ID.wait)!.text).toMatch(/running in background with ID: \w+/);
    expect(model.results.get(ID.aggregate)!.text).toMatch(/Completed: 6 of 6 tasks/);
    // The background wait the model ran is the documented one: poll-session --until_done with run_in_background.
    const last = JSON.parse(model.steps.find((s) => s.step === 'done')!.request.body) as RequestBody;
    const calls = (last.messages ?? []).flatMap((m) =>
      m.role === 'assistant' && Array.isArray(m.content) ? (m.content as unknown[]) : [],
    );
    expect(calls, diagnosis()).toContainEqual(
      expect.objectContaining({ id: ID.wait, input: expect.objectContaining({ command: model.commands.wait(), run_in_background: true }) }),
    );
    expect(model.commands.wait()).toMatch(/poll-session --until_done$/);
    expect(screen).not.toMatch(DIALOG_PATTERN);

    const after = await statuses(project!);
    expect(after, diagnosis()).toEqual(Object.fromEntries(PLAN.tasks.map((t) => [t.id, 'completed'])));
  }, 180_000);
});
