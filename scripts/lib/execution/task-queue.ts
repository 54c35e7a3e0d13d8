// Acting on the one scheduling decision: record it under the lock, and start the agents of queued background tasks.
import { ADOPT_TOKEN_ENV } from './background-options.ts';
import { randomUUID } from 'node:crypto';
import { identityOf } from '../process/identity.ts';
import { startAgent, validateAgentLaunch, type AgentLaunch } from './agent-command.ts';
import { errorMessage } from '../core/errors.ts';
import { decide, taskOf, type Decision } from '../scheduling/scheduling.ts';
import type { SessionState } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { updateState, type StateTransaction } from '../state/state-store.ts';
import { applyBudgetStops, ownerFields, setStatus } from '../scheduling/transitions.ts';

/** A queued background task claimed for a launch. */
export interface Adoption {
  name: string;
  token: string;
  launch: AgentLaunch;
}

/** What {@link applyDecision} wrote. */
export interface AppliedDecision {
  /** Tasks of the calling process now `running`, owned by it: the caller runs them. */
  own: string[];
  /** Queued tasks now claimed for a launch: the caller starts them with {@link launchAdoptions} after the transaction. */
  adoptions: Adoption[];
  /** A queued task the caller chose to run in its own process (`keep`): now `running`, owned by `self`. */
  kept: { name: string; launch: AgentLaunch } | null;
  skipped: string[];
  failed: string[];
  /** The decision applied. */
  decision: Decision;
}

/**
 * Takes the scheduling decision ({@link decide}) for process `self` on the state of a transaction,
 * and records it: deaths and dependency time-outs `failed`, failed dependencies `skipped`, own
 * tasks that start `running` (owned by `self`), queued tasks that start claimed for a launch
 * (`running`, no pid, a fresh `adoption_token`; their recorded launch validated first, a refused
 * one fails the task with the reason), and tasks that wait `waiting` with what they wait on.
 * The first queued task whose validated launch `keep` accepts is claimed by `self` instead (an
 * agent whose task ended runs the next queued task of its own kind without a new process start).
 *
 * @param statePath - the session's state file (a recorded launch must join this session).
 * @param keep - which launches the caller can run itself (at most one is kept); default none.
 */
export function applyDecision(
  tx: StateTransaction,
  state: SessionState,
  self: number,
  statePath: string,
  keep?: (launch: AgentLaunch) => boolean,
): AppliedDecision {
  const decision = decide(state, { now: tx.now, owner: self });
  const applied: AppliedDecision = { own: [], adoptions: [], kept: null, skipped: [], failed: [], decision };
  for (const { name, reason, died } of decision.fail) {
    setStatus(tx, state, name, 'failed', { reason, ...(died ? { agent_died: true } : {}) });
    applied.failed.push(name);
  }
  for (const { name, reason } of decision.requeue) {
    // Its claim counted an attempt that never ran: take it back, and wait for a slot again.
    const task = taskOf(state, name)!;
    setStatus(tx, state, name, 'waiting', {
      attempts: Math.max(0, task.attempts - 1),
      adoption_token: null,
      heartbeat_at: null,
      started_at: null,
      waiting_on: [],
      error: `queued again: ${reason}`,
    });
  }
  for (const { name, reason } of decision.skip) {
    setStatus(tx, state, name, 'skipped', { reason });
    applied.skipped.push(name);
  }
  // The budget's stops (`--on_budget stop`) and its `budget` event (scheduling/budget.ts).
  applyBudgetStops(tx, state, decision);
  for (const name of decision.start) {
    const task = taskOf(state, name)!;
    if (task.pid === self) {
      setStatus(tx, state, name, 'running', ownerFields(self));
      applied.own.push(name);
      continue;
    }
    let launch: AgentLaunch;
    try {
      launch = validateAgentLaunch(task.launch, name, statePath);
    } catch (error) {
      setStatus(tx, state, name, 'failed', { reason: `could not be started: recorded launch refused: ${errorMessage(error)}` });
      applied.failed.push(name);
      continue;
    }
    if (applied.kept === null && keep?.(launch)) {
      setStatus(tx, state, name, 'running', ownerFields(self));
      applied.kept = { name, launch };
      continue;
    }
    const token = randomUUID();
    setStatus(tx, state, name, 'running', { ...ownerFields(null), adoption_token: token });
    applied.adoptions.push({ name, token, launch });
  }
  for (const { name, on } of decision.wait) {
    const task = taskOf(state, name)!;
    if (task.status === 'pending') setStatus(tx, state, name, 'waiting', { waiting_on: on });
    else if (task.waiting_on.join('\0') !== on.join('\0')) task.waiting_on = on;
  }
  return applied;
}

/**
 * Starts the agent of each claimed task, detached (its own session and process group), without a
 * shell, through the skill's launcher with the command rebuilt from the validated launch
 * (agent-command.ts), and {@link ADOPT_TOKEN_ENV} set so the new process takes the task over
 * instead of registering it again. A launch that fails to start is recorded failed with the reason.
 *
 * @returns the started tasks with their process ids.
 */
export async function launchAdoptions(paths: SessionPaths, adoptions: readonly Adoption[]): Promise<Array<{ task: string; pid: number }>> {
  const started: Array<{ task: string; pid: number }> = [];
  for (const { name, token, launch } of adoptions) {
    const outcome = await startAgent(launch, { [ADOPT_TOKEN_ENV]: token });
    // Read now, while the new process surely is ours: its identity tells a slow start from a lost one.
    const launched = 'pid' in outcome ? identityOf(outcome.pid) : null;
    if ('pid' in outcome) started.push({ task: name, pid: outcome.pid });
    const failure = 'error' in outcome ? outcome.error : null;
    await updateState(paths, (tx) => {
      const task = tx.state ? taskOf(tx.state, name) : undefined;
      // Still the claim this process made, not yet taken over.
      if (task?.status !== 'running' || task.adoption_token !== token || task.pid !== null) return;
      if (failure !== null) {
        setStatus(tx, tx.state!, name, 'failed', { reason: `its agent could not be started: ${failure}`, adoption_token: null });
      } else if (launched !== null) task.launched = launched;
    }).catch(() => {
      // Not recorded: the claim is then judged by its lease alone, as before a launch was recorded.
    });
  }
  return started;
}

/**
 * One scheduling pass for process `self`: under the lock, `prelude` (e.g. a heartbeat), then the
 * decision applied ({@link applyDecision}); then the claimed launches started. Whoever frees a slot
 * or changes the picture runs one: an agent that ends its task, a running agent's heartbeat,
 * poll-session, orchestrate.
 *
 * @returns what was applied, or null when there is no session.
 */
export async function schedulePass(
  paths: SessionPaths,
  options: { self?: number; prelude?: (tx: StateTransaction, state: SessionState) => void; keep?: (launch: AgentLaunch) => boolean } = {},
): Promise<AppliedDecision | null> {
  const self = options.self ?? process.pid;
  const applied = await updateState(paths, (tx) => {
    const state = tx.state;
    if (!state) return null;
    options.prelude?.(tx, state);
    return applyDecision(tx, state, self, paths.statePath, options.keep);
  });
  if (applied) await launchAdoptions(paths, applied.adoptions);
  return applied;
}

/**
 * Whether a scheduling pass by a process that owns nothing would change something: a death to
 * record, a queued task to start, skip or fail. Read without the lock, so pollers take the lock
 * only when there is work.
 */
export function passNeeded(state: SessionState, now: Date, self = process.pid): boolean {
  const decision = decide(state, { now, owner: self });
  return decision.start.length + decision.skip.length + decision.fail.length + decision.stop.length > 0;
}
