/**
 * worker: on any host, pull the tasks of `orchestrate --backend bullmq` from the queue and run their agents in this host's checkout.
 *
 * Usage:   "$S/scripts/run" worker --connection URL [--concurrency N] [--agent mock|claude] [--cwd DIR] [--queue NAME] [--name NAME]
 * Example: DTO_BULLMQ_CONNECTION=postgres://dto:secret@db.internal:5432/dto "$S/scripts/run" worker --agent claude --concurrency 2 --cwd ~/checkout
 *          (S is this skill's folder. The connection can come from $DTO_BULLMQ_CONNECTION instead, which keeps it out of `ps`.)
 * Reads:   the queue's jobs (task name, goal, agent kind, dependency results: data only, never a command).
 * Writes:  nothing of the session (the orchestrating host keeps latest.yaml and the result files); dependency results for
 *          the agent's prompt under <cwd>/.agent/remote-results/<session>/; one JSON line per job start and end on stdout.
 * Exit:    0 after SIGTERM/SIGINT once running jobs finished (a second signal leaves at once: the jobs stall and are
 *          re-run elsewhere), 2 usage error or unreachable server.
 */
import { existsSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { runMain, type CommandSpec, type ParsedFlags } from './lib/cli/cli.ts';
import { flag, parseOptionsOrShowHelp } from './lib/cli/options.ts';
import { EXIT, usageError } from './lib/core/errors.ts';
import { guardBrokenOutput } from './lib/execution/detach.ts';
import { launcherCommand } from './lib/launcher/dist.ts';
import { RUNNERS } from './lib/state/model.ts';
import { MANY_TASK_CLAUDE_FLAGS, readClaudeSettings } from './lib/agents/claude-options.ts';
import { checkClaudeReady } from './lib/agents/claude-preflight.ts';
import { createClaudeExecutor } from './lib/agents/claude-agent.ts';
import { CONNECTION_ENV, takeConnection } from './lib/backend/connection.ts';
import { DEFAULT_QUEUE, QUEUE_NAME_PATTERN, STALL_TIMING } from './lib/backend/bullmq-engine.ts';
import { startTaskWorker } from './lib/backend/task-worker.ts';

/** Shortest stalled-job timings accepted (ms): BullMQ renews a lock every lockDuration / 2. */
const MIN_LOCK_MS = 1000;

export const spec = {
  name: 'worker',
  summary:
    'Runs on any host: pulls the tasks that `orchestrate --backend bullmq` adds to a BullMQ queue (PostgreSQL or Redis), runs ' +
    "each task's agent in --cwd (this host's checkout, with its own credentials), and sends progress and the result back through " +
    'the queue; the orchestrating host records them in its session. A job asking for another agent kind than --agent fails with a ' +
    'clear error, so a host only ever spends what its owner allowed. If this host dies mid-task, another worker takes the task ' +
    `over after about ${(STALL_TIMING.lockDurationMs + STALL_TIMING.stalledIntervalMs) / 1000} s (a stalled job), counted as another attempt.`,
  usage: '--connection URL [--concurrency N] [--agent mock|claude] [--cwd DIR] [--queue NAME] [--name NAME]',
  flags: {
    connection: flag.string({
      placeholder: 'URL',
      description: `postgres://user:password@host:port/db or redis://host:port (default $${CONNECTION_ENV}). A secret: never printed.`,
    }),
    concurrency: flag.integer({
      placeholder: 'N',
      description: 'Tasks this worker runs at once (default 1).',
      min: 1,
      max: 64,
      default: 1,
    }),
    agent: flag.choice({
      values: RUNNERS,
      default: 'mock',
      description: "The agents this host runs: mock (default: spends nothing) or claude (real agents on this host's account).",
    }),
    cwd: flag.string({ placeholder: 'DIR', description: 'The checkout agents work in (default the current folder).' }),
    queue: flag.string({ placeholder: 'NAME', description: `Queue name; the same as orchestrate's --queue (default ${DEFAULT_QUEUE}).` }),
    name: flag.string({ placeholder: 'NAME', description: "This worker's name in the report (default <hostname>:<pid>)." }),
    lock_ms: flag.integer({
      placeholder: 'N',
      description: `Job lock of this worker (ms, default ${STALL_TIMING.lockDurationMs}): a dead host's jobs are re-run after about this plus --stalled_interval_ms.`,
      min: MIN_LOCK_MS,
      max: 3_600_000,
    }),
    stalled_interval_ms: flag.integer({
      placeholder: 'N',
      description: `How often this worker looks for stalled jobs of dead hosts (ms, default ${STALL_TIMING.stalledIntervalMs}).`,
      min: 500,
      max: 3_600_000,
    }),
    skip_preflight: flag.boolean({ description: 'claude only: do not run `claude auth status` first.' }),
    ...MANY_TASK_CLAUDE_FLAGS,
  },
  passthrough: true,
  examples: [
    launcherCommand('worker', '--connection postgres://dto@127.0.0.1:5432/postgres --agent mock --concurrency 4'),
    launcherCommand(
      'worker',
      '--agent claude --concurrency 2 --cwd ~/checkout --permission_mode acceptEdits   # connection from $' + CONNECTION_ENV,
    ),
  ],
  notes: [
    'Each job start and end is printed as one JSON line: {"event":"started"|"completed"|"failed"|"refused","job","task","session_id","host","start","at"}.',
    'SIGTERM or SIGINT: finish the running jobs, then exit 0; a second signal exits at once (the jobs are re-run by other workers).',
    'See references/distributed.md for the set-up (a local PostgreSQL or Redis in one line) and connection-string security.',
  ],
} satisfies CommandSpec;

/** Runs the worker until a termination signal; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  guardBrokenOutput();
  const parsed = parseOptionsOrShowHelp(argv, spec);
  if (!parsed) return EXIT.ok;
  const { options } = parsed;
  const connection = takeConnection(options.connection, env);
  if (!connection)
    throw usageError(`Missing --connection: pass the queue's server (postgres://... or redis://...), or set $${CONNECTION_ENV}.`);
  const queueName = options.queue ?? DEFAULT_QUEUE;
  if (!QUEUE_NAME_PATTERN.test(queueName))
    throw usageError(`Expected --queue to match [A-Za-z0-9._-]{1,64}, got ${JSON.stringify(queueName)}.`);
  const cwd = path.resolve(options.cwd ?? process.cwd());
  if (!existsSync(cwd) || !statSync(cwd).isDirectory())
    throw usageError(`Expected --cwd to be an existing folder, got ${JSON.stringify(options.cwd)} (${cwd}). Create it or fix the path.`);
  const name = options.name ?? `${hostname()}:${process.pid}`;
  if (name.trim() === '' || name.length > 200) throw usageError(`Expected --name to be 1 to 200 characters, got ${JSON.stringify(name)}.`);
  const lockDurationMs = options.lock_ms ?? STALL_TIMING.lockDurationMs;
  const stalledIntervalMs = options.stalled_interval_ms ?? Math.min(STALL_TIMING.stalledIntervalMs, lockDurationMs);
  const claudeGiven = [...Object.keys(MANY_TASK_CLAUDE_FLAGS), 'skip_preflight'].filter((key) => parsed.flags[key] !== undefined);
  if (options.agent === 'mock' && (claudeGiven.length > 0 || parsed.passthrough.length > 0)) {
    const misplaced = [...claudeGiven.map((key) => `--${key}`), ...(parsed.passthrough.length ? ['-- ...'] : [])];
    throw usageError(`${misplaced.join(', ')} only apply to real agents: add --agent claude, or drop them.`);
  }
  const claudeExecutor =
    options.agent === 'claude' ? await claudeExecutorFrom(parsed.flags, parsed.passthrough, options, cwd, env) : undefined;

  const worker = await startTaskWorker({
    connection,
    queueName,
    concurrency: options.concurrency,
    agent: options.agent,
    claudeExecutor,
    cwd,
    name,
    log: (line) => void process.stdout.write(`${JSON.stringify(line)}\n`),
    timing: { lockDurationMs, stalledIntervalMs, maxStalledCount: STALL_TIMING.maxStalledCount },
  });
  process.stderr.write(
    `worker ${name}: ${options.agent} agents, ${options.concurrency} at once, queue ${queueName} at ${connection.redacted}, in ${cwd}\n`,
  );
  await new Promise<void>((resolve) => {
    let closing = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (closing) {
        process.stderr.write(`worker ${name}: ${signal} again, leaving now; running jobs will be re-run elsewhere\n`);
        process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
      }
      closing = true;
      process.stderr.write(`worker ${name}: ${signal}, finishing running jobs (send it again to leave at once)\n`);
      void worker.close().finally(resolve);
    };
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, onSignal);
  });
  return EXIT.ok;
}

async function claudeExecutorFrom(
  flags: ParsedFlags,
  passthrough: string[],
  options: { retries: number; skip_preflight: boolean },
  cwd: string,
  env: NodeJS.ProcessEnv,
) {
  const claude = readClaudeSettings({ ...flags, timeout: flags.agent_timeout }, passthrough, env, cwd);
  if (!options.skip_preflight) await checkClaudeReady(claude.bin, env);
  return createClaudeExecutor({
    bin: claude.bin,
    args: claude.args,
    timeoutS: claude.timeoutS,
    stallTimeoutS: claude.stallTimeoutS,
    backoffMs: claude.backoffMs,
    retries: options.retries,
    log: (line) => void process.stderr.write(`${line}\n`),
  });
}

if (process.argv[1]?.endsWith('worker.ts')) runMain((argv) => main(argv));
