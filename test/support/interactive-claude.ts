// The real `claude` CLI run INTERACTIVELY (no -p) in a detached tmux session, its model played by the Messages API stub.
//
// What the pinned CLI (2.1.330) does interactively with a temp HOME, as observed by answering it by hand in tmux:
// - First run, nothing in HOME: a welcome screen, then the onboarding checks that api.anthropic.com is reachable
//   (not ANTHROPIC_BASE_URL) and, offline, exits 1 with "Unable to connect to Anthropic services ... ENOTFOUND".
//   `hasCompletedOnboarding: true` (and a `theme`, so no theme choice) in `~/.claude.json` skips the onboarding.
// - Then "Accessing workspace: <dir> ... Is this a project you created or one you trust?" (❯ No, exit / Yes, I trust
//   this folder). Accepting it writes `projects[<dir>].hasTrustDialogAccepted: true` to `~/.claude.json`.
// - Then "Detected a custom API key in your environment ... Do you want to use this API key?" (Yes / ❯ No
//   (recommended)). Answering Yes writes `customApiKeyResponses: {approved: [<last 20 characters of the key>],
//   rejected: []}`.
// - Then the prompt ("❯", a footer "⏵⏵ auto mode on (shift+tab to cycle)") under a notice "Auto mode is now Claude
//   Code's default permission mode" (shown once; `hasSeenAutoDefaultNotice` records it). So the default permission mode
//   of the interactive client is "auto": a tool call that no rule allows goes to a server-side safety check, which
//   cannot pass the stub, and the client shows a dialog "Auto mode can't check actions in this session ... Enter to
//   stay in auto mode · shift+Tab to leave for accept edits mode and stop · Esc to cancel". A rule that allows the
//   call (for example a skill's `allowed-tools` while the skill is active) runs it without that check or dialog.
// So {@link InteractiveClaude.start} pre-seeds `~/.claude.json` with those four entries and no dialog appears; if one
// does anyway (another CLI version), it answers the trust and API-key dialogs with send-keys (Down/Up, Enter).
//
// With only the onboarding and theme seeded (`answerDialogs: true`), the trust dialog and then the API-key dialog
// appear, and start() answers them with send-keys.
// In a manual permission mode (`--permission-mode manual`) an unallowed Bash call shows "This command requires
// approval / Do you want to proceed?" instead of the auto-mode dialog; {@link DIALOG_PATTERN} matches both.
//
// With the stub: the interactive client sends `POST /v1/messages?beta=true` (stream: true) per model turn, as -p does;
// in the runs of test/skill/interactive-free-conversation.test.ts it sent nothing else (no `HEAD /`, no title or summary
// side request was seen, though a scripted model should still answer those: they come without the Bash tool in
// `tools`). In this version the body's `messages` also hold `role: "system"` entries (the environment text, and
// background-task events such as a plugin monitor's); the wake-up after a `run_in_background` Bash command is a user
// message whose text holds `<task-notification>` with `<task-id>`, `<tool-use-id>` (the Bash call's id),
// `<output-file>`, `<status>completed</status>` and `<summary>Background command "DESCRIPTION" completed (exit code
// N)</summary>`; the screen shows `● Background command "DESCRIPTION" completed (exit code N)`.
//
// Typing: `send-keys -l TEXT` arrives as one burst (a paste for the CLI); Enter is sent separately once the input box
// shows the text. The screen: the CLI redraws, and after a long tool output the scrollback no longer held the earlier
// turns, so wait for a line while it is on the screen (waitForScreen) rather than searching the capture afterwards.
//
// Closing the tmux server sends SIGHUP to the pane, but the CLI outlived it by seconds: stop() sends SIGTERM to the
// CLI's process (the pane's pid, recorded at start) first, then kills the server (and removes its socket file, which
// it leaves behind), then SIGKILL if the CLI is still there.
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stubEnv, type MessagesApiStub } from './messages-api-stub.ts';

/**
 * The real CLI installed as a devDependency (pinned), as claude-fixtures.ts names it (not imported from there: that
 * module registers vitest hooks when loaded).
 */
const REAL_CLAUDE = path.join(import.meta.dirname, '../../node_modules/.bin/claude');

/** Options of {@link interactiveClaude}. */
export interface InteractiveClaudeOptions {
  /** The project folder the CLI starts in; its trust dialog is pre-accepted. */
  cwd: string;
  /** The temporary HOME the CLI uses (its `~/.claude.json` is seeded at start; skills installed there load). */
  home: string;
  /** The stub that plays the model. */
  stub: MessagesApiStub;
  /** CLI arguments, e.g. `['--allowedTools', 'Skill(NAME)']`. No permission flags are added. */
  args?: string[];
  /** More environment, over {@link stubEnv}'s, PATH, SHELL and TERM. */
  env?: Record<string, string>;
  /**
   * Seed only the onboarding and theme, and answer the trust and API-key dialogs with send-keys, as a user would
   * (offline the onboarding itself cannot be passed: it exits). @default false: seed all, so no dialog appears.
   */
  answerDialogs?: boolean;
  /** Window size. @default 200 x 50 */
  width?: number;
  height?: number;
}

