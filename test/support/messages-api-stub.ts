// A loopback stub of the Anthropic Messages API, so the real `claude -p` runs real headless turns offline in tests.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the stub answers to one `POST /v1/messages`. */
export type StubReply =
  /**
   * `delayMs`: wait that long before answering (the request stays open, as a slow model's would).
   * `held`: answer by counts, not by a clock: see {@link StubOptions.hold}.
   */
  | { type: 'text'; text: string; inputTokens?: number; outputTokens?: number; delayMs?: number; held?: boolean }
  /** A tool call; `id` (default `toolu_stub_N`) lets a scripted model find the call's tool_result later. */
  | { type: 'tool_use'; name: string; input: Record<string, unknown>; id?: string; delayMs?: number }
  | { type: 'error'; status: number; errorType: string; message: string }
  /** Never answers (the client times out or is killed). */
  | { type: 'hang' };

/** One request the stub received. */
export interface StubRequest {
  method: string;
  url: string;
  /** Raw body (the whole conversation, system prompt and tools included). */
  body: string;
  /** `model` of the request body, if any. */
  model: string | null;
  apiKey: string | null;
}

/** A running stub. */
export interface MessagesApiStub {
  /** `http://127.0.0.1:PORT`: the value of ANTHROPIC_BASE_URL. */
  url: string;
  requests: StubRequest[];
  /** `POST /v1/messages` answered 429 because too many were in flight (see {@link StubOptions.maxInFlight}). */
  readonly rateLimited: number;
  /** The most `POST /v1/messages` requests that were in flight at once (answered or not yet). */
  readonly peakInFlight: number;
  close(): Promise<void>;
}

/** Options of {@link startMessagesApiStub}. */
export interface StubOptions {
  /**
   * A rate limit by concurrency: a `POST /v1/messages` that arrives while this many are in flight
   * already is answered HTTP 429 `rate_limit_error` with a `retry-after` header, at once.
   */
  maxInFlight?: number;
  /** The `retry-after` of those 429s (s). @default 1 */
  retryAfterS?: number;
  /**
   * When a `held` answer is sent: once `refusals` requests were answered 429 since it was accepted,
   * or once `quietMs` pass without a 429 (nobody is being refused), or at the latest after `maxMs`.
   * A held answer is thus given `refusals` 429s to others however fast or slow the clients retry:
   * a measure of contention that a slow machine does not shrink. @default refusals 12, quietMs 5000, maxMs 120000
   */
  hold?: { refusals?: number; quietMs?: number; maxMs?: number };
}

/**
 * Starts the stub on 127.0.0.1 (a free port). It answers `HEAD /` (and any other non-POST) with
 * 200, `POST /v1/messages/count_tokens` with a count, and `POST /v1/messages` with what `reply`
 * returns for the request: a server-sent-event stream (`message_start`, `content_block_start`,
 * `content_block_delta`, `content_block_stop`, `message_delta`, `message_stop`) or an error in the
 * API's JSON shape (`{type: "error", error: {type, message}}`).
 */
