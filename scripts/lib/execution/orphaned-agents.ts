// Agents that outlived the process that ran them (its runner SIGKILLed): stopped before their task starts again, so one task never has two writers.
import { terminateProcessTree, type TerminateResult } from '../process/tree.ts';

/** A task's agent process as recorded (`agent_child`): pid, start token and host. */
export interface AgentIdentity {
  pid: number;
  start: string | null;
  host: string | null;
}

/** A task whose previous attempt's agent may still run, found while its next attempt was registered. */
export interface OrphanedAgent {
  task: string;
  identity: AgentIdentity;
}

/** Wait between SIGTERM and SIGKILL for an orphaned agent (ms): it has no one to report to, so a short grace. */
export const ORPHAN_GRACE_MS = 2000;

/**
 * The orphan to stop before task `task` runs again: its recorded agent process (`agent_child`, e.g. the
 * `claude` CLI, which leads a process group of its own and so survives its runner's SIGKILL), when one
 * is recorded. Whether it still runs is judged later by {@link stopOrphanedAgents}, outside the lock.
 */
export function orphanOf(task: string, agentChild: AgentIdentity | null | undefined): OrphanedAgent[] {
  return agentChild ? [{ task, identity: { ...agentChild } }] : [];
}

/**
 * Stops each orphaned agent that still runs, with its whole tree, before its task's next attempt
 * starts (`orchestrate --resume`, `poll-session --replace_dead`). Its output went to the runner that
 * died, so it cannot be adopted; left alive it would edit the same files as the new attempt and spend
 * beside it. Each signal goes only to the recorded process, checked just before (pid plus start time,
 * this host; process/tree.ts `terminateProcessTree`): a reused pid, another host or a process that
 * already exited is left alone.
 *
 * @param log - told one line per agent stopped (the task, its pid, what was signalled).
 * @returns each orphan with what {@link terminateProcessTree} did (`gone` for one that had exited).
 */
export async function stopOrphanedAgents(
  orphans: readonly OrphanedAgent[],
  log: (line: string) => void,
  graceMs = ORPHAN_GRACE_MS,
): Promise<Array<OrphanedAgent & { result: TerminateResult }>> {
  return Promise.all(
    orphans.map(async (orphan) => {
      const result = await terminateProcessTree(orphan.identity, { graceMs });
      if (!result.gone && result.refused === null)
        log(
          `${orphan.task}: its previous agent (pid ${orphan.identity.pid}) outlived its runner and was still running: ` +
            `stopped it (${result.terminated} process(es) sent SIGTERM, ${result.killed} SIGKILL) before the next attempt`,
        );
      return { ...orphan, result };
    }),
  );
}
