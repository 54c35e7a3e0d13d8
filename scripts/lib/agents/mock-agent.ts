// The mock agent: waits a delay, then returns a result that quotes its goal, or fails on request.
import { setTimeout as delay } from 'node:timers/promises';
import type { AgentContext, AgentExecutor, AgentOutcome } from './agent-types.ts';

/** Default delay range of a mock agent when `--delay_ms` is not given (ms): the seeds' 1-3 s. */
export const MOCK_DELAY_RANGE_MS = [1000, 3000] as const;

/** The line every mock result carries, so nobody takes it for an agent's findings. */
export const SIMULATED_NOTE = '**SIMULATED: a mock agent wrote this (a rehearsal); no real work was done and nothing below is a finding.**';

/** Options of {@link createMockExecutor}. */
export interface MockOptions {
  /** Simulated work time (ms); default a random value in {@link MOCK_DELAY_RANGE_MS}. */
  delayMs?: number;
  /** Report failure instead of success. */
  fail?: boolean;
}

/** Picks a random mock delay in {@link MOCK_DELAY_RANGE_MS} (ms). */
export function randomMockDelay(random = Math.random): number {
  const [low, high] = MOCK_DELAY_RANGE_MS;
  return Math.round(low + random() * (high - low));
}

/**
 * Creates an executor that simulates an agent: it sleeps (abortably) and returns a markdown body
 * quoting the goal, marked SIMULATED in its title, its first line and its frontmatter (`simulated: true`). Used by `spawn-agent-mock` and by `orchestrate --agent mock`.
 */
export function createMockExecutor(options: MockOptions = {}): AgentExecutor {
  return async (ctx: AgentContext): Promise<AgentOutcome> => {
    const delayMs = options.delayMs ?? randomMockDelay();
    await delay(delayMs, undefined, { signal: ctx.signal });
    const quoted = ctx.goal
      .split('\n')
      .map((line) => `> ${line}`)
      .join('\n');
    if (options.fail) {
      return {
        status: 'failed',
        error: 'mock agent failed on purpose (--fail)',
        body: `# ${ctx.taskName}: failed (SIMULATED)\n\n${SIMULATED_NOTE}\n\n## Goal\n${quoted}\n\n## Error\nThe mock agent was asked to fail (--fail).\n`,
        frontmatter: { simulated: true, mock_delay_ms: delayMs },
      };
    }
    const deps = ctx.dependsOn.length > 0 ? ctx.dependsOn.join(', ') : 'none';
    return {
      status: 'completed',
      body:
        `# ${ctx.taskName} (SIMULATED)\n\n${SIMULATED_NOTE}\n\n## Goal\n${quoted}\n\n## Result\n` +
        `SIMULATED by ${ctx.agent} (mock agent, attempt ${ctx.attempt}) in ${delayMs} ms, ` +
        `after dependencies: ${deps}. No analysis was made.\n`,
      frontmatter: { simulated: true, mock_delay_ms: delayMs },
    };
  };
}
