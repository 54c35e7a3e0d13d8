// A scripted model that follows SKILL.md's main path in Claude Code as the skill's text reaches it: load the skill,
// start the plan detached (the plan on stdin), wait with one background command (optionally also a Monitor on the
// attention stream), end the turn, and act on each wake-up as SKILL.md's table says.
import type { StubReply, StubRequest } from './messages-api-stub.ts';
import { strings, toolResultsOf, type RequestBody, type ToolResult } from './scripted-model.ts';
import { codeBlocks, withPlan } from './skill-blocks.ts';

/** The background wait's description: a wake-up names the command that ended by it (`Background command "..." completed`). */
const WAIT_DESCRIPTION = 'wait for the run';

/** One `<task-notification>` of a wake-up: a background command that ended, or one Monitor event line. */
export interface Notification {
  /** The command's exit code, when the notification says it ended. */
  exitCode: number | null;
  /** `<event>` text of a Monitor line, or null. */
  event: string | null;
  /** `<output-file>`, or null. */
  outputFile: string | null;
  /** The whole notification. */
  text: string;
}

/** The `<task-notification>` blocks of a text, in order. */
export function notificationsIn(text: string): Notification[] {
  return [...text.matchAll(/<task-notification>([\s\S]*?)<\/task-notification>/g)].map(([, inner]) => {
    const exit = /exit code (\d+)/i.exec(inner!);
    return {
      exitCode: exit ? Number(exit[1]) : null,
      event: /<event>([\s\S]*?)<\/event>/.exec(inner!)?.[1] ?? null,
      outputFile: /<output-file>([^<]+)<\/output-file>/.exec(inner!)?.[1]?.trim() ?? null,
      text: inner!,
    };
  });
}

/** What the model did, in order. */
export interface Step {
  kind: 'skill' | 'start' | 'wait' | 'toolsearch' | 'monitor' | 'end_turn' | 'read' | 'aggregate' | 'answer' | 'noted';
  id: string;
  command?: string;
}

/** Options of {@link skillFollowingModel}. */
export interface SkillFollowingOptions {
  /** Text only the main conversation carries (side requests of the CLI get a plain answer). */
  marker: string;
  /** The skill's name for the Skill tool. */
  skill: string;
  /** The model's plan (YAML text) for the start block's heredoc; with `command`, unused. */
  plan: string;
  /**
   * The user typed the plugin's `/orchestrate` instead: the model takes its start and wait blocks from the command's
   * text (the plan file `plan` replacing PLAN, `workers` replacing `--workers N`) and loads the skill only at a wake-up.
   */
  command?: { planFile: string; workers: string };
  /**
   * Background mode (SKILL.md section 4) instead: the start is the `spawn-agent --detach` block run as written, and the
   * background wait gets `--expect N`.
   */
  backgroundMode?: { expect: number };
  /** Flags to put in place of the start block's `--workers 4`, e.g. `--workers 8`. */
  workers?: string;
  /** Also watch `poll-session --attention` with the Monitor tool (SKILL.md: long runs). */
  monitor?: boolean;
  /** The project folder (the report the model reads on exit 0 is there). */
  project: string;
  /** Called with each Monitor event line the moment the model is woken for it (e.g. to look at the state then). */
  onEvent?: (event: string) => void;
}

/**
 * The scripted model. Main-conversation requests (those holding `marker` and offering the Bash tool) are counted in
 * `requests`; Monitor event lines it was woken for are kept in `events`, wake-ups of the background wait in `wakeUps`,
 * every tool result in `results`.
 */
