// Helpers for scripted models: a Messages API stub reply function that plays the model from what the conversation holds.
import type { StubReply, StubRequest } from './messages-api-stub.ts';

/** A tool result the CLI sent back to the model. */
export interface ToolResult {
  id: string;
  text: string;
  isError: boolean;
}

/** One tool call the scripted model made. */
export interface ModelCall {
  kind: string;
  id: string;
  command?: string;
}

/** The parts of a Messages API request body a scripted model reads. */
export interface RequestBody {
  messages?: Array<{ role: string; content: unknown }>;
}

/** Every string inside a JSON value, depth first. */
export function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

/** The tool_result blocks of the user messages of a request, in order. */
export function toolResultsOf(body: RequestBody): ToolResult[] {
  const results: ToolResult[] = [];
  for (const message of body.messages ?? []) {
    if (message.role !== 'user' || !Array.isArray(message.content)) continue;
    for (const block of message.content as Array<Record<string, unknown>>) {
      if (block.type !== 'tool_result') continue;
      results.push({ id: String(block.tool_use_id), text: strings(block.content).join('\n'), isError: block.is_error === true });
    }
  }
  return results;
}

/** Where a conversation stands, as a scripted model reads it from one request. */
export interface ConversationTurn {
  body: RequestBody;
  /** The skill's folder from its `Base directory for this skill:` line, or null before the skill was loaded. */
  base: string | null;
  /** No assistant message yet: the conversation's first request. */
  fresh: boolean;
  /** The id of the tool call in the last assistant message, if any. */
  lastCall: string | undefined;
  /** The text of every message after the last assistant message (tool results, notifications, the user's words). */
  since: string;
}

/** Reads a Messages API request's body as {@link ConversationTurn}; tool results are also put in `results` by id. */
export function readTurn(request: { body: string }, results: Map<string, ToolResult>): ConversationTurn {
  const body = JSON.parse(request.body) as RequestBody;
  for (const result of toolResultsOf(body)) results.set(result.id, result);
  const messages = body.messages ?? [];
  const base = /Base directory for this skill: (\S+)/.exec(strings(messages).join('\n'))?.[1] ?? null;
  let lastAssistant = -1;
  messages.forEach((m, i) => {
    if (m.role === 'assistant') lastAssistant = i;
  });
  const content = lastAssistant >= 0 ? messages[lastAssistant]!.content : [];
  const lastCall = Array.isArray(content)
    ? ((content as Array<Record<string, unknown>>).find((block) => block.type === 'tool_use')?.id as string | undefined)
    : undefined;
  return { body, base, fresh: lastAssistant < 0, lastCall, since: strings(messages.slice(lastAssistant + 1)).join('\n') };
}

/** The three documented commands a model runs for a plan: start it detached, wait one slice, verify and aggregate. */
export interface RunBlocks {
  /** Empty when the prelude already started the work (for example with `run_in_background: true`). */
  start: string;
  wait: string;
  verify: string;
}

/**
 * A scripted model that, once `prelude` hands it the three blocks, runs them as the docs say: the start block, then
 * the wait block again while its exit code is 3 (at most `maxWaits` times), then the verify block when a wait ends
 * with exit 0, then the text `Done: the rehearsal finished.`. Until then `prelude` answers (loading a skill, writing
 * a plan, ...). Requests without `marker` or without the Bash tool (the CLI's side requests) get a plain text.
 */
export function blockFollowingModel(
  marker: string,
  prelude: (body: RequestBody, calls: ModelCall[]) => StubReply | RunBlocks,
  maxWaits = 40,
) {
  const calls: ModelCall[] = [];
  const results = new Map<string, ToolResult>();
  let blocks: RunBlocks | null = null;
  const bash = (kind: string, command: string): StubReply => {
    const id = `toolu_model_${calls.length}`;
    calls.push({ kind, id, command });
    return { type: 'tool_use', id, name: 'Bash', input: { command, description: `${kind} (${id})` } };
  };
  const reply = (request: StubRequest): StubReply => {
    if (request.method !== 'POST' || !request.body.includes(marker) || !request.body.includes('"name":"Bash"'))
      return { type: 'text', text: 'ok' };
    const body = JSON.parse(request.body) as RequestBody;
    const seen = toolResultsOf(body);
    for (const result of seen) results.set(result.id, result);
    if (!blocks) {
      const next = prelude(body, calls);
      if ('type' in next) return next;
      blocks = next;
      return blocks.start === '' ? bash('wait', blocks.wait) : bash('start', blocks.start);
    }
    const last = calls.at(-1)!;
    if (last.kind === 'start') return bash('wait', blocks.wait);
    if (last.kind === 'wait') {
      const waited = results.get(last.id)!;
      const waits = calls.filter((c) => c.kind === 'wait').length;
      if (/Exit code 3\b/.test(waited.text) && waits < maxWaits) return bash('wait', blocks.wait);
      if (!waited.isError) return bash('verify', blocks.verify);
      return { type: 'text', text: `The wait ended badly: ${waited.text.slice(-300)}` };
    }
    return { type: 'text', text: 'Done: the rehearsal finished.' };
  };
  return { reply, calls, results };
}
