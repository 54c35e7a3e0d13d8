// The options of one background task (spawn-agent, spawn-agent-mock) and the names its launches share, apart from the code that runs them.
import type { AgentExecutor } from '../agents/agent-types.ts';
import type { SessionState } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { taskOf } from '../scheduling/scheduling.ts';
import type { SessionChoice, TaskRegistration } from '../scheduling/transitions.ts';
import type { AgentLaunch, AgentScript } from './launch-types.ts';

/** The environment variable that tells a launched agent which claimed task to take over (never recorded in the state). */
export const ADOPT_TOKEN_ENV = 'DTO_ADOPT_TOKEN';

/** Default wait for a dependency that is not registered yet (ms): 10 minutes. */
export const DEFAULT_DEP_TIMEOUT_MS = 10 * 60_000;

/**
 * The plain progress line of task `name` in `state`, `<name> <status>` (`cancelled` once the task is gone): what a runner
 * prints when no printer was injected (`describe` here, and the plan runner's).
 */
export function plainTaskLine(state: SessionState, name: string): string {
  return `${name} ${taskOf(state, name)?.status ?? 'cancelled'}`;
}

/** Options of `runBackgroundTask` (background-task.ts). */
export interface BackgroundTaskOptions {
  paths: SessionPaths;
  session: SessionChoice;
  task: Omit<TaskRegistration, 'pid'>;
  /** Absolute result folder. */
  outputDir: string;
  /** The directory the agent works in. */
  agentCwd: string;
  /** How long to wait for an unregistered dependency to appear (ms). */
  depTimeoutMs?: number;
  executor: AgentExecutor;
  /** Progress lines for the person who started the process (stdout by default). */
  log?: (line: string) => void;
  /**
   * The progress line of task `name`'s current status in `state` (default: `<name> <status>`). The
   * agent scripts pass poll-session's own line (progress/event-lines.ts `taskLine`): the printer is
   * injected, so execution/ never imports progress/, a floor above it.
   */
  describe?: (state: SessionState, name: string) => string;
  /**
   * Take over the queued task claimed for a launch with this token (see task-queue.ts) instead of
   * registering it: set by the process that started this agent, through `DTO_ADOPT_TOKEN`.
   */
  adoptToken?: string;
  /**
   * Register and return at once: the task is registered with no owner, so the session's decision either starts it now
   * as a process of its own (a launch of its recorded command, as for any queued task) or leaves it queued.
   */
  detach?: boolean;
  /** When the task is queued, stay until it ends (polling the state, holding no slot) and report how it ended. */
  wait?: boolean;
  /**
   * Lets this agent run, after its own task, the next queued task of its kind in the same process
   * (see runClaimed): the agent script it is, the directory it runs in, and how to build a task's
   * options from that task's recorded (validated) launch.
   */
  continueWith?: {
    script: AgentScript;
    cwd: string;
    build: (launch: AgentLaunch) => BackgroundTaskOptions | Promise<BackgroundTaskOptions>;
  };
}
