// Helpers for spawn-agent tests: the fake `claude` on PATH, its call log, and what a run left behind.
import { execa } from 'execa';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import matter from 'gray-matter';
import { afterAll, beforeAll } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { markerReplies, startMessagesApiStub, stubEnv, type MessagesApiStub, type StubRequest } from './messages-api-stub.ts';
import { resolveSessionPaths } from '../../scripts/lib/state/session-paths.ts';
import { readState } from '../../scripts/lib/state/state-store.ts';

// Removed after the whole file, not after each test, so tests may run concurrently.
const created: string[] = [];
afterAll(async () => {
  await Promise.all(created.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A temporary directory, removed after the test file. */
export async function tempDir(prefix = 'dto-claude-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** A temporary project (its session paths and state), removed after the test file; safe in concurrent tests. */
export async function claudeProject(prefix = 'dto-claude-') {
  const dir = await tempDir(prefix);
  const paths = resolveSessionPaths({ cwd: dir });
  return { dir, paths, state: () => readState(paths) };
}

/** Folder holding the fake `claude` executable. */
export const FAKE_CLAUDE_DIR = path.join(import.meta.dirname, 'fake-claude');

/** The real CLI installed as a devDependency (`@anthropic-ai/claude-code`, pinned). */
export const REAL_CLAUDE = path.join(import.meta.dirname, '../../node_modules/.bin/claude');

/**
 * A PATH with the fake `claude` first, then node and the system folders; nothing else (so a real
 * `claude` from node_modules/.bin or the machine is never found by mistake).
 */
export function fakePath(withFake = true): string {
  return [...(withFake ? [FAKE_CLAUDE_DIR] : []), path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter);
}

/** One call of the fake claude, as it logged it (FAKE_CLAUDE_LOG). */
export interface FakeCall {
  argv: string[];
  stdin: string;
  cwd: string;
  scenario: string;
}

/** The fake's calls logged in `dir` (in no particular order). */
export async function fakeCalls(dir: string): Promise<FakeCall[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const calls = await Promise.all(names.map(async (name) => JSON.parse(await readFile(path.join(dir, name), 'utf8')) as FakeCall));
  return calls;
}

/** A temp project plus the env that puts the fake claude on PATH and logs its calls. */
export async function fakeProject(scenario = 'success', extraEnv: Record<string, string> = {}) {
  const project = await claudeProject();
  const logDir = await tempDir('dto-fake-log-');
  const env = { PATH: fakePath(), FAKE_CLAUDE_SCENARIO: scenario, FAKE_CLAUDE_LOG: logDir, CLAUDE_BIN: '', ...extraEnv };
  return {
    ...project,
    env,
    logDir,
    calls: () => fakeCalls(logDir),
    events: () => readEvents(project.paths.eventsPath),
    /** The result file of a task: frontmatter and body. */
    async result(task: string, outputDir = '.agent/results') {
      const file = matter(await readFile(path.join(project.dir, outputDir, `${task}.md`), 'utf8'), {});
      return { data: file.data, body: file.content };
    },
  };
}

/**
 * One loopback Messages API stub for a whole test file, answering by the `[[stub:...]]` markers in
 * prompts (see markerReplies): started before the file's tests, closed after them.
 * @returns `stub()` (valid inside tests) and `requestsWith(marker)`: the POSTs to /v1/messages whose body carries `marker`.
 */
export function useMarkerStub(): { stub: () => MessagesApiStub; requestsWith: (marker: string) => StubRequest[] } {
  let stub: MessagesApiStub | undefined;
  beforeAll(async () => {
    stub = await startMessagesApiStub(markerReplies());
  });
  afterAll(async () => {
    await stub?.close();
  });
  const current = (): MessagesApiStub => {
    if (!stub) throw new Error('the Messages API stub is used before beforeAll started it');
    return stub;
  };
  return {
    stub: current,
    requestsWith: (marker) =>
      current().requests.filter((r) => r.method === 'POST' && r.url.startsWith('/v1/messages') && r.body.includes(marker)),
  };
}

/** Options of {@link runClaudeAsClient}. */
export interface ClientRunOptions {
  /** The project folder the CLI runs in. */
  cwd: string;
  /** The user's prompt (standard input). */
  input: string;
  /** The stub that plays the model, and the temp HOME the CLI uses. */
  stub: MessagesApiStub;
  home: string;
  /** `--max-turns`. */
  maxTurns: number;
  /** `--allowedTools`, e.g. `Bash,Write,Skill`, or only `Skill(distributed-task-orchestrator)`. */
  allowedTools: string;
  /** `--permission-mode`; `default` passes none (Claude Code's default mode, where unapproved commands are refused). @default acceptEdits */
  permissionMode?: 'acceptEdits' | 'default';
  /** The whole run's limit (ms). @default 150000 */
  timeoutMs?: number;
  /** The Bash tool's default limit (`BASH_DEFAULT_TIMEOUT_MS`), lowered so the cut happens in seconds. */
  bashLimitMs: number;
  /** More environment (e.g. `CLAUDE_BIN` for nested agents). */
  env?: Record<string, string>;
}

/**
 * Runs the pinned real `claude -p` as Claude Code's user would, with the model played by `stub`:
 * stream-json output, only the stub's and these variables in its environment (no network, no
 * account), at most `timeoutMs` (150 s by default).
 * @returns the run, and its stdout parsed as JSON lines (the last one is the `result`).
 */
export async function runClaudeAsClient(options: ClientRunOptions) {
  const result = await execa(
    REAL_CLAUDE,
    [
      '-p',
      '--output-format',
      'stream-json',
      '--verbose',
      '--max-turns',
      String(options.maxTurns),
      ...((options.permissionMode ?? 'acceptEdits') === 'default' ? [] : ['--permission-mode', options.permissionMode ?? 'acceptEdits']),
      '--allowedTools',
      options.allowedTools,
    ],
    {
      cwd: options.cwd,
      input: options.input,
      env: {
        ...stubEnv(options.stub, options.home),
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        SHELL: '/bin/bash',
        BASH_DEFAULT_TIMEOUT_MS: String(options.bashLimitMs),
        ...options.env,
      },
      extendEnv: false,
      reject: false,
      timeout: options.timeoutMs ?? 150_000,
    },
  );
  const lines = result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { result, lines };
}

/** A `claude` that writes its arguments (one per line) to $ARGS_LOG/<time>-<pid>.args, then becomes the real CLI. */
export async function argLoggingClaude(): Promise<string> {
  const bin = path.join(await tempDir('dto-wrap-'), 'claude');
  await writeFile(bin, `#!/bin/sh\nprintf '%s\\n' "$@" > "$ARGS_LOG/$(date +%s%N)-$$.args"\nexec ${JSON.stringify(REAL_CLAUDE)} "$@"\n`);
  await chmod(bin, 0o755);
  return bin;
}

/** The argument lists logged in `dir`, oldest first. */
export async function loggedArgs(dir: string): Promise<string[][]> {
  const names = (await readdir(dir)).sort();
  return Promise.all(names.map(async (name) => (await readFile(path.join(dir, name), 'utf8')).split('\n').slice(0, -1)));
}
