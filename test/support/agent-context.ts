// Test helper: the context the task lifecycle gives an agent executor, with harmless defaults.
import path from 'node:path';
import type { AgentContext } from '../../scripts/lib/agents/agent-types.ts';

/**
 * An {@link AgentContext} for calling an executor directly: task `t` of session `s`, attempt 1, run
 * by Agent-01 in `cwd`, its result file `<cwd>/<taskName>.md`, no dependencies, a signal never
 * aborted, and lifecycle callbacks that do nothing. `fields` override any of these.
 */
export function agentContext(cwd: string, fields: Partial<AgentContext> = {}): AgentContext {
  const taskName = fields.taskName ?? 't';
  return {
    taskName,
    agent: 'Agent-01',
    goal: 'g',
    dependsOn: [],
    files: [],
    attempt: 1,
    session_id: 's',
    cwd,
    resultPath: path.join(cwd, `${taskName}.md`),
    dependencyResults: {},
    signal: new AbortController().signal,
    markRetrying: async () => {},
    markRunning: async () => {},
    ...fields,
  };
}
