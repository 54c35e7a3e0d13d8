// The INTERACTIVE real claude CLI (in tmux) with this repository installed as a PLUGIN, driven by a scripted model:
// invoking the skill arms the plugin's `attention` monitor (`poll-session --attention --keep_watching`); the model
// starts a run of mock agents detached and ends its turn WITHOUT any background wait of its own, so only the monitor
// can wake it: one task fails, the monitor prints one `[attention] ... failed ...` line, Claude Code wakes the model
// with it while the other tasks still run, and after the run ends no second event (no duplicate, no end line) came.
//
// Measured with Claude Code 2.1.330 (this test's first runs): the Skill tool emits its "skill invoked" signal with the
// name AS THE MODEL TYPED IT, and a monitor arms when its `when` equals `on-skill-invoke:<that name>`. A call
// `{skill: "distributed-task-orchestrator"}` (the name the `Skill(distributed-task-orchestrator)` allow rule permits,
// and the one commands/orchestrate.md names) arms only `on-skill-invoke:distributed-task-orchestrator`; the qualified
// `distributed-task-orchestrator:distributed-task-orchestrator` arms only the qualified `when`, and that rule does not
// allow it (the interactive client shows its auto-mode dialog instead). Hence plugin.json's short `when`.
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVE_STATUSES, type TaskStatus } from '../../scripts/lib/state/model.ts';
import { DIALOG_PATTERN, interactiveClaude, type InteractiveClaude } from '../support/interactive-claude.ts';
import { startMessagesApiStub, type MessagesApiStub, type StubReply, type StubRequest } from '../support/messages-api-stub.ts';
import { installPluginCopy, PLUGIN, type InstalledPlugin } from '../support/plugin-install.ts';
import { readTurn, strings, toolResultsOf, type RequestBody, type ToolResult } from '../support/scripted-model.ts';

/** The name the model gives the Skill tool: the one `--allowedTools "Skill(distributed-task-orchestrator)"` permits. */
const SKILL = PLUGIN;
const MARK = {
  monitor: '[[tmux:monitor]]',
  started: '[[tmux:started]]',
  noted: '[[tmux:noted]]',
  after: '[[tmux:after]]',
  afterAnswer: '[[tmux:after-answer]]',
};
const ID = { skill: 'toolu_monitor_skill', start: 'toolu_monitor_start' };
/** The monitor's command line, as poll-session runs it (after the launcher). */
const MONITOR_ARGS = 'poll-session --attention --keep_watching';
/** What Claude Code puts in a tool result it refused for lack of permission. */
const DENIAL =
  /requires approval|Permission for this tool use was denied|permission to use \S+ (?:has been|was) denied|doesn't want to proceed/i;

/** The task that fails. It starts after `scan`, so it fails well after the model's first turn has ended. */
const FAILING = 'lint';
/** Six mock tasks: `lint` fails about 10 s in, while `docs`, `quality` and `security` still run (about 33 s in all). */
const PLAN = {
  request: 'Review the repository',
  tasks: [
    { id: 'scan', goal: 'List the source files', delay_ms: 8000 },
    { id: 'docs', goal: 'Check the README against the code', delay_ms: 14_000 },
    { id: FAILING, goal: 'Run the linter', depends_on: ['scan'], delay_ms: 2000, fail: true },
    { id: 'quality', goal: 'Review code quality', depends_on: ['scan'], delay_ms: 12_000 },
    { id: 'security', goal: 'Review security', depends_on: ['scan'], delay_ms: 15_000 },
    { id: 'report', goal: 'Merge the reviews', depends_on: ['quality', 'security'], delay_ms: 10_000 },
  ],
};

/** One answer of the scripted model, with the request it answered. */
interface Step {
  step: 'skill' | 'start' | 'started' | 'noted' | 'after' | 'other';
  request: StubRequest;
}

/** One `<task-notification>` a request carries: its summary and its `<event>` lines. */
interface Notification {
  summary: string;
  events: string[];
}

