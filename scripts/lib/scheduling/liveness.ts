// Whether a task's agent is dead: its process gone or reused, or its lease expired and the process stopped, hung or unknown (a live, slow one keeps its task for a while).
import { checkIdentityCached, isZombie, processRunState, type RunState } from '../process/identity.ts';
import { isProcessAlive } from '../process/signals.ts';
import { ACTIVE_STATUSES, type SessionState, type TaskRecord } from '../state/model.ts';

/** Statuses that hold one of the session's worker slots. */
export const SLOT_STATUSES: ReadonlySet<string> = new Set(['running', 'retrying']);

/** Tells whether a live owner process is stopped or may run (see `processRunState`). */
export type RunStateCheck = (pid: number) => RunState;

/**
 * How many leases a live owner that is not stopped may go without renewing before it is taken for hung. A renewal
 * is a state write under the session lock: on a starved machine (200 agents on 2 cores) it can wait past one lease
 * (31 s for a 30 s lease was seen) while the process is fine. A stopped process, or one of another host, gets one lease.
 */
export const STARVED_LEASES = 4;

/** Tells whether the recorded owner of a task is still that process (see `checkIdentity`). */
export type IdentityCheck = (recorded: { pid: number; start?: string | null; host?: string | null }) => 'alive' | 'gone' | 'unknown';

/**
 * Why an active task is considered dead, or null if it is not.
 *
 * Dead when its owner process is gone on this host: the pid does not exist, or exists with another
 * start time (a pid reused by another process is not the agent), or is <= 1 (never an agent, e.g. a
 * hand-edited state). Dead too when its lease expired: `heartbeat_at` older than `lease_ms`, for a
 * running or retrying task, for a launch claimed but never taken over (`adoption_token`, no pid
 * yet), and for a waiting task whose owner renews its heartbeat while it waits. A queued task
 * (waiting, no pid) has no owner and never dies. An owner verified alive on this host is looked at before its
 * lease is declared expired: stopped, it is dead; running or sleeping, it is only slow until
 * {@link STARVED_LEASES} leases have passed without a renewal (then it is taken for hung).
 *
 * @param identity - the identity check (injectable for tests). @default checkIdentityCached (a
 *   verified pid is re-read from /proc at most every 5 s while it exists; see process/identity.ts)
 * @param runState - whether a live owner is stopped (injectable for tests). @default processRunState
 */
export function deathReason(
  state: SessionState,
  record: TaskRecord,
  now: Date,
  identity: IdentityCheck = checkIdentityCached,
  runState: RunStateCheck = processRunState,
): string | null {
  if (!ACTIVE_STATUSES.has(record.status)) return null;
  if (record.pid === null) return claimDeathReason(state, record, now, identity, runState);
  const verdict = identity({ pid: record.pid, start: record.pid_start, host: record.host });
  if (verdict === 'gone') {
    if (record.pid <= 1) return `agent process exited without reporting (pid ${record.pid} can never be an agent)`;
    // A zombie (exited, not yet collected by its parent) is the agent itself, not a reused pid.
    return isProcessAlive(record.pid) && !isZombie(record.pid)
      ? `agent process exited without reporting (pid ${record.pid} now belongs to another process)`
      : 'agent process exited without reporting';
  }
  if (!record.heartbeat_at) return null;
  const age = now.getTime() - Date.parse(record.heartbeat_at);
  if (!(age > state.lease_ms)) return null;
  const who = SLOT_STATUSES.has(record.status) ? 'agent' : `${record.status} agent`;
  const stale = `${who} heartbeat stale for ${Math.round(age / 1000)} s (lease ${state.lease_ms / 1000} s)`;
  // Of another host (or unreadable), the lease is all there is to go by.
  if (verdict !== 'alive') return stale;
  switch (expiredLeaseOf(record.pid, age, state.lease_ms, runState)) {
    case 'slow':
      return null;
    case 'stopped':
      return `${stale}: its process (pid ${record.pid}) is stopped`;
    case 'hung':
      return `${stale}: its process (pid ${record.pid}) is alive but renewed nothing for ${STARVED_LEASES} leases, taken for hung`;
    default:
      return stale;
  }
}

/**
 * What an expired lease means for a process verified alive on this host, `age` ms after its last renewal: `stopped`
 * (dead at once), `slow` (running or sleeping, within {@link STARVED_LEASES} leases), `hung` (running past them), or
 * `unknown` (its state could not be read: the lease alone decides).
 */
function expiredLeaseOf(pid: number, age: number, leaseMs: number, runState: RunStateCheck): 'stopped' | 'slow' | 'hung' | 'unknown' {
  const run = runState(pid);
  if (run !== 'running') return run;
  return age <= STARVED_LEASES * leaseMs ? 'slow' : 'hung';
}

/**
 * Why a launch claim (no pid yet, an `adoption_token`) is dead, or null: past its lease, unless the process started
 * for it (`launched`) is alive on this host and not stopped, for up to {@link STARVED_LEASES} leases (a slow start on
 * a loaded machine: starting a script can take seconds of CPU it does not get). A launched process that is gone is
 * dead at once.
 */
function claimDeathReason(
  state: SessionState,
  record: TaskRecord,
  now: Date,
  identity: IdentityCheck,
  runState: RunStateCheck,
): string | null {
  if (record.adoption_token === null || !record.heartbeat_at) return null;
  const age = now.getTime() - Date.parse(record.heartbeat_at);
  const seconds = `${Math.round(age / 1000)} s (lease ${state.lease_ms / 1000} s)`;
  const verdict = record.launched ? identity(record.launched) : 'unknown';
  if (verdict === 'gone') return `launched agent (pid ${record.launched!.pid}) exited before taking the task over, after ${seconds}`;
  if (!(age > state.lease_ms)) return null;
  const stale = `launched agent never took the task over in ${seconds}`;
  if (verdict !== 'alive') return stale;
  const lease = expiredLeaseOf(record.launched!.pid, age, state.lease_ms, runState);
  if (lease === 'slow') return null;
  return lease === 'stopped' ? `${stale}: its process (pid ${record.launched!.pid}) is stopped` : stale;
}