/** Options of {@link InteractiveClaude.waitForScreen}. */
export interface WaitOptions {
  /** Fail at once (with the screen in the error) when the screen matches this, e.g. {@link DIALOG_PATTERN}. */
  failOn?: RegExp;
}

/** A running interactive CLI in a private tmux server. */
export interface InteractiveClaude {
  /** The tmux socket name (`tmux -L <socket>`), unique to this instance. */
  readonly socket: string;
  /** Seeds `~/.claude.json`, starts the CLI in a detached tmux session and waits until its prompt is ready. */
  start(): Promise<void>;
  /** Types a user message (literal keys), waits until it shows in the input box, then sends Enter separately. */
  type(text: string): Promise<void>;
  /** The whole pane with its scrollback (`capture-pane -p -J -S -2000`), wrapped lines joined. */
  screen(): Promise<string>;
  /**
   * Polls the screen until it matches `pattern`.
   * @returns the screen that matched.
   * @throws Error holding the screen when `timeoutMs` passes, `options.failOn` matches first, or the CLI exited.
   */
  waitForScreen(pattern: RegExp, timeoutMs: number, options?: WaitOptions): Promise<string>;
  /** Stops the CLI and kills the tmux server; safe to call twice and when start() failed. */
  stop(): Promise<void>;
}

/**
 * A dialog or permission prompt of the interactive client: "Do you want to proceed?" (a Bash permission prompt), the
 * trust, API-key and auto-mode dialogs ("Enter to confirm", "Esc to cancel", "Auto mode can't check actions").
 */
export const DIALOG_PATTERN =
  /Do you want to proceed\?|Do you want to (?:allow|make|create|use this API key)|Auto mode can't check|Enter to confirm|Esc to cancel/;

/** The prompt is ready: the footer under the input box (auto mode's or the default mode's). */
const READY_PATTERN = /shift\+tab to cycle|\? for shortcuts/;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes what the CLI would write after its first-run dialogs were answered into `<home>/.claude.json` (merged into
 * what is there): onboarding done, a theme and, unless `dialogs` is false, the project folder trusted and the API key
 * approved.
 */
export async function seedClaudeConfig(home: string, projectDir: string, apiKey: string, dialogs = true): Promise<void> {
  const file = path.join(home, '.claude.json');
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch {
    // No config yet.
  }
  const projects = (config.projects ?? {}) as Record<string, Record<string, unknown>>;
  const approved = new Set((config.customApiKeyResponses as { approved?: string[] } | undefined)?.approved ?? []);
  approved.add(apiKey.slice(-20));
  for (const dir of new Set([projectDir, await realpath(projectDir)])) projects[dir] = { ...projects[dir], hasTrustDialogAccepted: true };
  const seeded = {
    ...config,
    hasCompletedOnboarding: true,
    theme: 'dark',
    hasSeenAutoDefaultNotice: true,
    ...(dialogs ? { customApiKeyResponses: { approved: [...approved], rejected: [] }, projects } : {}),
  };
  await writeFile(file, JSON.stringify(seeded, null, 2), { mode: 0o600 });
}

/**
 * The real, pinned `claude` CLI, interactive, in a detached tmux session of a private tmux server
 * (`tmux -L dto-claude-<pid>-<random>`), in `options.cwd`, with only the stub's environment ({@link stubEnv}: the stub's
 * URL, a dummy key, the temp HOME, no other traffic, no CLI retries) plus PATH, SHELL and TERM. Call `start()`, then
 * `type()` and `waitForScreen()`; always `stop()` (in `finally` or `afterAll`).
 */