/**
 * The `<task-notification>` blocks in the text the CLI itself put into a request's messages (text blocks and string
 * contents; not tool results, where the skill's own text arrives), as Claude Code 2.1.330 words a monitor's event:
 * a user message `<system-reminder>[SYSTEM NOTIFICATION - NOT USER INPUT] ... <task-notification><task-id>ID</task-id>
 * <summary>Monitor event: "DESCRIPTION"</summary><event>LINE</event></task-notification></system-reminder>`.
 */
function notificationsOf(body: RequestBody): Notification[] {
  const texts = (body.messages ?? []).flatMap((m) =>
    typeof m.content === 'string'
      ? [m.content]
      : Array.isArray(m.content)
        ? (m.content as Array<Record<string, unknown>>).flatMap((b) => (b.type === 'text' && typeof b.text === 'string' ? [b.text] : []))
        : [],
  );
  return texts.flatMap((text) =>
    [...text.matchAll(/<task-notification>\s*<task-id>[^<]*<\/task-id>[\s\S]*?<\/task-notification>/g)].map(([block]) => ({
      summary: /<summary>([\s\S]*?)<\/summary>/.exec(block)?.[1] ?? '',
      events: [...block.matchAll(/<event>([\s\S]*?)<\/event>/g)].map((m) => m[1]!),
    })),
  );
}

/** The `[attention] ...` lines that reached the model as monitor events, in order. */
const attentionEvents = (body: RequestBody): string[] =>
  notificationsOf(body)
    .flatMap((n) => n.events)
    .filter((line) => line.startsWith('[attention] '));

/** The statuses of the run's tasks (empty while no state file is there); synchronous, for the model's reply. */
function statusesNow(project: string): Record<string, TaskStatus> {
  try {
    const state = YAML.parse(readFileSync(path.join(project, '.agent/sessions/latest.yaml'), 'utf8')) as {
      tasks: Record<string, { status: TaskStatus }>;
    };
    return Object.fromEntries(Object.entries(state.tasks).map(([name, task]) => [name, task.status]));
  } catch {
    return {};
  }
}
const active = (tasks: Record<string, TaskStatus>) => Object.keys(tasks).filter((name) => ACTIVE_STATUSES.has(tasks[name]!));

/**
 * The scripted model. It reads its own last move (the last assistant message's tool call) and what came after it:
 * - message 1 ([[tmux:monitor]]): Skill, then Bash (foreground) `"<plugin root>/scripts/run" orchestrate - ... --detach`
 *   with the plan in a heredoc, the plugin root taken from the skill's "Base directory for this skill:" line, then the
 *   text "Started ..." (no background wait);
 * - a new turn whose new messages hold a monitor event `[attention] <task> failed`: the text "Noted the failure.",
 *   with the tasks' statuses read from latest.yaml as the request arrived;
 * - message 2 ([[tmux:after]]): a short text;
 * - anything else after a finished turn: a short text.
 * Requests without [[tmux:monitor]] or without the Bash tool (title and summary side requests) get "ok".
 */
function scriptedModel(project: () => string) {
  const steps: Step[] = [];
  const results = new Map<string, ToolResult>();
  let base: string | null = null;
  let tasksAtEvent: Record<string, TaskStatus> | null = null;
  const startCommand = () => `"${base}/scripts/run" orchestrate - --agent mock --workers 4 --detach <<'EOF'\n${YAML.stringify(PLAN)}EOF`;

  const reply = (request: StubRequest): StubReply => {
    if (request.method !== 'POST' || !request.body.includes(MARK.monitor) || !request.body.includes('"name":"Bash"'))
      return { type: 'text', text: 'ok' };
    const turn = readTurn(request, results);
    const { lastCall, since } = turn;
    base ??= turn.base;
    const act = (step: Step['step'], answer: StubReply): StubReply => {
      steps.push({ step, request });
      return answer;
    };

    switch (lastCall) {
      case ID.skill:
        if (!base) return act('other', { type: 'text', text: 'No base directory line in the conversation.' });
        return act('start', {
          type: 'tool_use',
          id: ID.start,
          name: 'Bash',
          input: { command: startCommand(), description: 'Start the rehearsal detached' },
        });
      case ID.start:
        return act('started', { type: 'text', text: `Started in the background. ${MARK.started}` });
      case undefined:
        break;
      default:
        return act('other', { type: 'text', text: `Unexpected last call ${String(lastCall)}.` });
    }
    if (turn.fresh) return act('skill', { type: 'tool_use', id: ID.skill, name: 'Skill', input: { skill: SKILL } });
    if (since.includes(MARK.after)) return act('after', { type: 'text', text: `Nothing else to do. ${MARK.afterAnswer}` });
    if (new RegExp(`\\[attention\\] ${FAILING} failed`).test(since) && !steps.some((s) => s.step === 'noted')) {
      tasksAtEvent = statusesNow(project());
      return act('noted', { type: 'text', text: `Noted the failure. ${MARK.noted}` });
    }
    return act('other', { type: 'text', text: 'Noted. [[tmux:other]]' });
  };

  return { reply, steps, results, startCommand, base: () => base, tasksAtEvent: () => tasksAtEvent };
}

