// Test helper: wait until a project's session state satisfies a condition.
import { setTimeout as delay } from 'node:timers/promises';
import type { SessionState } from '../../scripts/lib/state/schema.ts';

/**
 * Reads the state every 50 ms until `predicate` holds; throws with the tasks after `timeoutMs` (60 s by default: only a
 * failure waits that long, and script starts on a loaded 2-core machine have taken over 20 s).
 */
export async function waitForState(
  project: { state(): Promise<SessionState | null> },
  predicate: (state: SessionState) => boolean,
  timeoutMs = 60_000,
): Promise<SessionState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await project.state();
    if (state && predicate(state)) return state;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms; state: ${JSON.stringify(state?.tasks, null, 1)}`);
    await delay(50);
  }
}
