#!/usr/bin/env -S npx tsx
/**
 * orchestrate: run a whole plan (a task DAG) in one process, with a worker limit, on the shared session state.
 *
 * Usage:   npx tsx scripts/orchestrate.ts PLAN [--workers N] [--agent mock|claude] [--resume] [--on_failure stop|continue]
 * Example: npx tsx scripts/orchestrate.ts .agent/master_plan.md --workers 4 --agent mock
 * Reads:   PLAN (master_plan.md task table, or YAML); <cwd>/.agent/sessions/latest.yaml.
 * Writes:  the session state (under its lock) and events.jsonl, <output_dir>/<task>.md results,
 *          and the status column of a Markdown PLAN on every change.
 * Exit:    0 all completed, 1 any failed/skipped/cancelled, 2 usage error or invalid plan, 3 timeout.
 */
import path from 'node:path';
import { parseOrShowHelp, enumFlag, integerFlag, numberFlag, runMain, stringFlag, type CommandSpec, type FlagSpec, type ParsedFlags } from './lib/cli.ts';
import { EXIT, usageError } from './lib/errors.ts';
import { formatDuration } from './lib/format.ts';
import { topologicalBatches } from './lib/graph.ts';
import { createMockExecutor } from './lib/mock-agent.ts';
import { loadPlan } from './lib/plan.ts';
import { abortOnSignals, runPlan } from './lib/plan-runner.ts';
import type { AgentExecutor } from './lib/agent-types.ts';
import { createClaudeExecutor } from './lib/claude-agent.ts';
import { CLAUDE_FLAGS, readClaudeSettings } from './lib/claude-options.ts';
import { RUNNERS } from './lib/schema.ts';
import { exitCodeFor, summarize } from './lib/session-summary.ts';
import { DEFAULT_OUTPUT_DIR, resolveSessionPaths, SESSION_DIR_FLAG } from './lib/session-paths.ts';
import { readState } from './lib/state-store.ts';

/** spawn-agent's claude flags that make sense for a whole plan (per-task ones such as --task_file and --cwd do not). */
const { task_file: _taskFile, cwd: _cwd, timeout: _timeout, ...claudeFlags } = CLAUDE_FLAGS;
const PLAN_CLAUDE_FLAGS: Record<string, FlagSpec> = {
  ...claudeFlags,
  agent_timeout: { type: 'string', placeholder: 'S', description: 'claude only: seconds before one agent run is terminated (default 1800).' },
  retries: { type: 'string', placeholder: 'N', description: 'claude only: retries of transient API failures per task (default 3).' },
};

export const spec: CommandSpec = {
  name: 'orchestrate',
  summary:
    'Validates a plan (unknown dependencies, duplicate ids and cycles are refused), prints its topological batches, ' +
    'then runs the whole DAG in this one process with at most N agents at once. Uses the same session state, events and ' +
    'result files as the background scripts, so poll-session and aggregate work on it too.',
  usage: 'PLAN [--workers N] [--agent mock|claude] [--resume] [--on_failure stop|continue] [--output_dir DIR] [--session_dir DIR]',
  positionals: ['PLAN'],
  flags: {
    workers: { type: 'string', placeholder: 'N', description: 'Most agents at once (default: the plan\'s max_workers, else 5).' },
    agent: { type: 'string', placeholder: 'mock|claude', description: 'Which agent runs the tasks (default mock).' },
    resume: { type: 'boolean', description: 'Keep the current session of this plan; run only tasks not completed.' },
    on_failure: { type: 'string', placeholder: 'stop|continue', description: 'After a failure: skip every task not started (stop) or only its dependants (continue, default).' },
    timeout: { type: 'string', placeholder: 'S', description: 'Stop the run after S seconds (exit 3).' },
    output_dir: { type: 'string', placeholder: 'DIR', description: `Folder for <task>.md results (default ${DEFAULT_OUTPUT_DIR}).` },
    session_dir: SESSION_DIR_FLAG,
    quiet: { type: 'boolean', description: 'Print only the final summary.' },
    ...PLAN_CLAUDE_FLAGS,
  },
  passthrough: true,
  examples: [
    'npx tsx scripts/orchestrate.ts .agent/master_plan.md --workers 4',
    'npx tsx scripts/orchestrate.ts plan.yaml --agent claude --on_failure stop',
    'npx tsx scripts/orchestrate.ts .agent/master_plan.md --resume',
    'npx tsx scripts/orchestrate.ts plan.yaml --agent claude --permission_mode plan --max_turns 20 --agent_timeout 900',
  ],
  notes: [
    'PLAN formats: a Markdown table "| Task ID | Description | Dependencies | Priority | Files |" ("None" for no dependency),',
    'or YAML "tasks: [{ id, goal, depends_on, priority, files, delay_ms }]" with optional request and max_workers.',
    'With --agent claude, the claude flags work as in spawn-agent (see references/cli-integration.md); arguments after "--" go to claude verbatim.',
    'Exit codes: 0 all completed, 1 any failed, skipped or cancelled, 2 usage error or invalid plan, 3 timeout.',
  ],
};