/** A process: pid, parent pid, command line. */
interface Proc {
  pid: number;
  ppid: number;
  args: string;
}

async function processes(): Promise<Proc[]> {
  const { stdout } = await execa('ps', ['-eo', 'pid=,ppid=,args='], { reject: false });
  return stdout.split('\n').flatMap((line) => {
    const match = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    return match ? [{ pid: Number(match[1]), ppid: Number(match[2]), args: match[3]! }] : [];
  });
}

/** The processes below `root` (children, grandchildren, ...). */
function descendants(all: Proc[], root: number): Proc[] {
  const found: Proc[] = [];
  for (let frontier = [root]; frontier.length > 0;) {
    const next = all.filter((p) => frontier.includes(p.ppid));
    found.push(...next);
    frontier = next.map((p) => p.pid);
  }
  return found;
}

/**
 * The monitor's processes below the CLI: those whose command line runs poll-session with the monitor's flags from this
 * plugin's folder (Claude Code's shell wrapper, and the node process the launcher execs).
 */
async function monitorProcesses(cliPid: number, pluginRoot: string): Promise<Proc[]> {
  return descendants(await processes(), cliPid).filter(
    (p) => /poll-session(?:\.ts|\.cjs)? --attention --keep_watching/.test(p.args) && p.args.includes(pluginRoot),
  );
}

/** The node process among {@link monitorProcesses}' (not a shell). */
const isNode = (p: Proc) => /(?:^|\/)node$/.test(p.args.split(' ')[0]!);

/** Whether `pid` is still the monitor's process (its command line says so), so a reused pid is never signalled. */
function stillMonitor(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').includes('--keep_watching');
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let plugin: InstalledPlugin | undefined;
let project: string | undefined;
let stub: MessagesApiStub | undefined;
let claude: InteractiveClaude | undefined;
/** The CLI's pid (the tmux pane's), once started. */
let cliPid: number | undefined;
/** The monitor processes seen while the CLI ran: checked (and, if left behind, ended) after stop(). */
const monitors: Proc[] = [];
/** Monitor processes that outlived stop() and were ended by this file. */
const leftovers: Proc[] = [];
const model = scriptedModel(() => project!);

/** Stops the CLI, then checks that the monitor's processes are gone; ends (by pid) those left behind. */
async function stopAndCheck(): Promise<void> {
  // Whatever runs below the CLI now (a monitor armed after the test's look, or when the test failed early) is checked too.
  if (cliPid && plugin)
    for (const p of await monitorProcesses(cliPid, plugin.repo)) if (!monitors.some((m) => m.pid === p.pid)) monitors.push(p);
  await claude?.stop();
  const deadline = Date.now() + 10_000;
  while (monitors.some((p) => stillMonitor(p.pid)) && Date.now() < deadline) await sleep(200);
  for (const p of monitors) {
    if (!stillMonitor(p.pid) || leftovers.includes(p)) continue;
    leftovers.push(p);
    console.warn(`The plugin monitor (pid ${p.pid}: ${p.args}) outlived the CLI's stop(); ending it.`);
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      // Gone meanwhile.
    }
  }
}

