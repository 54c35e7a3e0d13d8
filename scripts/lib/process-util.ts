// Process liveness and process-group signalling, shared by poll-session, waiting agents and cancel-session.

/**
 * Tells whether a process exists on this machine.
 * `kill(pid, 0)` sends nothing; EPERM means the process exists but belongs to someone else.
 */
export function isProcessAlive(pid: number | null | undefined): boolean {
  if (!pid || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Sends a signal to a process group (negative pid), falling back to the process alone.
 * @returns whether any signal was delivered.
 */
export function signalProcessTree(pid: number, signal: NodeJS.Signals): boolean {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
      return true;
    } catch {
      // Not a group leader, or already gone: try the next form.
    }
  }
  return false;
}
