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
 * Exit:    0 all completed, 1 any failed/skipped/cancelled or contradicted (or a --detach run that died at start), 2 usage
 *          error, invalid plan or failed preflight, 3 timeout. --detach: 0 once the run is registered.
 */
import path from 'node:path';
import { runMain, type CommandSpec } from './lib/cli/cli.ts';
import { flag, parseOptionsOrShowHelp } from './lib/cli/options.ts';
import { EXIT, usageError } from './lib/core/errors.ts';
import { validateSessionId } from './lib/core/names.ts';
import { loadPlan } from './lib/plan/plan.ts';
import { MANY_TASK_CLAUDE_FLAGS, readClaudeSettings } from './lib/agents/claude-options.ts';
import { checkClaudeReady } from './lib/agents/claude-preflight.ts';
import { DEFAULT_OUTPUT_DIR, resolveSessionPaths, SESSION_DIR_FLAG } from './lib/state/session-paths.ts';
import { readState } from './lib/state/state-store.ts';
import { RUNNERS } from './lib/state/model.ts';
import { guardBrokenOutput } from './lib/execution/detach.ts';
import { launcherCommand } from './lib/launcher/dist.ts';
import { SPAWN_FLAGS, sessionLimits } from './lib/execution/spawn-options.ts';
// bullmq itself is loaded only when --backend bullmq is given (openRemoteBackend), so local runs start as fast as before.
import { BACKEND_FLAGS, checkBackendOptions } from './lib/backend/backend-options.ts';
import { ISOLATION_MODES } from './lib/isolation/isolated-executor.ts';
import { heredocExample, readPlanInput, savePlanInput, STDIN_PLAN, withSavedPlan } from './lib/plan/plan-input.ts';
import { checkAgent, checkIsolation, chooseSessionId, refuseLiveSession } from './lib/plan/orchestrate-checks.ts';
import { planChecks } from './lib/plan/plan-checks.ts';
import { agentsFor, childArgv, isolatedAgents, runInForeground, startInBackground } from './lib/plan/orchestrate-run.ts';

export { childArgv } from './lib/plan/orchestrate-run.ts';

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
    check: flag.string({
      placeholder: 'CMD',
      description:
        "A program to run after each agent's answer in its folder (its worktree when isolated), without a shell, for every task " +
        'without a check: of its own: a non-zero exit gives the agent its output and another try, within --retries, then fails the task.',
    }),
    check_timeout: flag.duration({
      placeholder: 'S',
      description: "Seconds one check run may take (default 600; a task's check_timeout: comes first).",
      unit: 's',
      min: 0,
      exclusiveMin: true,
    }),
    allow_plan_checks: flag.boolean({
      description:
        'Run the check: commands the plan names (read them first: each runs as a program in this project). Without it they are refused.',
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
    'Exit codes: 0 all completed (--detach: started), 1 any failed, skipped or cancelled, or completed with its answer contradicted by its receipts, 2 usage error, invalid plan or failed preflight, 3 timeout.',
  ],
} satisfies CommandSpec;

/** Runs the plan (or, with --detach, starts it in the background); returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  guardBrokenOutput();
  const parsed = parseOptionsOrShowHelp(argv, spec);
  if (!parsed) return EXIT.ok;
  const { options, flags, passthrough } = parsed;
  const planFile = parsed.positionals[0];
  if (!planFile)
    throw usageError(
      `Missing PLAN: pass the path of a master_plan.md or a YAML plan (or - and the plan on standard input), e.g. ${launcherCommand('orchestrate', '.agent/master_plan.md --agent mock')}.`,
    );
  // --retry_merge is a resume that also re-runs the tasks whose work did not merge.
  const resume = options.resume || options.retry_merge;
  const sessionIdFlag = options.session_id;
  const agent = checkAgent(options.agent, flags, passthrough);
  if (sessionIdFlag !== undefined) validateSessionId(sessionIdFlag);
  const remote = checkBackendOptions(options, flags, passthrough, Object.keys(MANY_TASK_CLAUDE_FLAGS), env);
  // --adaptive, --budget_usd, --on_budget: checked before anything is written or started (a --detach child reads them again).
  const limits = sessionLimits(flags);
  const paths = resolveSessionPaths({ sessionDir: options.session_dir });
  const current = await readState(paths); // A corrupt state file stops us before anything is written.
  if (current && !resume) refuseLiveSession(current, paths);
  // `-`: the plan is standard input, validated here and saved (below, once every check passed) for the run, --detach and --resume.
  const input = planFile === STDIN_PLAN ? await readPlanInput({ resume, agent, currentPlan: current?.plan_path }) : null;
  const plan = input?.plan ?? (await loadPlan(path.resolve(planFile)));
  const workers = options.workers ?? plan.maxWorkers ?? 5;
  // A plan from standard input is saved under its session's id, so that id is chosen now, as for --detach.
  const sessionId = chooseSessionId({ flag: sessionIdFlag, resume, current, detach: options.detach || input !== null, paths });
  const say = (line: string) => options.quiet || process.stdout.write(`${line}\n`);
  const checks = await planChecks(plan, {
    check: options.check,
    checkTimeoutS: options.check_timeout,
    allowPlanChecks: options.allow_plan_checks,
    remote: remote !== null,
  });
  const agentFor = agentsFor({ agent, flags, passthrough, retries: options.retries, log: say, checks });
  const isolation = await checkIsolation({
    plan,
    flag: options.isolation,
    mergeCheck: options.merge_check,
    mergeCheckTimeoutS: options.merge_check_timeout,
    sessionIdFlag,
    sessionId,
    paths,
    remote: remote !== null,
  });
  // With bullmq the workers run claude on their own hosts and check it there (worker --agent claude).
  if (agent === 'claude' && !options.skip_preflight && !remote)
    await checkClaudeReady(readClaudeSettings(flags, passthrough, env).bin, env);
  if (input) plan.path = await savePlanInput(input, { cwd: paths.cwd, sessionId });
  if (options.detach) {
    const args = childArgv(input ? withSavedPlan(argv, spec.flags, plan.path) : argv, sessionId!);
    const sessionDirGiven = options.session_dir !== undefined;
    return startInBackground({
      paths,
      sessionId: sessionId!,
      childArgs: args,
      remote,
      workers,
      plan,
      agent,
      savedPlan: input !== null,
      sessionDirGiven,
    });
  }
  return runInForeground({
    paths,
    plan,
    workers,
    runner: agent,
    executorFor: isolatedAgents(agentFor, isolation, paths, say),
    outputDir: path.resolve(options.output_dir),
    agentCwd: process.cwd(),
    resume,
    retryMerge: options.retry_merge,
    onFailure: options.on_failure,
    sessionId: resume ? undefined : sessionId,
    limits,
    timeoutS: options.timeout,
    remote,
    say,
  });
}

if (process.argv[1]?.endsWith('orchestrate.ts')) runMain((argv) => main(argv));
