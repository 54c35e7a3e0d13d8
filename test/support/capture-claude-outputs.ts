// Re-captures test/fixtures/claude-<version>-outputs.json: what the pinned `claude -p --output-format json` prints in each case.
// Usage: node --import tsx test/support/capture-claude-outputs.ts   (offline: runs against the loopback Messages API stub)
// Run it when the pinned @anthropic-ai/claude-code changes, then update references/cli-integration.md and the tests.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { startMessagesApiStub, stubEnv, type StubReply } from './messages-api-stub.ts';

/** The pinned CLI (not imported from claude-fixtures.ts, which needs a running vitest). */
const REAL_CLAUDE = path.join(import.meta.dirname, '../../node_modules/.bin/claude');
const glob: StubReply = { type: 'tool_use', name: 'Glob', input: { pattern: '*.md' } };
const cases: Array<[name: string, reply: StubReply, args?: string[], env?: Record<string, string | undefined>, killAfterMs?: number]> = [
  ['success', { type: 'text', text: 'Hello from the stub.' }],
  ['http_401', { type: 'error', status: 401, errorType: 'authentication_error', message: 'invalid x-api-key' }],
  ['http_403', { type: 'error', status: 403, errorType: 'permission_error', message: 'forbidden' }],
  ['http_400', { type: 'error', status: 400, errorType: 'invalid_request_error', message: 'bad request' }],
  ['http_429', { type: 'error', status: 429, errorType: 'rate_limit_error', message: 'Number of requests has exceeded your rate limit' }],
  ['http_500', { type: 'error', status: 500, errorType: 'api_error', message: 'Internal server error' }],
  ['http_529', { type: 'error', status: 529, errorType: 'overloaded_error', message: 'Overloaded' }],
  ['connection_refused', glob, [], { ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' }],
  ['not_logged_in', glob, [], { ANTHROPIC_API_KEY: undefined }],
  ['max_turns', glob, ['--max-turns', '1']],
  ['max_budget', glob, ['--max-budget-usd', '0.0001', '--max-turns', '5']],
  [
    'permission_denied',
    { type: 'tool_use', name: 'Bash', input: { command: 'rm -rf ./nothing-here', description: 'remove' } },
    ['--max-turns', '1'],
  ],
  ['usage_error', glob, ['--permission-mode', 'bogus']],
  ['sigterm', { type: 'hang' }, [], {}, 1500],
];

let next: StubReply = cases[0]![1];
const stub = await startMessagesApiStub(() => next);
const version = (await execa(REAL_CLAUDE, ['--version'])).stdout.split(' ')[0];
const out: Record<string, unknown> = {};
for (const [name, reply, args = [], env = {}, killAfterMs] of cases) {
  next = reply;
  const home = mkdtempSync(path.join(os.tmpdir(), 'claude-capture-'));
  const child = execa(REAL_CLAUDE, ['-p', '--output-format', 'json', ...args], {
    input: 'Say hello.',
    cwd: home,
    reject: false,
    env: { ...stubEnv(stub, home), ...env },
  });
  if (killAfterMs) setTimeout(() => child.kill('SIGTERM'), killAfterMs);
  const result = await child;
  out[name] = { args, exitCode: result.exitCode ?? null, signal: result.signal ?? null, stdout: result.stdout, stderr: result.stderr };
  process.stdout.write(`${name}: exit ${result.exitCode}\n`);
  rmSync(home, { recursive: true, force: true });
}
await stub.close();
writeFileSync(path.join(import.meta.dirname, `../fixtures/claude-${version}-outputs.json`), JSON.stringify(out, null, 2) + '\n');
