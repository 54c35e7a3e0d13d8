// The lease of a claimed task: renewed on one timer while its agent runs, never queued twice behind a renewal still waiting for the lock.

/** What a {@link LeaseKeeper} needs from its owner: one renewal (a state write under the lock). Its failure is retried at the next tick. */
export interface LeaseRenewal {
  renew(): Promise<unknown>;
}

/**
 * Renews a task's lease (its `heartbeat_at`) every `intervalMs` while started, as BullMQ's lock
 * manager renews its jobs' locks: one timer, a narrow interface to its owner, and a renewal still
 * waiting for the lock when the next tick comes is not joined by a second one (on a starved machine
 * they piled up behind each other). The timer does not keep the process alive (`unref`).
 */
export class LeaseKeeper {
  private timer: NodeJS.Timeout | null = null;
  private renewing = false;

  /**
   * @param owner - makes one renewal.
   * @param intervalMs - time between renewals (ms); the caller picks a third of the lease, at least 1 s.
   */
  constructor(
    private readonly owner: LeaseRenewal,
    private readonly intervalMs: number,
  ) {}

  /** Starts renewing (the first renewal one interval from now). Idempotent. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops renewing; a renewal under way finishes on its own. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    if (this.renewing) return;
    this.renewing = true;
    void this.owner
      .renew()
      .catch(() => {
        // A missed renewal is retried at the next tick; the lease allows for several.
      })
      .finally(() => (this.renewing = false));
  }
}
