// Child processes for the benchmarks: start the skill's scripts (never through npx), wait, read RSS, watch the state from outside.
import { spawn, type ChildProcess } from 'node:child_process';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { scriptArgv } from '../../scripts/lib/launcher/launch.ts';

/** A started child and what it printed. */
export interface Child {
  proc: ChildProcess;
  pid: number;
  /** Date.now() just before spawn(). */
  spawnedAt: number;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

/** Starts a command with stdout/stderr collected (no shell). */
export function startCommand(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Child {
  const spawnedAt = Date.now();
  const proc = spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const child: Child = { proc, pid: proc.pid!, spawnedAt, stdout: '', stderr: '', exited: Promise.resolve(null) };
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (child.stdout += chunk));
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (child.stderr += chunk));
  child.exited = new Promise((resolve) => proc.on('close', (code) => resolve(code)));
  return child;
}

/**
 * Starts one of the skill's scripts the way the launcher does (prebuilt JavaScript when fresh, else
 * node --import tsx); `env.DTO_LAUNCH` (tsx or dist) picks the form for this child and its own children.
 */
export function startScript(name: string, args: readonly string[], cwd: string, env?: NodeJS.ProcessEnv): Child {
  const saved = process.env.DTO_LAUNCH;
  if (env?.DTO_LAUNCH !== undefined) process.env.DTO_LAUNCH = env.DTO_LAUNCH;
  try {
    return startCommand(process.execPath, scriptArgv(name, args), cwd, env);
  } finally {
    if (saved === undefined) delete process.env.DTO_LAUNCH;
    else process.env.DTO_LAUNCH = saved;
  }
}

/** Waits for a child, killing it (by its pid) after `timeoutMs`. */
export async function waitFor(child: Child, timeoutMs: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const result = await Promise.race([child.exited, timeout]);
  clearTimeout(timer);
  if (result === 'timeout') {
    child.proc.kill('SIGKILL');
    await child.exited;
    throw new Error(`process ${child.pid} did not end within ${timeoutMs} ms; stderr: ${child.stderr.slice(-500)}`);
  }
  return result;
}

/** VmRSS and VmHWM (peak RSS) of a process, in kB, from /proc. */
export async function memoryOf(pid: number): Promise<{ rssKB: number; peakKB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKB: field('VmRSS'), peakKB: field('VmHWM') };
}

/** A temporary project folder with its session folder created. */
export async function tempProject(
  prefix: string,
): Promise<{ dir: string; sessionDir: string; statePath: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `dto-bench-${prefix}-`));
  const sessionDir = path.join(dir, '.agent', 'sessions');
  await mkdir(sessionDir, { recursive: true });
  return { dir, sessionDir, statePath: path.join(sessionDir, 'latest.yaml'), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Task statuses seen in the state file's text (block YAML: `  name:` then `    status: x`), without parsing it. */
export function scanStatuses(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let inTasks = false;
  let current: string | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(' ')) {
      inTasks = line === 'tasks:';
      continue;
    }
    if (!inTasks) continue;
    const key = /^ {2}("?)([^" ][^"]*)\1:$/.exec(line);
    if (key) {
      current = key[2]!;
      continue;
    }
    const status = /^ {4}status: (\w+)$/.exec(line);
    if (status && current) out.set(current, status[1]!);
  }
  return out;
}

/**
 * Watches the state file from outside (fs.watch on the session folder, plus a 20 ms poll) and
 * records when each task was first seen in each status: the time of the wake-up that led to the read.
 */
export class StateObserver {
  /** task -> status -> Date.now() when first seen. */
  readonly seen = new Map<string, Map<string, number>>();
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private reading = false;
  private pendingSince: number | null = null;
  private listeners: Array<() => void> = [];

  constructor(private readonly sessionDir: string) {}

  start(): void {
    this.watcher = watch(this.sessionDir, () => this.wake());
    this.timer = setInterval(() => this.wake(), 20);
  }

  stop(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }

  /** When `task` was first seen with `status` (Date.now()), if it was. */
  when(task: string, status: string): number | undefined {
    return this.seen.get(task)?.get(status);
  }

  /** Resolves once `predicate` holds for the statuses seen (checked after every read). */
  until(predicate: (observer: StateObserver) => boolean, timeoutMs: number): Promise<void> {
    if (predicate(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`observer: condition not met within ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        if (!predicate(this)) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== check);
        resolve();
      };
      this.listeners.push(check);
    });
  }

  private wake(): void {
    this.pendingSince ??= Date.now();
    if (!this.reading) void this.read();
  }

  private async read(): Promise<void> {
    this.reading = true;
    while (this.pendingSince !== null) {
      const at = this.pendingSince;
      this.pendingSince = null;
      let text = '';
      try {
        text = await readFile(path.join(this.sessionDir, 'latest.yaml'), 'utf8');
      } catch {
        continue;
      }
      for (const [task, status] of scanStatuses(text)) {
        let statuses = this.seen.get(task);
        if (!statuses) this.seen.set(task, (statuses = new Map<string, number>()));
        if (!statuses.has(status)) statuses.set(status, at);
      }
      for (const listener of [...this.listeners]) listener();
    }
    this.reading = false;
  }
}
