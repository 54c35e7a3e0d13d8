// How orchestrate (scripts/orchestrate.ts) runs a checked plan: each task's executor (mock or claude, isolated or
// not), then either the run in this process with its summary, or a detached child that runs it in the background.
import type { ParsedFlags } from '../cli/cli.ts';
import { EXIT } from '../core/errors.ts';
import { countOf } from '../core/format.ts';
import type { AgentExecutor } from '../agents/agent-types.ts';
import { createClaudeExecutor } from '../agents/claude-agent.ts';
import { readClaudeSettings } from '../agents/claude-options.ts';
import { createMockExecutor } from '../agents/mock-agent.ts';
import { CONNECTION_ENV } from '../backend/connection.ts';
import { openRemoteBackend, remoteExecutorFor, type RemoteSettings } from '../backend/backend-options.ts';
import { startDetachedRun } from '../execution/detach.ts';
import { withWorktreeIsolation } from '../isolation/isolated-executor.ts';
import { checkLanding } from '../isolation/landing.ts';
import { mergeReport, mergeRunLine } from '../isolation/merge-report.ts';
import { launcherCommand } from '../launcher/dist.ts';
import { taskLine } from '../progress/event-lines.ts';
import { buildReportData } from '../report/report-data.ts';
import { exitCodeFor, renderSummary, summarize } from '../report/session-summary.ts';
import { topologicalBatches } from '../scheduling/graph.ts';
import type { RunnerKind } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { readState } from '../state/state-store.ts';
import type { IsolationChoice } from './orchestrate-checks.ts';
import type { Plan, PlanTask } from './plan.ts';
import type { TaskCheck } from '../verification/task-check.ts';
import { abortOnSignals, runPlan, type PlanRunOptions } from './plan-runner.ts';

/**
 * Each task's agent: a mock agent with the task's own delay, failure and edits, or a claude executor built from the
 * claude flags (validated here, before anything runs: a bad flag throws a usage error); either runs the task's check,
 * if any, after its answer. `--agent_timeout` is spawn-agent's `--timeout` (one claude run); orchestrate's `--timeout`
 * bounds the whole plan.
 */
export function agentsFor(options: {
  agent: RunnerKind;
  flags: ParsedFlags;
  passthrough: string[];
  retries: number;
  log: (line: string) => void;
  /** Each task's check (plan-checks.ts), by task id. */
  checks: ReadonlyMap<string, TaskCheck>;
}): (task: PlanTask) => AgentExecutor {
  const { checks, retries, log } = options;
  if (options.agent === 'mock') {
    return (task) =>
      createMockExecutor({
        ...{ delayMs: task.delayMs, fail: task.fail, edits: task.edits, lazy: task.lazy, claim: task.claim, ran: task.ran },
        ...{ check: checks.get(task.id), retries, log },
      });
  }
  const { bin, args, timeoutS, stallTimeoutS, backoffMs } = readClaudeSettings(
    { ...options.flags, timeout: options.flags.agent_timeout },
    options.passthrough,
  );
  return (task) => createClaudeExecutor({ bin, args, timeoutS, stallTimeoutS, backoffMs, retries, log, check: checks.get(task.id) });
}

/** Each task's executor: its agent, in a worktree of its own where the task is isolated (its work merged after). */
export function isolatedAgents(
  agentFor: (task: PlanTask) => AgentExecutor,
  isolation: IsolationChoice,
  paths: SessionPaths,
  log: (line: string) => void,
): (task: PlanTask) => AgentExecutor {
  const { repo, check } = isolation;
  return (task) =>
    repo && isolation.isolationOf(task) === 'worktree'
      ? withWorktreeIsolation(agentFor(task), { repo, paths, check, expectChanges: () => task.expectChanges ?? task.files.length > 0, log })
      : agentFor(task);
}

/**
 * Starts the run in a detached child (execution/detach.ts) and prints the four lines SKILL.md relies on: started,
 * log, how to wait, how to take slices (and, for a plan read from standard input, where it was saved).
 * The server of `--backend bullmq` must answer first; the child gets the connection through its environment, never its argv.
 * @returns {@link EXIT}.ok once the run is registered.
 */