/** Runs the plan; returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const parsed = parseOrShowHelp(argv, spec);
  if (!parsed) return EXIT.ok;
  const planFile = parsed.positionals[0];
  if (!planFile) throw usageError('Missing PLAN: pass the path of a master_plan.md or a YAML plan, e.g. orchestrate.ts .agent/master_plan.md.');
  const agent = enumFlag(parsed.flags, 'agent', RUNNERS) ?? 'mock';
  const onFailure = enumFlag(parsed.flags, 'on_failure', ['stop', 'continue'] as const) ?? 'continue';
  const workersFlag = integerFlag(parsed.flags, 'workers', { min: 1, max: 256 });
  const timeoutS = numberFlag(parsed.flags, 'timeout', { min: 0, exclusiveMin: true });
  const quiet = Boolean(parsed.flags.quiet);
  if (agent === 'mock') {
    const misplaced = [...Object.keys(PLAN_CLAUDE_FLAGS).filter((name) => parsed.flags[name] !== undefined).map((name) => `--${name}`), ...(parsed.passthrough.length ? ['-- ...'] : [])];
    if (misplaced.length > 0) throw usageError(`${misplaced.join(', ')} only apply to real agents: add --agent claude, or drop them for a mock rehearsal.`);
  }
  const paths = resolveSessionPaths({ sessionDir: stringFlag(parsed.flags, 'session_dir') });
  const outputDir = path.resolve(stringFlag(parsed.flags, 'output_dir') ?? DEFAULT_OUTPUT_DIR);
  await readState(paths); // A corrupt state file stops us before anything is written.

  const plan = await loadPlan(path.resolve(planFile));
  const workers = workersFlag ?? plan.maxWorkers ?? 5;
  const say = (line: string) => quiet || process.stdout.write(`${line}\n`);
  const batches = topologicalBatches(Object.fromEntries(plan.tasks.map((task) => [task.id, task.dependsOn])));
  say(`Plan ${plan.path}: ${plan.tasks.length} tasks, ${batches.length} batches, ${workers} workers, ${agent} agents.`);
  if (plan.request) say(`Request: ${plan.request.split('\n')[0]}`);
  batches.forEach((batch, i) => say(`  Batch ${i + 1}: ${batch.join(', ')}`));

  const executorFor = agent === 'mock'
    ? (task: { delayMs?: number; fail?: boolean }) => createMockExecutor({ delayMs: task.delayMs, fail: task.fail })
    : claudeExecutorFactory(parsed.flags, parsed.passthrough, say);
  const controller = new AbortController();
  const stopSignals = abortOnSignals(controller);
  let timedOut = false;
  const timer = timeoutS === undefined ? null : setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`orchestration timed out after ${timeoutS} s`));
  }, timeoutS * 1000);
  try {
    const result = await runPlan({
      paths,
      plan,
      workers,
      runner: agent,
      executorFor,
      outputDir,
      agentCwd: process.cwd(),
      resume: Boolean(parsed.flags.resume),
      onFailure,
      log: say,
      signal: controller.signal,
    });
    const state = (await readState(paths))!;
    const summary = summarize(state);
    process.stdout.write(
      `Session ${result.sessionId}: ${summary.counts.completed} of ${summary.total} completed` +
        `${summary.counts.failed ? `, ${summary.counts.failed} failed` : ''}${summary.counts.skipped ? `, ${summary.counts.skipped} skipped` : ''}` +
        `${summary.counts.cancelled ? `, ${summary.counts.cancelled} cancelled` : ''}; makespan ${formatDuration(summary.makespanMs)}, ` +
        `parallelism ${summary.parallelism === null ? '-' : summary.parallelism.toFixed(2) + 'x'}. Next: aggregate.ts writes the report.\n`,
    );
    return timedOut ? EXIT.timeout : exitCodeFor(summary);
  } finally {
    if (timer) clearTimeout(timer);
    stopSignals();
  }
}

/**
 * Builds the real-agent executor factory from the claude flags (validated before anything runs).
 * `--agent_timeout` is spawn-agent's `--timeout` (one claude run); `--timeout` here bounds the whole plan.
 */
function claudeExecutorFactory(flags: ParsedFlags, passthrough: string[], log: (line: string) => void): (task: unknown) => AgentExecutor {
  const claude = readClaudeSettings({ ...flags, timeout: flags.agent_timeout }, passthrough);
  const retries = integerFlag(flags, 'retries', { min: 0, max: 20 }) ?? 3;
  const executor = createClaudeExecutor({ bin: claude.bin, args: claude.args, timeoutS: claude.timeoutS, backoffMs: claude.backoffMs, retries, log });
  return () => executor;
}

if (process.argv[1]?.endsWith('orchestrate.ts')) runMain(main);
