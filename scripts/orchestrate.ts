/**
 * orchestrate: run a whole plan (a task DAG) in one process, with a worker limit, on the shared session state.
 *
 * Usage:   "$S/scripts/run" orchestrate PLAN --agent mock|claude [--detach] [--workers N] [--resume] [--on_failure stop|continue]
 * Example: "$S/scripts/run" orchestrate .agent/master_plan.md --agent mock --workers 4 --detach
 *          (S is this skill's folder; `--help` prints the absolute path of this install's launcher.)
 * Reads:   PLAN (master_plan.md task table, or YAML; `-`: standard input, saved to <cwd>/.agent/plans/ once valid);
 *          <cwd>/.agent/sessions/latest.yaml.
 * Writes:  the session state (under its lock) and events.jsonl, <output_dir>/<task>.md results,
 *          and the status column of a Markdown PLAN on every change; with --detach, the run's output
 *          in <session_dir>/<session_id>.log.
 * Exit:    0 all completed, 1 any failed/skipped/cancelled (or a --detach run that died at start), 2 usage
 *          error, invalid plan or failed preflight, 3 timeout. --detach: 0 once the run is registered.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runMain, type CommandSpec, type ParsedFlags } from './lib/cli/cli.ts';
import { countOf } from './lib/core/format.ts';
import { flag, parseOptionsOrShowHelp } from './lib/cli/options.ts';
import { EXIT, usageError } from './lib/core/errors.ts';
import { topologicalBatches } from './lib/scheduling/graph.ts';
import { createMockExecutor } from './lib/agents/mock-agent.ts';
import { loadPlan, type PlanTask } from './lib/plan/plan.ts';
import { abortOnSignals, runPlan } from './lib/plan/plan-runner.ts';
import type { AgentExecutor } from './lib/agents/agent-types.ts';
import { createClaudeExecutor } from './lib/agents/claude-agent.ts';
import { MANY_TASK_CLAUDE_FLAGS, readClaudeSettings } from './lib/agents/claude-options.ts';
import { exitCodeFor, renderSummary, summarize } from './lib/report/session-summary.ts';
import { buildReportData } from './lib/report/report-data.ts';
import { archivePaths, DEFAULT_OUTPUT_DIR, resolveSessionPaths, SESSION_DIR_FLAG, type SessionPaths } from './lib/state/session-paths.ts';
import { readState } from './lib/state/state-store.ts';
import { checkClaudeReady } from './lib/agents/claude-preflight.ts';
import { guardBrokenOutput, startDetachedRun } from './lib/execution/detach.ts';
import { launcherCommand } from './lib/launcher/dist.ts';
import { newSessionId, validateSessionId } from './lib/core/names.ts';
import { ACTIVE_STATUSES, RUNNERS, type SessionState } from './lib/state/model.ts';
import { deathReason } from './lib/scheduling/transitions.ts';
import { SPAWN_FLAGS, sessionLimits } from './lib/execution/spawn-options.ts';
import { CONNECTION_ENV } from './lib/backend/connection.ts';
// bullmq itself is loaded only when --backend bullmq is given (openRemoteBackend), so local runs start as fast as before.
import { BACKEND_FLAGS, checkBackendOptions, openRemoteBackend, remoteExecutorFor } from './lib/backend/backend-options.ts';
import { ISOLATION_MODES, withWorktreeIsolation } from './lib/isolation/isolated-executor.ts';
import { checkRefComponent, claimSessionId, openRepository } from './lib/isolation/worktree.ts';
import { mergeReport, mergeRunLine } from './lib/isolation/merge-report.ts';
import { checkLanding } from './lib/isolation/landing.ts';
import { heredocExample, readPlanInput, savePlanInput, STDIN_PLAN, withSavedPlan } from './lib/plan/plan-input.ts';

export const spec = {
  name: 'orchestrate',
  summary:
    'Validates a plan (unknown dependencies, duplicate ids and cycles are refused), prints its topological batches, ' +
    'then runs the whole DAG in this one process with at most N agents at once. Uses the same session state, events and ' +
    'result files as the background scripts, so poll-session and aggregate work on it too. --agent is required: mock ' +
    'rehearses the plan with simulated agents (no account, no real work), claude runs real agents after checking that ' +
    'the claude CLI is logged in. --detach starts the run in the background, independent of this terminal or tool call, ' +
    'and returns at once with the command to wait for it.',
  usage:
    'PLAN --agent mock|claude [--detach] [--workers N] [--resume] [--on_failure stop|continue] [--session_id ID] [--output_dir DIR] [--session_dir DIR] [--backend local|bullmq --connection URL]',
  positionals: ['PLAN'],
  flags: {
    // No default: a missing --agent gets its own message (mock or claude, and what each means).
    agent: flag.choice({
      values: RUNNERS,
      placeholder: 'mock|claude',
      description: 'Required. mock: a rehearsal with simulated agents (no account; results are not findings). claude: real agents.',
    }),
    detach: flag.boolean({
      description: 'Validate, start the run in its own session (output in <session_dir>/<session_id>.log), print how to wait, exit 0.',
    }),
    // No default here: the plan's max_workers comes before the fallback of 5.
    workers: flag.integer({
      placeholder: 'N',
      description: "Most agents at once (default: the plan's max_workers, else 5).",
      min: 1,
      max: 256,
    }),
    resume: flag.boolean({ description: 'Keep the current session of this plan; run only tasks not completed (merge_failed ones stay).' }),
    retry_merge: flag.boolean({
      description:
        'With worktree isolation: resume, and run merge_failed tasks again from the current integration branch, told what conflicted (their old branches are kept).',
    }),
    on_failure: flag.choice({
      values: ['stop', 'continue'],
      default: 'continue',
      description: 'After a failure: skip every task not started (stop) or only its dependants (continue, default).',
    }),
    isolation: flag.choice({
      values: ISOLATION_MODES,
      description:
        'worktree: each task works in a git worktree of its own and its work is merged onto <prefix>/<session>/integration ' +
        "in dependency order (see references/worktrees.md); none (default): every agent works in this folder. A plan's isolation comes first.",
    }),
    merge_check: flag.string({
      placeholder: 'CMD',
      description:
        'With worktree isolation: run CMD (sh -c) in a scratch worktree of each candidate merge; a failure keeps the task out (merge_failed).',
    }),
    merge_check_timeout: flag.duration({
      placeholder: 'S',
      description: 'Seconds one --merge_check run may take before it counts as failed (default 600).',
      unit: 's',
      min: 0,
      exclusiveMin: true,
    }),
    timeout: flag.duration({
      placeholder: 'S',
      description: 'Stop the run after S seconds (exit 3).',
      unit: 's',
      min: 0,
      exclusiveMin: true,
    }),
    session_id: flag.string({ placeholder: 'ID', description: 'Id of the new session (default: generated from the time).' }),
    skip_preflight: flag.boolean({
      description: 'claude only: do not run `claude auth status` first (for set-ups where it cannot answer).',
    }),
    output_dir: flag.string({
      placeholder: 'DIR',
      description: `Folder for <task>.md results (default ${DEFAULT_OUTPUT_DIR}).`,
      default: DEFAULT_OUTPUT_DIR,
    }),
    session_dir: SESSION_DIR_FLAG,
    // Rate-limit-adaptive concurrency and the session budget (scheduling/capacity.ts, budget.ts), as in the spawn scripts.
    adaptive: SPAWN_FLAGS.adaptive!,
    budget_usd: SPAWN_FLAGS.budget_usd!,
    on_budget: SPAWN_FLAGS.on_budget!,
    quiet: flag.boolean({ description: 'Print only the final summary.' }),
    // Where agents run (scripts/lib/backend/, references/distributed.md).
    ...BACKEND_FLAGS,
    ...MANY_TASK_CLAUDE_FLAGS,
  },
  passthrough: true,
  examples: [
    launcherCommand('orchestrate', '.agent/master_plan.md --agent mock --workers 4'),
    launcherCommand('orchestrate', '.agent/master_plan.md --agent mock --resume'),
    launcherCommand('orchestrate', '.agent/master_plan.md --agent mock --detach'),
    launcherCommand('orchestrate', 'plan.yaml --agent claude --on_failure stop --detach'),
    launcherCommand('orchestrate', 'plan.yaml --agent claude --permission_mode plan --max_turns 20 --agent_timeout 900'),
    launcherCommand('orchestrate', '- --agent mock --detach < plan.yaml'),
  ],
  notes: [
    'PLAN formats: a Markdown table "| Task ID | Description | Dependencies | Priority | Files |" ("None" for no dependency),',
    'or YAML "tasks: [{ id, goal, depends_on, priority, files, delay_ms }]" with optional request and max_workers.',
    'PLAN "-" reads the plan from standard input (UTF-8, at most 1 MiB; YAML when it is a mapping with a tasks key, else a Markdown',
    'table), validates it as a file, then saves it to .agent/plans/<session id, or plan-TIME>.md|.yaml: the path the "Plan" line',
    '(with --detach, "Plan:") prints and --resume takes ("-" with --resume is refused). So one command carries the plan and starts it:',
    '',
    ...heredocExample().split('\n'),
    '',
    'With --isolation worktree (or isolation: worktree in a YAML plan, also per task) each task works in a git worktree of its own',
    'and its work is merged onto dto/<session>/integration; your branch is untouched (references/worktrees.md). Mock tasks of a YAML',
    'plan may edit files: write: { path: text }, append: { path: text }.',
    'With --agent claude, the claude flags work as in spawn-agent (see references/cli-integration.md); arguments after "--" go to claude verbatim.',
    'Before real agents start, `claude auth status` must exit 0 (logged in, or ANTHROPIC_API_KEY set); otherwise nothing is written.',
    '--detach prints four lines: "Started session <id> in the background (pid <pid>): <N> tasks, <agent> agents.", "Log: <path>",',
    `"Wait: ${launcherCommand('poll-session', '--until_done')}" (in Claude Code a background command: it ends when every task has`,
    `ended) and "Slices: ${launcherCommand('poll-session', '--timeout 90')}" (elsewhere: run it again while it exits 3);`,
    'with PLAN "-", a "Plan: <path>" line after the first.',
    '--backend bullmq: tasks run on `worker` processes on any host (see references/distributed.md); the session, events and results stay here.',
    'Exit codes: 0 all completed (--detach: started), 1 any failed, skipped or cancelled, 2 usage error, invalid plan or failed preflight, 3 timeout.',
  ],
} satisfies CommandSpec;

/** Runs the plan (or, with --detach, starts it in the background); returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  guardBrokenOutput();
  const parsed = parseOptionsOrShowHelp(argv, spec);
  if (!parsed) return EXIT.ok;
  const { options } = parsed;
  const planFile = parsed.positionals[0];
  if (!planFile)
    throw usageError(
      `Missing PLAN: pass the path of a master_plan.md or a YAML plan (or - and the plan on standard input), e.g. ${launcherCommand('orchestrate', '.agent/master_plan.md --agent mock')}.`,
    );
  const { agent, on_failure: onFailure, workers: workersFlag, timeout: timeoutS, quiet, detach, session_id: sessionIdFlag } = options;
  // --retry_merge is a resume that also re-runs the tasks whose work did not merge.
  const resume = options.resume || options.retry_merge;
  if (agent === undefined) {
    throw usageError(
      'Missing --agent: pass --agent mock for a rehearsal (no account needed; agents are simulated and their results are not findings) ' +
        'or --agent claude for real Claude Code agents (needs a logged-in claude CLI).',
    );
  }
  if (sessionIdFlag !== undefined) validateSessionId(sessionIdFlag);
  if (agent === 'mock') {
    const misplaced = [
      ...[...Object.keys(MANY_TASK_CLAUDE_FLAGS), 'skip_preflight']
        .filter((name) => parsed.flags[name] !== undefined)
        .map((name) => `--${name}`),
      ...(parsed.passthrough.length ? ['-- ...'] : []),
    ];
    if (misplaced.length > 0)
      throw usageError(`${misplaced.join(', ')} only apply to real agents: add --agent claude, or drop them for a mock rehearsal.`);
  }
  const remote = checkBackendOptions(options, parsed.flags, parsed.passthrough, Object.keys(MANY_TASK_CLAUDE_FLAGS), env);
  // --adaptive, --budget_usd, --on_budget: checked before anything is written or started (a --detach child reads them again).
  const limits = sessionLimits(parsed.flags);
  const paths = resolveSessionPaths({ sessionDir: options.session_dir });
  const outputDir = path.resolve(options.output_dir);
  const current = await readState(paths); // A corrupt state file stops us before anything is written.
  if (current && !resume) refuseLiveSession(current, paths);
  // `-`: the plan is standard input, validated here and saved (below, once every check passed) for the run, --detach and --resume.
  const input = planFile === STDIN_PLAN ? await readPlanInput({ resume, agent, currentPlan: current?.plan_path }) : null;
  const plan = input?.plan ?? (await loadPlan(path.resolve(planFile)));
  const workers = workersFlag ?? plan.maxWorkers ?? 5;
  // A plan from standard input is saved under its session's id, so that id is chosen now, as for --detach.
  const sessionId = chooseSessionId({ flag: sessionIdFlag, resume, current, detach: detach || input !== null, paths });
  const say = (line: string) => quiet || process.stdout.write(`${line}\n`);
  const agentFor =
    agent === 'mock'
      ? (task: PlanTask) => createMockExecutor({ delayMs: task.delayMs, fail: task.fail, edits: task.edits })
      : claudeExecutorFactory(parsed.flags, parsed.passthrough, options.retries, say);
  const isolationOf = (task: PlanTask) => task.isolation ?? plan.isolation ?? options.isolation ?? 'none';
  const isolated = plan.tasks.some((task) => isolationOf(task) === 'worktree');
  if (options.merge_check !== undefined && !isolated)
    throw usageError(
      '--merge_check gates merges of isolated tasks: add --isolation worktree (or isolation: worktree in the plan), or drop it.',
    );
  if (options.merge_check !== undefined && options.merge_check.trim() === '')
    throw usageError('--merge_check is empty: give the command that must pass before a merge, e.g. --merge_check "npm test".');
  // Checked before anything is written: not a repository, or no commit yet, is a usage error.
  const repo = isolated ? await openRepository(process.cwd()) : null;
  // Branch names are built from task names and the session id: refuse the few git cannot take (`a..b`, `x.lock`) now.
  if (isolated) {
    for (const task of plan.tasks) if (isolationOf(task) === 'worktree') checkRefComponent(task.id, `Task ${task.id}: the task name`);
    if (sessionIdFlag !== undefined) checkRefComponent(sessionIdFlag, 'The session id');
  }
  // Another session (another --session_dir) with this id in the repository would share its branches and worktrees.
  if (repo && sessionId !== undefined) await claimSessionId(repo, sessionId, paths.statePath, true);
  // The gate comes from this command line only (the user's own flag), never from a state or plan file.
  const check =
    options.merge_check === undefined
      ? undefined
      : { command: options.merge_check, timeoutMs: (options.merge_check_timeout ?? 600) * 1000 };
  const executorFor = (task: PlanTask): AgentExecutor =>
    repo && isolationOf(task) === 'worktree'
      ? withWorktreeIsolation(agentFor(task), {
          repo,
          paths,
          check,
          expectChanges: () => task.expectChanges ?? task.files.length > 0,
          log: say,
        })
      : agentFor(task);
  if (remote && isolated)
    throw usageError('Worktree isolation needs the agents in this repository: drop --backend bullmq, or the isolation.');
  // With bullmq the workers run claude on their own hosts and check it there (worker --agent claude).
  if (agent === 'claude' && !options.skip_preflight && !remote)
    await checkClaudeReady(readClaudeSettings(parsed.flags, parsed.passthrough, env).bin, env);
  if (input) plan.path = await savePlanInput(input, { cwd: paths.cwd, sessionId });

  if (detach) {
    // The server must answer before the session is registered; the child gets the connection through its environment, not its argv.
    if (remote) await (await openRemoteBackend(remote, workers)).close();
    const started = await startDetachedRun({
      paths,
      sessionId: sessionId!,
      args: childArgv(input ? withSavedPlan(argv, spec.flags, plan.path) : argv, sessionId!),
      env: remote ? { ...process.env, [CONNECTION_ENV]: remote.connection.url } : undefined,
    });
    const dirFlag = options.session_dir === undefined ? '' : ` --session_dir ${JSON.stringify(paths.dir)}`;
    process.stdout.write(
      `Started session ${sessionId} in the background (pid ${started.pid}): ${countOf(plan.tasks.length, 'task')}, ${agent} agents.\n` +
        (input ? `Plan: ${plan.path} (saved from standard input; --resume takes this path)\n` : '') +
        `Log: ${started.logPath}\n` +
        `Wait: ${launcherCommand('poll-session', `--until_done${dirFlag}`)}\n` +
        `Slices: ${launcherCommand('poll-session', `--timeout 90${dirFlag}`)}\n`,
    );
    return EXIT.ok;
  }

  const batches = topologicalBatches(Object.fromEntries(plan.tasks.map((task) => [task.id, task.dependsOn])));
  say(
    `Plan ${plan.path}: ${countOf(plan.tasks.length, 'task')}, ${countOf(batches.length, 'batch', 'batches')}, ${countOf(workers, 'worker')}, ${agent} agents${agent === 'mock' ? ' (a rehearsal: simulated results)' : ''}.`,
  );
  if (plan.request) say(`Request: ${plan.request.split('\n')[0]}`);
  batches.forEach((batch, i) => say(`  Batch ${i + 1}: ${batch.join(', ')}`));

  const backend = remote ? await openRemoteBackend(remote, workers, say) : null;
  const controller = new AbortController();
  const stopSignals = abortOnSignals(controller);
  let timedOut = false;
  const timer =
    timeoutS === undefined
      ? null
      : setTimeout(() => {
          timedOut = true;
          controller.abort(new Error(`orchestration timed out after ${timeoutS} s`));
        }, timeoutS * 1000);
  try {
    const result = await runPlan({
      paths,
      plan,
      workers,
      runner: agent,
      executorFor: backend ? remoteExecutorFor(backend, paths, agent) : executorFor,
      outputDir,
      agentCwd: process.cwd(),
      resume,
      retryMerge: options.retry_merge,
      onFailure,
      log: say,
      signal: controller.signal,
      sessionId: resume ? undefined : sessionId,
      limits,
    });
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

/**
 * The id of the session this run will register: `--session_id`, else with `--resume` the current
 * one, else (detached runs, which must know it before the child starts, and plans from standard input,
 * saved under it) a fresh one.
 * @throws OrchestratorError usage when the id is already taken (the current or an archived session)
 *   or, with `--resume`, is not the current session's.
 */