export function skillFollowingModel(options: SkillFollowingOptions) {
  const steps: Step[] = [];
  const results = new Map<string, ToolResult>();
  const events: string[] = [];
  const wakeUps: Notification[] = [];
  let requests = 0;
  let blocks: { start: string; wait: string; attention: string; aggregate: string; spawn?: string } | null = null;
  const call = (kind: Step['kind'], name: string, input: Record<string, unknown>): StubReply => {
    const id = `toolu_bg_${steps.length}`;
    steps.push({ kind, id, command: typeof input.command === 'string' ? input.command : undefined });
    return { type: 'tool_use', id, name, input };
  };
  const text = (kind: Step['kind'], body: string): StubReply => {
    steps.push({ kind, id: `text_${steps.length}` });
    return { type: 'text', text: body };
  };
  const waitInBackground = () => {
    const expect = options.backgroundMode ? ` --expect ${options.backgroundMode.expect}` : '';
    return call('wait', 'Bash', { command: `${blocks!.wait}${expect}`, description: WAIT_DESCRIPTION, run_in_background: true });
  };

  const reply = (request: StubRequest): StubReply => {
    if (request.method !== 'POST' || !request.body.includes(options.marker) || !request.body.includes('"name":"Bash"'))
      return { type: 'text', text: 'ok' };
    requests++;
    const body = JSON.parse(request.body) as RequestBody;
    for (const result of toolResultsOf(body)) results.set(result.id, result);
    const last = steps.at(-1);
    if (!last && options.command) {
      blocks = commandBlocksOf(strings(body.messages).join('\n'), options.command);
      if (!blocks) return text('answer', 'The command text has no start or wait block.');
      return call('start', 'Bash', { command: blocks.start, description: 'start' });
    }
    if (!last) return call('skill', 'Skill', { skill: options.skill });
    if (last.kind === 'skill' && !blocks) {
      blocks = blocksOf(strings(body.messages).join('\n'));
      if (!blocks) return text('answer', 'The skill text has no start, wait, attention or aggregate block.');
      if (options.backgroundMode) return call('start', 'Bash', { command: blocks.spawn!, description: 'start' });
      const start = withPlan(blocks.start, options.plan);
      return call('start', 'Bash', {
        command: options.workers ? start.replace('--workers 4', options.workers) : start,
        description: 'start',
      });
    }
    if (last.kind === 'start') {
      if (results.get(last.id)?.isError) return text('answer', `The start failed: ${results.get(last.id)!.text.slice(-400)}`);
      return options.monitor ? call('toolsearch', 'ToolSearch', { query: 'select:Monitor', max_results: 1 }) : waitInBackground();
    }
    if (last.kind === 'toolsearch')
      return call('monitor', 'Monitor', { command: blocks!.attention, description: 'attention', timeout_ms: 1_800_000 });
    if (last.kind === 'monitor') return waitInBackground();
    if (last.kind === 'wait') return text('end_turn', 'The run is going in the background; I will report when it ends.');
    if (last.kind === 'read' || last.kind === 'aggregate') return text('answer', 'Done: the run ended and the report is read.');
    if (last.kind === 'skill') {
      // The skill was invoked again at a wake-up to renew its approval: now the command the wake-up needs.
      const exit = wakeUps.at(-1)?.exitCode;
      if (exit === 3) return waitInBackground();
      return call('aggregate', 'Bash', { command: blocks!.aggregate, description: 'aggregate' });
    }
    // A new turn: a wake-up. Monitor lines are noted; the background wait's end is acted on by its exit code.
    const woke = notificationsIn(lastUserText(body));
    const ended = woke.find((n) => n.event === null && n.exitCode !== null && n.text.includes(WAIT_DESCRIPTION));
    for (const n of woke) {
      if (n.event === null) continue;
      events.push(n.event);
      options.onEvent?.(n.event);
    }
    if (!ended) return text('noted', 'Noted.');
    wakeUps.push(ended);
    if (ended.exitCode === 0) return call('read', 'Read', { file_path: `${options.project}/.agent/final_output.md` });
    return call('skill', 'Skill', { skill: options.skill });
  };
  return {
    reply,
    steps,
    results,
    events,
    wakeUps,
    get requests() {
      return requests;
    },
  };
}

/** The last user message's text (where a wake-up's notifications are). */
function lastUserText(body: RequestBody): string {
  const users = (body.messages ?? []).filter((m) => m.role === 'user');
  return strings(users.at(-1)?.content).join('\n');
}

/** The blocks the model uses, taken from SKILL.md as the conversation holds it (the skill's folder filled in); null before it. */
export function blocksOf(conversation: string) {
  const sh = shBlocks(conversation);
  const pick = (...needles: string[]) => sh.find((b) => needles.every((n) => b.includes(n)));
  const start = pick('orchestrate - --agent mock', '--detach');
  const wait = pick('poll-session --until_done');
  const attention = pick('poll-session --attention');
  const aggregate = pick('scripts/run" aggregate');
  const spawn = pick('spawn-agent --session_id', '--detach');
  if (!start || !wait || !attention || !aggregate || !spawn) return null;
  return { start: `${start}\n`, wait, attention, aggregate, spawn };
}

/** The blocks of the plugin's /orchestrate as the conversation holds it (the plugin's folder filled in). */
function commandBlocksOf(conversation: string, command: { planFile: string; workers: string }) {
  const sh = shBlocks(conversation);
  const start = sh.find((b) => b.includes('orchestrate PLAN'));
  const wait = sh.find((b) => b.includes('poll-session --until_done'));
  const launcher = /^("[^"]+\/scripts\/run")/.exec(start ?? '')?.[1];
  if (!start || !wait || !launcher) return null;
  return {
    start: start.replace('PLAN', command.planFile).replace('--workers N', command.workers),
    wait,
    attention: `${launcher} poll-session --attention`,
    aggregate: `${launcher} aggregate`,
  };
}

/** The bodies of the `sh` blocks of a conversation's text, in order, without trailing white space. */
function shBlocks(conversation: string): string[] {
  return codeBlocks(conversation.replace(/\r/g, ''))
    .filter((b) => b.lang === 'sh')
    .map((b) => b.body.trimEnd());
}