export async function startMessagesApiStub(
  reply: (request: StubRequest) => StubReply,
  options: StubOptions = {},
): Promise<MessagesApiStub> {
  const requests: StubRequest[] = [];
  let inFlight = 0;
  let peakInFlight = 0;
  let rateLimited = 0;
  const held = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let model: string | null = null;
      try {
        model = (JSON.parse(body) as { model?: string }).model ?? null;
      } catch {
        // Not JSON (HEAD, GET).
      }
      const request: StubRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        body,
        model,
        apiKey: (req.headers['x-api-key'] as string | undefined) ?? null,
      };
      requests.push(request);
      if (req.method !== 'POST') return void res.writeHead(200).end();
      if (request.url.startsWith('/v1/messages/count_tokens')) {
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ input_tokens: 10 }));
      }
      if (options.maxInFlight !== undefined && inFlight >= options.maxInFlight) {
        rateLimited++;
        for (const check of [...held]) check();
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(options.retryAfterS ?? 1) });
        return void res.end(
          JSON.stringify({
            type: 'error',
            error: { type: 'rate_limit_error', message: 'Number of concurrent requests has exceeded your rate limit' },
          }),
        );
      }
      inFlight++;
      peakInFlight = Math.max(peakInFlight, inFlight);
      res.once('close', () => inFlight--);
      const answered = reply(request);
      if (answered.type === 'text' && answered.held) return hold(() => answer(res, answered, model ?? 'claude-stub', requests.length));
      answer(res, answered, model ?? 'claude-stub', requests.length);
    });
  });
  /** Sends a held answer per {@link StubOptions.hold}: after N refusals to others, a quiet spell, or the longest hold. */
  const hold = (send: () => void) => {
    const { refusals = 12, quietMs = 5000, maxMs = 120_000 } = options.hold ?? {};
    const from = rateLimited;
    let quiet: NodeJS.Timeout | undefined;
    const release = () => {
      held.delete(check);
      clearTimeout(quiet);
      clearTimeout(longest);
      send();
    };
    const check = () => {
      if (rateLimited - from >= refusals) return release();
      clearTimeout(quiet);
      quiet = setTimeout(release, quietMs).unref();
    };
    const longest = setTimeout(release, maxMs).unref();
    held.add(check);
    quiet = setTimeout(release, quietMs).unref();
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get rateLimited() {
      return rateLimited;
    },
    get peakInFlight() {
      return peakInFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function answer(res: http.ServerResponse, reply: StubReply, model: string, n: number): void {
  if (reply.type === 'hang') return;
  if (reply.type === 'text' && reply.held) return answer(res, { ...reply, held: false }, model, n);
  if ((reply.type === 'text' || reply.type === 'tool_use') && reply.delayMs) {
    const { delayMs: _delay, ...now } = reply;
    setTimeout(() => answer(res, now, model, n), reply.delayMs);
    return;
  }
  if (reply.type === 'error') {
    res.writeHead(reply.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ type: 'error', error: { type: reply.errorType, message: reply.message } }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const send = (type: string, data: Record<string, unknown>) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  const inputTokens = reply.type === 'text' ? (reply.inputTokens ?? 11) : 11;
  const outputTokens = reply.type === 'text' ? (reply.outputTokens ?? 5) : 7;
  send('message_start', {
    message: {
      id: `msg_stub_${n}`,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: inputTokens, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    },
  });
  if (reply.type === 'text') {
    send('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    send('content_block_delta', { index: 0, delta: { type: 'text_delta', text: reply.text } });
  } else {
    send('content_block_start', {
      index: 0,
      content_block: { type: 'tool_use', id: reply.id ?? `toolu_stub_${n}`, name: reply.name, input: {} },
    });
    send('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: JSON.stringify(reply.input) } });
  }
  send('content_block_stop', { index: 0 });
  send('message_delta', {
    delta: { stop_reason: reply.type === 'text' ? 'end_turn' : 'tool_use', stop_sequence: null },
    usage: { output_tokens: outputTokens },
  });
  send('message_stop', {});
  res.end();
}

/**
 * A `reply` function driven by markers in the prompt, so concurrent agents each get their own answer:
 * - `[[stub:answer:WORD]]`: the text `Answer for WORD.` (input tokens = 100 + WORD's length, output tokens 7);
 * - `[[stub:auth]]`: HTTP 401 `authentication_error`;
 * - `[[stub:rate_once:WORD]]`: HTTP 429 the first time this marker is seen, then like `answer`;
 * - `[[stub:tool_loop]]`: a `Glob` tool call every turn (for `--max_turns`);
 * - `[[stub:hang]]`: no answer at all;
 * - `[[stub:hang_once:WORD]]`: no answer the first time this marker is seen, then like `answer`
 *   (a resumed conversation still carries the marker, so its request is the second);
 * - `[[stub:slow:WORD]]`: like `answer`, 6 s late (so concurrent agents' requests overlap);
 * - `[[stub:contended:WORD]]`: like `answer`, held by counts (see {@link StubOptions.hold}): sent once others were
 *   refused N times meanwhile, or when nobody is being refused;
 * - `[[stub:priced:WORD]]`: like `answer` with 10,000 input and 1,000 output tokens (one turn of
 *   claude-haiku-4-5 at $1/$5 per MTok: $0.015), 0.3 s late;
 * - `[[stub:slow_tools:WORD]]`: a `Glob` tool call for the first 3 requests, then like `answer`; each answer 1.5 s
 *   late (input tokens 100 + WORD's length, output tokens 7 per request), so an agent's progress grows over seconds;
 * - `[[stub:lazy:WORD]]`: the text `Done, all tests pass.` and no tool call (a sub-agent claiming work it never did);
 * - `[[stub:diligent:WORD]]`: by the tool results in the conversation: a `Write` of `src/WORD.ts`, then a `Bash`
 *   `npm test`, then the text `Wrote src/WORD.ts; all tests pass.`;
 * - no marker: the text `No marker.`.
 */
export function markerReplies(): (request: StubRequest) => StubReply {
  const seen = new Map<string, number>();
  return (request) => {
    const match = /\[\[stub:([a-z_]+)(?::([A-Za-z0-9-]+))?\]\]/.exec(request.body);
    if (!match) return { type: 'text', text: 'No marker.' };
    const [marker, kind, word = ''] = match;
    const count = (seen.get(marker) ?? 0) + 1;
    seen.set(marker, count);
    const text: StubReply = { type: 'text', text: `Answer for ${word}.`, inputTokens: 100 + word.length, outputTokens: 7 };
    switch (kind) {
      case 'answer':
        return text;
      case 'auth':
        return { type: 'error', status: 401, errorType: 'authentication_error', message: 'invalid x-api-key' };
      case 'rate_once':
        return count === 1
          ? { type: 'error', status: 429, errorType: 'rate_limit_error', message: 'Number of requests has exceeded your rate limit' }
          : text;
      case 'tool_loop':
        return { type: 'tool_use', name: 'Glob', input: { pattern: '*.md' } };
      case 'hang':
        return { type: 'hang' };
      case 'hang_once':
        return count === 1 ? { type: 'hang' } : text;
      case 'slow':
        return { ...text, delayMs: 6000 };
      case 'contended':
        return { ...text, held: true };
      case 'priced':
        return { ...text, inputTokens: 10_000, outputTokens: 1_000, delayMs: 300 };
      case 'lazy':
        return { type: 'text', text: 'Done, all tests pass.' };
      case 'diligent': {
        const results = (request.body.match(/"type":"tool_result"/g) ?? []).length;
        if (results === 0)
          return { type: 'tool_use', name: 'Write', input: { file_path: `src/${word}.ts`, content: `export const ok = 1;\n` } };
        if (results === 1) return { type: 'tool_use', name: 'Bash', input: { command: 'npm test', description: 'Run the tests' } };
        return { type: 'text', text: `Wrote src/${word}.ts; all tests pass.` };
      }
      case 'slow_tools':
        return count <= 3 ? { type: 'tool_use', name: 'Glob', input: { pattern: '*.md' }, delayMs: 1500 } : { ...text, delayMs: 1500 };
      default:
        return { type: 'text', text: `Unknown marker ${marker}.` };
    }
  };
}

/** Environment for running the real CLI against the stub: dummy key, temp HOME, no traffic elsewhere, no CLI retries. */
export function stubEnv(stub: MessagesApiStub, home: string): Record<string, string> {
  return {
    ANTHROPIC_BASE_URL: stub.url,
    ANTHROPIC_API_KEY: 'dummy',
    HOME: home,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    CLAUDE_CODE_MAX_RETRIES: '0',
  };
}