export function interactiveClaude(options: InteractiveClaudeOptions): InteractiveClaude {
  const socket = `dto-claude-${process.pid}-${randomBytes(4).toString('hex')}`;
  const target = 'claude:0.0';
  const env: Record<string, string> = {
    ...stubEnv(options.stub, options.home),
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    SHELL: '/bin/bash',
    TERM: 'xterm-256color',
    LANG: 'C.UTF-8',
    ...options.env,
  };
  let started = false;
  let stopping: Promise<void> | null = null;
  let panePid: number | null = null;
  let socketFile: string | null = null;

  // TMUX unset: a test run from inside tmux must still reach only the private server.
  const tmux = (...args: string[]) =>
    execa('tmux', ['-L', socket, ...args], { env: { TMUX: '' }, reject: false, stdin: 'ignore', timeout: 15_000 });

  const screen = async (): Promise<string> => {
    const result = await tmux('capture-pane', '-p', '-J', '-S', '-2000', '-t', target);
    return result.exitCode === 0 ? result.stdout : `(no screen: ${result.stderr.trim()})`;
  };

  /** Only the visible window: where a live dialog is (an answered one may linger in the scrollback). */
  const visible = async (): Promise<string> => (await tmux('capture-pane', '-p', '-J', '-t', target)).stdout;

  const paneDead = async (): Promise<boolean> => {
    const result = await tmux('display-message', '-p', '-t', target, '#{pane_dead}');
    return result.exitCode !== 0 || result.stdout.trim() === '1';
  };

  const waitForScreen = async (pattern: RegExp, timeoutMs: number, waitOptions: WaitOptions = {}): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await screen();
      const dialog = waitOptions.failOn?.exec(await visible());
      if (dialog) throw new Error(`The screen shows "${dialog[0]}" while waiting for ${String(pattern)}:\n${text}`);
      if (pattern.test(text)) return text;
      if (await paneDead()) throw new Error(`The claude CLI exited while waiting for ${String(pattern)}:\n${text}`);
      if (Date.now() >= deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${String(pattern)}. Screen:\n${text}`);
      await sleep(250);
    }
  };

  const start = async (): Promise<void> => {
    if (started) throw new Error('interactiveClaude: start() was called twice');
    started = true;
    await mkdir(options.home, { recursive: true });
    await seedClaudeConfig(options.home, options.cwd, env.ANTHROPIC_API_KEY ?? '', !options.answerDialogs);
    // A config file of its own: the dead pane stays (its last words are the diagnosis), scrollback for capture-pane.
    const conf = path.join(options.home, `.tmux-${socket}.conf`);
    await writeFile(conf, 'set -g remain-on-exit on\nset -g history-limit 20000\nset -g status off\n');
    const width = String(options.width ?? 200);
    const height = String(options.height ?? 50);
    // More than one argument after the session options: tmux runs them directly, no shell quoting involved.
    const command = ['env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), REAL_CLAUDE, ...(options.args ?? [])];
    const created = await tmux('-f', conf, 'new-session', '-d', '-s', 'claude', '-x', width, '-y', height, '-c', options.cwd, ...command);
    if (created.exitCode !== 0) throw new Error(`tmux new-session failed: ${created.stderr}`);
    const pane = await tmux('display-message', '-p', '-t', target, '#{pane_pid} #{socket_path}');
    const [pid = '', socketPath = ''] = pane.stdout.trim().split(' ');
    panePid = Number(pid) || null;
    socketFile = socketPath || null;

    // Ready when the input box's footer shows; answer a first-run dialog the seeded config did not prevent.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const text = await visible();
      if (READY_PATTERN.test(text) && !DIALOG_PATTERN.test(text)) return;
      if (/Yes, I trust this folder/.test(text)) {
        await tmux('send-keys', '-t', target, 'Down');
        await sleep(300);
        await tmux('send-keys', '-t', target, 'Enter');
      } else if (/Do you want to use this API key\?/.test(text)) {
        await tmux('send-keys', '-t', target, 'Up');
        await sleep(300);
        await tmux('send-keys', '-t', target, 'Enter');
      } else if (await paneDead()) {
        throw new Error(`The claude CLI exited during start:\n${text}`);
      }
      if (Date.now() >= deadline) throw new Error(`The claude CLI's prompt did not appear within 60 s. Screen:\n${text}`);
      await sleep(500);
    }
  };

  const type = async (text: string): Promise<void> => {
    await tmux('send-keys', '-t', target, '-l', text);
    // The keys arrive as one burst (a paste, for the CLI): wait until the input box shows them before Enter.
    const tail = text.slice(-30);
    const deadline = Date.now() + 5000;
    while (!(await visible()).includes(tail) && Date.now() < deadline) await sleep(100);
    await sleep(300);
    await tmux('send-keys', '-t', target, 'Enter');
  };

  const stop = (): Promise<void> => (stopping ??= stopNow());
  const stopNow = async (): Promise<void> => {
    // Alive and still the CLI (its command line names it), so a reused pid is never signalled.
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
      } catch {
        return false;
      }
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('claude');
      } catch {
        return process.platform !== 'linux';
      }
    };
    // The pane's pid is the CLI itself (`env` execs it); it was started by this instance, a moment ago.
    if (panePid && alive(panePid)) {
      try {
        process.kill(panePid, 'SIGTERM');
      } catch {
        // Gone meanwhile.
      }
      for (let i = 0; i < 20 && alive(panePid); i++) await sleep(100);
    }
    await tmux('kill-server');
    // The server leaves its socket file behind.
    if (socketFile) await rm(socketFile, { force: true });
    if (panePid && alive(panePid)) {
      try {
        process.kill(panePid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  };

  return { socket, start, type, screen, waitForScreen, stop };
}
