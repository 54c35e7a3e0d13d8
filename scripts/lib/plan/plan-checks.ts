// Each task's check for orchestrate: the plan's `check:` (run only with --allow_plan_checks: a plan is data) or the
// command line's --check, validated before anything is written or started.
import { usageError } from '../core/errors.ts';
import { DEFAULT_CHECK_TIMEOUT_S, readTaskCheck, type TaskCheck } from '../verification/task-check.ts';
import type { Plan } from './plan.ts';

/** What {@link planChecks} reads from the command line. */
export interface CheckChoice {
  /** `--check CMD`: the check of every task that names none. */
  check?: string;
  /** `--check_timeout S`: the time limit of a check that sets none (s). */
  checkTimeoutS?: number;
  /** `--allow_plan_checks`: run the checks the plan names. */
  allowPlanChecks: boolean;
  /** `--backend bullmq`: its workers run no check. */
  remote: boolean;
}

/**
 * Each task's check, by task id: its own `check:` (with its `check_timeout:`), else `--check`; tasks with neither have
 * none. A plan's checks run only with `--allow_plan_checks`, since a plan is data that may come from anywhere and a
 * check runs a program in the project: without it they are refused, listed, before anything starts.
 * @throws OrchestratorError usage: plan checks without `--allow_plan_checks`, any check with `--backend bullmq`, a
 *   check that names no program or uses a shell's syntax (task-check.ts `parseCheckCommand`).
 */
export async function planChecks(plan: Plan, choice: CheckChoice): Promise<Map<string, TaskCheck>> {
  const named = plan.tasks.filter((task) => task.check !== undefined);
  if (named.length > 0 && !choice.allowPlanChecks) {
    const listed = named.slice(0, 5).map((task) => `${task.id}: ${JSON.stringify(task.check)}`);
    throw usageError(
      `The plan ${plan.path} names checks to run after its agents (${listed.join(', ')}${named.length > 5 ? `, and ${named.length - 5} more` : ''}). ` +
        'A check runs as a program in this project: read them, then add --allow_plan_checks (or remove the check: fields).',
    );
  }
  if (choice.remote && (named.length > 0 || choice.check !== undefined))
    throw usageError(
      '--backend bullmq runs no checks: a check runs where its agent ran, and a worker takes only data from the queue. ' +
        'Remove check: and --check, or run with --backend local.',
    );
  if (choice.checkTimeoutS !== undefined && choice.check === undefined && named.length === 0)
    throw usageError('--check_timeout was given without a check: add --check "CMD" (or check: to the plan\'s tasks), or drop it.');
  const checks = new Map<string, TaskCheck>();
  for (const task of plan.tasks) {
    const command = task.check ?? choice.check;
    if (command === undefined) continue;
    const timeoutS = task.checkTimeoutS ?? choice.checkTimeoutS ?? DEFAULT_CHECK_TIMEOUT_S;
    checks.set(task.id, await readTaskCheck(command, timeoutS, task.check === undefined ? '--check' : `${plan.path}: task ${task.id}`));
  }
  return checks;
}