export async function startInBackground(options: {
  paths: SessionPaths;
  sessionId: string;
  childArgs: string[];
  remote: RemoteSettings | null;
  workers: number;
  plan: Plan;
  agent: RunnerKind;
  /** The plan came from standard input and was saved at `plan.path`. */
  savedPlan: boolean;
  /** `--session_dir` was given: the printed commands repeat it. */
  sessionDirGiven: boolean;
}): Promise<number> {
  const { paths, remote, plan } = options;
  if (remote) await (await openRemoteBackend(remote, options.workers)).close();
  const started = await startDetachedRun({
    paths,
    sessionId: options.sessionId,
    args: options.childArgs,
    env: remote ? { ...process.env, [CONNECTION_ENV]: remote.connection.url } : undefined,
  });
  const dirFlag = options.sessionDirGiven ? ` --session_dir ${JSON.stringify(paths.dir)}` : '';
  process.stdout.write(
    `Started session ${options.sessionId} in the background (pid ${started.pid}): ${countOf(plan.tasks.length, 'task')}, ${options.agent} agents.\n` +
      (options.savedPlan ? `Plan: ${plan.path} (saved from standard input; --resume takes this path)\n` : '') +
      `Log: ${started.logPath}\n` +
      `Wait: ${launcherCommand('poll-session', `--until_done${dirFlag}`)}\n` +
      `Slices: ${launcherCommand('poll-session', `--timeout 90${dirFlag}`)}\n`,
  );
  return EXIT.ok;
}

/** A run in this process: runPlan's options, plus the whole-run `--timeout` (s), the remote backend and the output switch. */
export type ForegroundRun = Omit<PlanRunOptions, 'signal' | 'log'> & {
  timeoutS: number | undefined;
  remote: RemoteSettings | null;
  say: (line: string) => void;
};

/**
 * Prints the plan's topological batches, runs it here until every task ended (SIGINT/SIGTERM or `--timeout` cancel
 * it), then prints the summary and the merge line.
 * @returns the exit code: 0 all completed, 1 any failed, skipped or cancelled (or the session was replaced meanwhile),
 *   3 timed out.
 */
export async function runInForeground(run: ForegroundRun): Promise<number> {
  const { plan, paths, say } = run;
  const batches = topologicalBatches(Object.fromEntries(plan.tasks.map((task) => [task.id, task.dependsOn])));
  say(
    `Plan ${plan.path}: ${countOf(plan.tasks.length, 'task')}, ${countOf(batches.length, 'batch', 'batches')}, ${countOf(run.workers, 'worker')}, ${run.runner} agents${run.runner === 'mock' ? ' (a rehearsal: simulated results)' : ''}.`,
  );
  if (plan.request) say(`Request: ${plan.request.split('\n')[0]}`);
  batches.forEach((batch, i) => say(`  Batch ${i + 1}: ${batch.join(', ')}`));
  const backend = run.remote ? await openRemoteBackend(run.remote, run.workers, say) : null;
  const controller = new AbortController();
  const stopSignals = abortOnSignals(controller);
  let timedOut = false;
  const timeoutS = run.timeoutS;
  const timer =
    timeoutS === undefined
      ? null
      : setTimeout(() => {
          timedOut = true;
          controller.abort(new Error(`orchestration timed out after ${timeoutS} s`));
        }, timeoutS * 1000);
  try {
    const executorFor = backend ? remoteExecutorFor(backend, paths, run.runner) : run.executorFor;
    const result = await runPlan({ ...run, executorFor, log: say, describe: taskLine, signal: controller.signal });
    const state = await readState(paths);
    if (!state || state.session_id !== result.sessionId) {
      process.stderr.write(
        `Session ${result.sessionId} was replaced by ${state ? `session ${state.session_id}` : 'nothing (latest.yaml is gone)'} while it ran; ` +
          'this run stopped. Its events stay in the archived session file beside latest.yaml.\n',
      );
      return EXIT.taskFailed;
    }
    process.stdout.write(`${renderSummary(buildReportData(state), { variant: 'run', next: launcherCommand('aggregate') })}\n`);
    const mergeLine = mergeRunLine(mergeReport(state), await checkLanding(process.cwd(), state));
    if (mergeLine) process.stdout.write(`${mergeLine}\n`);
    return timedOut ? EXIT.timeout : exitCodeFor(summarize(state));
  } finally {
    if (timer) clearTimeout(timer);
    stopSignals();
    await backend?.close();
  }
}

/** The detached child's argv: this argv without --detach and --session_id, plus the chosen id and --skip_preflight (already done). */
export function childArgv(argv: string[], sessionId: string): string[] {
  const terminator = argv.indexOf('--');
  const own = terminator === -1 ? argv : argv.slice(0, terminator);
  const kept: string[] = [];
  for (let i = 0; i < own.length; i++) {
    const arg = own[i]!;
    const name = arg.startsWith('--') ? arg.slice(2).split('=')[0]!.replace(/-/g, '_') : null;
    if (name === 'detach' || name === 'skip_preflight') continue;
    if (name === 'session_id' || name === 'connection') {
      if (!arg.includes('=')) i++;
      continue;
    }
    kept.push(arg);
  }
  const claudeOnly = kept.some((arg) => arg === '--agent=claude') || kept.some((arg, i) => arg === '--agent' && kept[i + 1] === 'claude');
  return [
    ...kept,
    '--session_id',
    sessionId,
    ...(claudeOnly ? ['--skip_preflight'] : []),
    ...(terminator === -1 ? [] : argv.slice(terminator)),
  ];
}
