// orchestrate's --backend, --connection and --queue: the flags, their checks, and opening the BullMQ backend (bullmq is loaded only then).
import { usageError } from '../core/errors.ts';
import type { ParsedFlags } from '../cli/cli.ts';
import { flag } from '../cli/options.ts';
import { DEFAULT_QUEUE, QUEUE_NAME_PATTERN } from './backend-names.ts';
import type { AgentExecutor } from '../agents/agent-types.ts';
import { effectiveLimit } from '../scheduling/capacity.ts';
import type { RunnerKind } from '../state/model.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { readState } from '../state/state-store.ts';
import type { BullmqBackend, RemoteTaskKnobs } from './bullmq-backend.ts';
import { CONNECTION_ENV, takeConnection, type BackendConnection } from './connection.ts';

/** The backends `orchestrate --backend` accepts. */
export const BACKENDS = ['local', 'bullmq'] as const;

/** orchestrate's backend flags (typed option specs). */
export const BACKEND_FLAGS = {
  backend: flag.choice({
    values: BACKENDS,
    default: 'local',
    description: 'local (default): agents run here. bullmq: tasks go to a BullMQ queue and run on `worker` processes on any host.',
  }),
  connection: flag.string({
    placeholder: 'URL',
    description: `bullmq only: postgres://... or redis://... (default $${CONNECTION_ENV}). A secret: never printed or stored.`,
  }),
  queue: flag.string({ placeholder: 'NAME', description: `bullmq only: the queue the workers pull from (default ${DEFAULT_QUEUE}).` }),
};

/** The BullMQ backend's settings, checked before anything is written. */
export interface RemoteSettings {
  connection: BackendConnection;
  queueName: string;
}

/**
 * Checks --backend, --connection and --queue: bullmq needs a connection (flag or
 * {@link CONNECTION_ENV}) and takes no claude flags (each worker host sets its own:
 * `worker --agent claude ...`); local takes neither --connection nor --queue.
 *
 * With bullmq, {@link CONNECTION_ENV} is then removed from `env` (connection.ts `takeConnection`).
 *
 * @param claudeFlagNames - the command's claude-only flags (refused with bullmq when given).
 * @returns the remote settings, or null for the local backend.
 * @throws OrchestratorError usage (exit 2); messages show the connection redacted only.
 */
export function checkBackendOptions(
  options: { backend: (typeof BACKENDS)[number]; connection?: string; queue?: string },
  flags: ParsedFlags,
  passthrough: string[],
  claudeFlagNames: string[],
  env: NodeJS.ProcessEnv = process.env,
): RemoteSettings | null {
  if (options.backend === 'local') {
    const misplaced = ['connection', 'queue'].filter((name) => flags[name] !== undefined).map((name) => `--${name}`);
    if (misplaced.length > 0) throw usageError(`${misplaced.join(', ')} only apply to --backend bullmq: add it, or drop them.`);
    return null;
  }
  const connection = takeConnection(options.connection, env);
  if (!connection)
    throw usageError(
      `--backend bullmq needs the queue's server: pass --connection postgres://... or redis://..., or set $${CONNECTION_ENV}.`,
    );
  const queueName = options.queue ?? DEFAULT_QUEUE;
  if (!QUEUE_NAME_PATTERN.test(queueName))
    throw usageError(`Expected --queue to match [A-Za-z0-9._-]{1,64}, got ${JSON.stringify(queueName)}.`);
  const claudeGiven = claudeFlagNames.filter((name) => flags[name] !== undefined);
  if (claudeGiven.length > 0 || passthrough.length > 0) {
    const misplaced = [...claudeGiven.map((name) => `--${name}`), ...(passthrough.length ? ['-- ...'] : [])];
    throw usageError(
      `${misplaced.join(', ')} cannot be sent to other hosts: with --backend bullmq each worker sets its own claude flags (worker --agent claude ${misplaced[0]} ...).`,
    );
  }
  return { connection, queueName };
}

/**
 * Connects to the BullMQ backend with the session's worker limit as the queue's global concurrency.
 * Loads bullmq only now, so runs with the local backend never pay for it.
 * @throws OrchestratorError usage (exit 2) naming the backend and the redacted connection when the server cannot be reached.
 */
export async function openRemoteBackend(remote: RemoteSettings, workers: number, log?: (line: string) => void): Promise<BullmqBackend> {
  const { openBullmqBackend } = await import('./bullmq-backend.ts');
  const backend = await openBullmqBackend({ connection: remote.connection, queueName: remote.queueName, maxWorkers: workers, log });
  log?.(`Backend: BullMQ (${remote.connection.engine}) at ${backend.redacted}, queue ${backend.queueName}, global concurrency ${workers}.`);
  return backend;
}

/**
 * The plan runner's executor factory for the BullMQ backend. Before each job is added, the queue's
 * global concurrency follows the session's effective worker limit (`max_workers`, lowered by the
 * rate-limit-adaptive limit, scheduling/capacity.ts), so the limit holds on every host.
 */
export function remoteExecutorFor(
  backend: BullmqBackend,
  paths: SessionPaths,
  runner: RunnerKind,
): (task: RemoteTaskKnobs) => AgentExecutor {
  return (task) => {
    const executor = backend.executorFor(task, runner);
    return async (ctx) => {
      const state = await readState(paths).catch(() => null);
      if (state?.session_id === ctx.session_id) await backend.syncConcurrency(effectiveLimit(state));
      return executor(ctx);
    };
  };
}