beforeAll(async () => {
  plugin = await installPluginCopy('dto-tmux-plugin-home-');
  project = await mkdtemp(path.join(os.tmpdir(), 'dto-tmux-plugin-project-'));
  await execa('git', ['init', '-q'], { cwd: project });
  stub = await startMessagesApiStub(model.reply);
  claude = interactiveClaude({ cwd: project, home: plugin.home, stub, args: ['--allowedTools', `Skill(${SKILL})`] });
  // The plugin install (a copy, two CLI starts, scripts/build) took over 2 minutes under load.
}, 300_000);

afterAll(async () => {
  await stopAndCheck();
  // A failed test may leave the detached run going: stop its agents before the folders go.
  if (plugin && project && active(statusesNow(project)).length > 0)
    await execa(path.join(plugin.repo, 'scripts', 'run'), ['cancel-session', '--grace_ms', '1000'], { cwd: project, reject: false });
  await stub?.close();
  if (project) await rm(project, { recursive: true, force: true });
  if (plugin) await rm(plugin.home, { recursive: true, force: true });
}, 60_000);

describe('the interactive claude CLI (tmux) with the plugin installed: its attention monitor', () => {
  it('arms when the skill is invoked and wakes the model once, with the failure, while the other tasks still run', async () => {
    const cli = claude!;
    const failOn = DIALOG_PATTERN;
    // One budget for every wait, inside the test's timeout, so a stuck step fails with its screen, not a bare timeout.
    const end = Date.now() + 200_000;
    const within = (ms: number) => Math.max(1000, Math.min(ms, end - Date.now()));
    const requestList = () =>
      stub!.requests
        .map((r, i) => {
          const step = model.steps.find((s) => s.request === r)?.step ?? '-';
          const events = r.body.startsWith('{') ? attentionEvents(JSON.parse(r.body) as RequestBody) : [];
          return `${i} ${r.method} ${r.url} ${step} events=${JSON.stringify(events)}`;
        })
        .join('\n');
    const diagnosis = async () =>
      `steps: ${model.steps.map((s) => `${s.step}@${stub!.requests.indexOf(s.request)}`).join(', ')}\n` +
      `requests:\n${requestList()}\ntasks now: ${JSON.stringify(statusesNow(project!))}\n` +
      `tasks at the event: ${JSON.stringify(model.tasksAtEvent())}\nscreen:\n${await cli.screen()}`;

    await cli.start();
    const pane = await execa('tmux', ['-L', cli.socket, 'display-message', '-p', '-t', 'claude:0.0', '#{pane_pid}'], {
      env: { TMUX: '' },
    });
    cliPid = Number(pane.stdout.trim());
    expect(cliPid, pane.stdout + pane.stderr).toBeGreaterThan(0);

    // 1. The skill, the detached start, the end of the turn.
    await cli.type(`Rehearse the plan with mock agents. ${MARK.monitor}`);
    await cli.waitForScreen(/Started in the background\. \[\[tmux:started\]\]/, within(90_000), { failOn });
    expect(model.base(), await diagnosis()).toBe(plugin!.repo);
    const start = model.results.get(ID.start);
    expect(start?.isError, `${start?.text}\n${await diagnosis()}`).toBe(false);
    expect(start!.text).toMatch(/^Started session \S+ in the background \(pid \d+\): 6 tasks, mock agents\.$/m);

    // 2. The monitor was armed by the Skill call: its process runs below the CLI, from the plugin's folder.
    const armDeadline = Date.now() + within(15_000);
    while (!(await monitorProcesses(cliPid, plugin!.repo)).some(isNode) && Date.now() < armDeadline) await sleep(250);
    const armed = await monitorProcesses(cliPid, plugin!.repo);
    for (const p of armed) if (!monitors.some((m) => m.pid === p.pid)) monitors.push(p);
    const tree = descendants(await processes(), cliPid)
      .map((p) => `${p.pid} ${p.ppid} ${p.args.slice(0, 300)}`)
      .join('\n');
    expect(armed.filter(isNode), `no "${MONITOR_ARGS}" process below the CLI (pid ${cliPid}):\n${tree}\n${await diagnosis()}`).toHaveLength(
      1,
    );

    // 3. Only the monitor can wake the model now (no background wait was started): the failure's line does.
    const notedScreen = await cli.waitForScreen(/Noted the failure\. \[\[tmux:noted\]\]/, within(90_000), { failOn });
    const noted = model.steps.find((s) => s.step === 'noted')!;
    const wake = JSON.parse(noted.request.body) as RequestBody;
    const wakeEvents = attentionEvents(wake);
    expect(wakeEvents, await diagnosis()).toEqual([expect.stringMatching(new RegExp(`^\\[attention\\] ${FAILING} failed \\(`))]);
    // Worded as the monitor's event: its summary names the monitor's description from plugin.json.
    const manifest = JSON.parse(await readFile(path.join(plugin!.repo, '.claude-plugin/plugin.json'), 'utf8')) as {
      experimental: { monitors: Array<{ description: string }> };
    };
    const description = manifest.experimental.monitors[0]!.description;
    expect(notificationsOf(wake), await diagnosis()).toEqual([{ summary: `Monitor event: "${description}"`, events: wakeEvents }]);
    // It arrived while other tasks still ran (statuses read as the request arrived).
    const atEvent = model.tasksAtEvent()!;
    expect(atEvent[FAILING], await diagnosis()).toBe('failed');
    expect(active(atEvent), await diagnosis()).not.toEqual([]);
    // The wake-up's last message holds the event.
    const lastMessage = strings((wake.messages ?? []).at(-1)).join('\n');
    expect(lastMessage, await diagnosis()).toContain(wakeEvents[0]);

    // 4. After the run ended, one more user message: by then exactly one attention event reached the model.
    const runDeadline = Date.now() + within(90_000);
    while (active(statusesNow(project!)).length > 0 && Date.now() < runDeadline) await sleep(500);
    const ended = statusesNow(project!);
    expect(active(ended), await diagnosis()).toEqual([]);
    await cli.type(`Anything else? ${MARK.after}`);
    await cli.waitForScreen(/Nothing else to do\. \[\[tmux:after-answer\]\]/, within(60_000), { failOn });
    const after = JSON.parse(model.steps.find((s) => s.step === 'after')!.request.body) as RequestBody;
    const events = attentionEvents(after);
    expect(events, await diagnosis()).toHaveLength(1);
    expect(
      notificationsOf(after).map((n) => n.summary),
      await diagnosis(),
    ).toEqual([`Monitor event: "${description}"`]);
    expect(events[0], await diagnosis()).toMatch(new RegExp(`^\\[attention\\] ${FAILING} failed`));
    // --keep_watching prints no end line: no event of any kind says the run ended.
    const allEvents = notificationsOf(after).flatMap((n) => n.events);
    expect(allEvents, await diagnosis()).toEqual(events);
    expect(allEvents.join('\n'), await diagnosis()).not.toMatch(/All \d+ tasks ended/);
    expect(ended, await diagnosis()).toEqual({ ...Object.fromEntries(PLAN.tasks.map((t) => [t.id, 'completed'])), [FAILING]: 'failed' });

    // The calls, in order, and nothing refused.
    const order = model.steps.filter((s) => s.step !== 'other').map((s) => s.step);
    expect(order, await diagnosis()).toEqual(['skill', 'start', 'started', 'noted', 'after']);
    const everyResult = stub!.requests
      .filter((r) => r.method === 'POST' && r.body.startsWith('{'))
      .flatMap((r) => toolResultsOf(JSON.parse(r.body) as RequestBody));
    expect(
      everyResult.filter((r) => DENIAL.test(r.text)),
      await diagnosis(),
    ).toEqual([]);

    if (process.env.DTO_E2E_FIGURES) {
      console.log(JSON.stringify({ requests: requestList().split('\n'), lastMessage: (wake.messages ?? []).at(-1) }, null, 1));
      console.log(`screen at the event:\n${notedScreen}`);
    }

    // 5. The monitor lives as long as the CLI: stopping the CLI ends it.
    await stopAndCheck();
    expect(
      leftovers.map((p) => `${p.pid} ${p.args}`),
      'monitor processes that outlived stop()',
    ).toEqual([]);
  }, 240_000);
});
