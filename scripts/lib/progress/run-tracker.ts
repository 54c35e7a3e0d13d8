// Follows a session through its events alone (tasks, dependencies, statuses) and derives "batch completed" events.
import type { SessionEvent } from '../state/events.ts';
import { topologicalBatches, type TaskGraph } from '../scheduling/graph.ts';
import { TASK_STATUSES, TERMINAL_STATUSES, type TaskStatus } from '../state/model.ts';

/** An event poll-session derives (not written to events.jsonl): every task of a topological batch has ended. */
export interface BatchCompletedEvent {
  /** When the batch's last task ended (ISO 8601). */
  ts: string;
  session_id: string;
  type: 'batch_completed';
  /** 1-based batch number: batch 1 has no dependencies, batch k depends only on earlier batches. */
  batch: number;
  /** How many batches the session's DAG has now. */
  batches: number;
  /** The batch's tasks, in registration order. */
  tasks: string[];
  /** How the batch's tasks ended, by status (only statuses that occur). */
  counts: Partial<Record<TaskStatus, number>>;
  /** From the batch's first start to its last end (ms); null when none of its tasks ran. */
  duration_ms: number | null;
}

/** An event as poll-session prints it: one read from events.jsonl, or one it derived. */
export type ProgressEvent = SessionEvent | BatchCompletedEvent;

/** What the tracker knows of one task. */
export interface TrackedTask {
  agent: string | null;
  dependsOn: string[];
  /** The last status the events showed; `replacing` once a replacement was started and until it registers. */
  status: TaskStatus | 'replacing';
  attempt: number;
  /** First start of the current registration (ISO), and the last end. */
  startedAt: string | null;
  endedAt: string | null;
}

/** The status each event type sets. A Map: event types come from a file, and `constructor` must find nothing. */
const STATUS_OF_EVENT = new Map<string, TaskStatus>([
  ['registered', 'pending'],
  ['waiting', 'waiting'],
  ['started', 'running'],
  ['retrying', 'retrying'],
  ['completed', 'completed'],
  ['failed', 'failed'],
  ['skipped', 'skipped'],
  ['cancelled', 'cancelled'],
  ['merge_failed', 'merge_failed'],
]);

/**
 * Builds a session's picture from its events, one at a time, and tells when a topological batch
 * (computed with graph.ts from the `depends_on` of `registered` events) has ended: every task of it
 * ended. A batch is announced again only if its set of tasks changed (a late registration).
 *
 * @example
 * const tracker = new RunTracker();
 * for (const event of batch.events) tracker.apply(event);
 * for (const done of tracker.completedBatches()) print(done);
 */
export class RunTracker {
  sessionId: string | null = null;
  readonly tasks = new Map<string, TrackedTask>();
  private announced = new Set<string>();

  /** Applies one event (events of another session start the picture afresh). */
  apply(event: SessionEvent): void {
    if (event.type === 'session_started' || (this.sessionId !== null && event.session_id !== this.sessionId)) this.reset();
    this.sessionId = event.session_id;
    const name = event.task;
    if (!name) return;
    if (event.type === 'replaced') {
      const task = this.tasks.get(name);
      if (task) task.status = 'replacing';
      return;
    }
    const status = STATUS_OF_EVENT.get(event.type);
    if (!status) return;
    let task = this.tasks.get(name);
    if (!task || event.type === 'registered') {
      task = {
        agent: event.agent ?? task?.agent ?? null,
        dependsOn: Array.isArray(event.depends_on) ? (event.depends_on as string[]) : (task?.dependsOn ?? []),
        status,
        attempt: task?.attempt ?? 0,
        startedAt: null,
        endedAt: null,
      };
      this.tasks.set(name, task);
    }
    task.status = status;
    if (event.agent) task.agent = event.agent;
    if (typeof event.attempt === 'number') task.attempt = event.attempt;
    if (status === 'running') task.startedAt ??= event.ts;
    if (TERMINAL_STATUSES.has(status)) task.endedAt = event.ts;
  }

  /** The dependency graph of the tasks seen so far. */
  graph(): TaskGraph {
    return new Map([...this.tasks].map(([name, task]) => [name, task.dependsOn]));
  }

  /** The topological batches of the tasks seen so far ([] if the dependencies form a cycle). */
  batches(): string[][] {
    try {
      return topologicalBatches(this.graph());
    } catch {
      return [];
    }
  }

  /**
   * The batches that have ended since the last call, each reported once.
   * @param isHeld - tasks to treat as still active although their last event ended them, e.g. a
   *   dead agent about to be replaced (`poll-session --replace_dead`). Default: none.
   */
  completedBatches(isHeld: (name: string) => boolean = () => false): BatchCompletedEvent[] {
    if (this.sessionId === null) return [];
    const batches = this.batches();
    const out: BatchCompletedEvent[] = [];
    batches.forEach((names, index) => {
      const key = `${index}:${names.join(',')}`;
      if (this.announced.has(key)) return;
      const tasks = names.map((name) => this.tasks.get(name)!);
      const ended = (name: string, task: TrackedTask) => task.status !== 'replacing' && TERMINAL_STATUSES.has(task.status) && !isHeld(name);
      if (!names.every((name, i) => ended(name, tasks[i]!))) return;
      this.announced.add(key);
      const counts: Partial<Record<TaskStatus, number>> = {};
      for (const status of TASK_STATUSES) {
        const n = tasks.filter((task) => task.status === status).length;
        if (n > 0) counts[status] = n;
      }
      const starts = tasks.flatMap((task) => (task.startedAt ? [Date.parse(task.startedAt)] : []));
      const ends = tasks.flatMap((task) => (task.startedAt && task.endedAt ? [Date.parse(task.endedAt)] : []));
      const lastEnd = Math.max(...tasks.map((task) => (task.endedAt ? Date.parse(task.endedAt) : 0)));
      out.push({
        ts: new Date(lastEnd).toISOString(),
        session_id: this.sessionId!,
        type: 'batch_completed',
        batch: index + 1,
        batches: batches.length,
        tasks: names,
        counts,
        duration_ms: starts.length > 0 && ends.length > 0 ? Math.max(0, Math.max(...ends) - Math.min(...starts)) : null,
      });
    });
    return out;
  }

  private reset(): void {
    this.tasks.clear();
    this.announced.clear();
    this.sessionId = null;
  }
}
