// The options of worktree isolation (isolated-executor.ts) and the constants its parts share.
import type { AgentContext } from '../agents/agent-types.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import type { MergeCheck } from './merge-queue.ts';
import type { Repository } from './worktree.ts';

/** How tasks of a session share the code: in the user's tree (`none`) or each in a git worktree of its own. */
export const ISOLATION_MODES = ['none', 'worktree'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

/** Options of {@link withWorktreeIsolation}. */
export interface IsolationOptions {
  /** The repository, or how to open it (at the first task; a failure fails that task with the reason). */
  repo: Repository | (() => Promise<Repository>);
  /** The session folder, to record the integration branch in the state (`integration`). Optional. */
  paths?: SessionPaths;
  /** First component of branch names; default `dto`. */
  prefix?: string;
  /** The user's gate (`--merge_check`), run before each merge; never read from a state or plan file. */
  check?: MergeCheck;
  /** Whether the task must change files (`--files` given, or `expect_changes`); default: it declared files. */
  expectChanges?: (ctx: AgentContext) => boolean;
  /** A line of progress. */
  log?: (line: string) => void;
  /**
   * How often a running agent's work so far is checked against the integration tip for conflicts
   * (ms; 0 = never). Default {@link CONFLICT_CHECK_MS}, or `DTO_CONFLICT_CHECK_MS` from the environment.
   */
  conflictCheckMs?: number;
}

/**
 * Default interval of the conflict prediction while an isolated agent runs (ms): a snapshot commit
 * plus `git merge-tree` costs tens of ms, so every 15 s is cheap next to an agent's minutes, and soon
 * enough for a person watching the board to see two agents heading for the same lines.
 */
export const CONFLICT_CHECK_MS = 15_000;

/**
 * Folder inside a worktree holding copies of the dependencies' result files while the agent runs,
 * so an agent confined to its working directory (claude's permissions) can read them; removed
 * before anything is committed.
 */
export const INPUTS_DIR = '.dto-inputs';
