// Wake-ups of the jobs an orchestrator follows: queue events counted per job, so an event that arrives between two looks at a job is never lost.

/**
 * Counts the queue events of each followed job. A follower reads {@link mark} before it looks at
 * the job and passes it to {@link next}, which returns at once when an event came since that look
 * (else at the next event, an abort, or after `maxMs`). Waiting only for events that arrive after the
 * wait began would miss those that came during the look and sleep a whole poll interval.
 */
export class JobWakeups {
  readonly #counts = new Map<string, number>();
  readonly #waiters = new Map<string, Set<() => void>>();

  /** Starts counting events of `jobId` (call before the job is added: its first events follow at once). */
  follow(jobId: string): void {
    if (!this.#counts.has(jobId)) this.#counts.set(jobId, 0);
  }

  /** Stops counting `jobId` and wakes its waiters. */
  unfollow(jobId: string): void {
    this.#counts.delete(jobId);
    this.#wake(jobId);
  }

  /** An event about `jobId` (from QueueEvents); ignored for jobs nobody follows. */
  notify(jobId: string): void {
    const count = this.#counts.get(jobId);
    if (count === undefined) return;
    this.#counts.set(jobId, count + 1);
    this.#wake(jobId);
  }

  /** The number of events of `jobId` so far (0 for a job not followed). */
  mark(jobId: string): number {
    return this.#counts.get(jobId) ?? 0;
  }

  /**
   * Resolves when `jobId` had an event since `mark` (at once if it already had one), when `signal`
   * aborts, or after `maxMs` (ms). Never rejects.
   */
  next(jobId: string, mark: number, signal: AbortSignal, maxMs: number): Promise<void> {
    if (this.mark(jobId) !== mark || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const set = this.#waiters.get(jobId) ?? new Set<() => void>();
      this.#waiters.set(jobId, set);
      const timer = setTimeout(() => done(), maxMs);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#waiters.get(jobId) === set) this.#waiters.delete(jobId);
        signal.removeEventListener('abort', done);
        resolve();
      };
      set.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #wake(jobId: string): void {
    for (const done of [...(this.#waiters.get(jobId) ?? [])]) done();
  }
}