function chooseSessionId(options: {
  flag?: string;
  resume: boolean;
  current: SessionState | null;
  detach: boolean;
  paths: SessionPaths;
}): string | undefined {
  const { flag, resume, current, paths } = options;
  if (resume) {
    if (flag !== undefined && flag !== current?.session_id) {
      throw usageError(
        `--resume continues the current session (${current?.session_id ?? 'none'}), not ${JSON.stringify(flag)}: drop --session_id.`,
      );
    }
    return current?.session_id;
  }
  if (flag !== undefined) {
    if (current?.session_id === flag || existsSync(archivePaths(paths, flag).state)) {
      throw usageError(
        `Session id ${JSON.stringify(flag)} is already used in ${paths.dir}: pick another --session_id, or leave it out for a generated one.`,
      );
    }
    return flag;
  }
  return options.detach ? newSessionId() : undefined;
}

/**
 * Refuses to start a new session over one whose agents are still at work: the new session would
 * archive it under them, and a plan runner still going would act on same-named tasks of the new one.
 * Tasks whose agent is gone (or whose lease expired) do not count: they are dead, not running.
 * @throws OrchestratorError usage naming the session, its live tasks and what to do.
 */
function refuseLiveSession(current: SessionState, paths: SessionPaths): void {
  const now = new Date();
  const live = Object.entries(current.tasks)
    .filter(([, task]) => ACTIVE_STATUSES.has(task.status) && deathReason(current, task, now) === null)
    .map(([name]) => name);
  if (live.length === 0) return;
  const names = `${live.slice(0, 5).join(', ')}${live.length > 5 ? `, ... (${live.length} in all)` : ''}`;
  throw usageError(
    `Session ${current.session_id} in ${paths.dir} is still running (active: ${names}). Wait for it (${launcherCommand('poll-session', '--timeout 90')}), ` +
      `stop it (${launcherCommand('cancel-session')}), or run this plan in another folder with --session_dir DIR.`,
  );
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

/**
 * Builds the real-agent executor factory from the claude flags (validated before anything runs).
 * `--agent_timeout` is spawn-agent's `--timeout` (one claude run); `--timeout` here bounds the whole plan.
 */
function claudeExecutorFactory(
  flags: ParsedFlags,
  passthrough: string[],
  retries: number,
  log: (line: string) => void,
): (task: unknown) => AgentExecutor {
  const claude = readClaudeSettings({ ...flags, timeout: flags.agent_timeout }, passthrough);
  const executor = createClaudeExecutor({
    bin: claude.bin,
    args: claude.args,
    timeoutS: claude.timeoutS,
    stallTimeoutS: claude.stallTimeoutS,
    backoffMs: claude.backoffMs,
    retries,
    log,
  });
  return () => executor;
}

if (process.argv[1]?.endsWith('orchestrate.ts')) runMain((argv) => main(argv));
