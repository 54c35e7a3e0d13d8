// What a recorded launch is made of (the task field `launch`): data only, so every file of execution/ can name it without a cycle.

/** The only scripts a recorded launch may name: the two background agents. */
export const AGENT_SCRIPTS = ['spawn-agent', 'spawn-agent-mock'] as const;
export type AgentScript = (typeof AGENT_SCRIPTS)[number];

/** How to start a task's agent again, as recorded in the state (`launch`): data, never an argv. */
export interface AgentLaunch {
  script: AgentScript;
  /** The script's own flags (no node options, no script path). */
  args: string[];
  /** Absolute directory the agent was started in (where its session folder is resolved). */
  cwd: string;
  /**
   * With a flag that runs a program of the user's (`--check`): the HMAC-SHA256 of the launch made with this user's launch
   * key (launch-signature.ts), so such a launch is replayed only when this user's own agent recorded it.
   */
  signature?: string;
}
