// What worktree isolation keeps about a task between runs (its meta file beside the worktree), and the records and
// context made from it.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AgentOutcome } from '../agents/agent-types.ts';
import type { TaskMerge } from '../state/model.ts';
import type { Repository } from './worktree.ts';

/** What the wrapper keeps about a task between runs, beside its worktree (`meta/<task>.json`). */
export interface TaskMeta {
  branch: string;
  worktree: string;
  /** The integration tip the task's branch started from. */
  base: string;
  /** The agent's outcome once it ended: a resumed run merges it instead of running the agent again. */
  outcome: AgentOutcome | null;
  /** Why the last attempt did not merge: given to the next attempt as context. */
  mergeFailure: { conflicts: string[]; gate_output: string | null; branch: string } | null;
}

/** Where a task's worktree and its meta file live. */
export interface TaskPlaces {
  worktree: string;
  meta: string;
}

/** Where a task's worktree and its meta file live: `<worktrees>/<session>/trees/<task>` and `.../meta/<task>.json`. */
export function taskPlaces(repo: Repository, sessionId: string, task: string): TaskPlaces {
  const session = path.join(repo.worktreesDir, sessionId);
  return { worktree: path.join(session, 'trees', task), meta: path.join(session, 'meta', `${task}.json`) };
}

export async function readMeta(file: string): Promise<TaskMeta | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as TaskMeta;
  } catch {
    return null;
  }
}

export async function writeMeta(file: string, meta: TaskMeta): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temp, JSON.stringify(meta));
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

export function retryContext(failure: NonNullable<TaskMeta['mergeFailure']>): string {
  const what =
    failure.conflicts.length > 0
      ? `conflicted with work merged meanwhile, in: ${failure.conflicts.join(', ')}`
      : `failed the merge check:\n${failure.gate_output ?? ''}`;
  return (
    `\n\nNote: an earlier attempt of this task ${what}. Its work is kept on branch ${failure.branch}. ` +
    'You now start from the current integration branch, which holds that other work: redo the task on top of it.'
  );
}

export function mergeRecord(meta: TaskMeta, status: TaskMerge['status'], fields: Partial<TaskMerge> = {}): TaskMerge {
  return {
    branch: meta.branch,
    worktree: null,
    status,
    diff_stat: null,
    conflicts: [],
    commit: null,
    gate_output: null,
    expected_changes_missing: false,
    ...fields,
  };
}
