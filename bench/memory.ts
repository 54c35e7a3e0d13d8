// Benchmark 4: resident memory of background agents waiting on a dependency, one alone and 50 at once.
import { setTimeout as delay } from 'node:timers/promises';
import { memoryOf, StateObserver, startScript, tempProject, waitFor } from './lib/procs.ts';

/** Memory of `agents` waiting agents (kB). */
export interface MemoryRow {
  agents: number;
  launcher: string;
  /** Peak RSS (VmHWM) of the largest agent, and the sum over all of them. */
  peakMaxKB: number;
  peakSumKB: number;
  /** Current RSS (VmRSS) while waiting. */
  rssMaxKB: number;
  rssSumKB: number;
  problems: string[];
}

async function measure(agents: number, env: NodeJS.ProcessEnv | undefined, launcher: string): Promise<MemoryRow> {
  const project = await tempProject('memory');
  const observer = new StateObserver(project.sessionDir);
  observer.start();
  const names = Array.from({ length: agents }, (_, i) => `m${String(i + 1).padStart(2, '0')}`);
  const children = names.map((name) =>
    startScript(
      'spawn-agent-mock',
      ['--task_name', name, '--goal', `wait ${name}`, '--depends_on', 'never-registered', '--dep_timeout', '600', '--delay_ms', '0', '--session_id', 'memory', '--quiet'],
      project.dir,
      env,
    ),
  );
  const problems: string[] = [];
  try {
    await observer.until((o) => names.every((n) => o.when(n, 'waiting') !== undefined), 5 * 60_000);
    await delay(1500); // settle: every agent has re-read the state after the last registration
    const samples = await Promise.all(children.map((child) => memoryOf(child.pid)));
    return {
      agents,
      launcher,
      peakMaxKB: Math.max(...samples.map((s) => s.peakKB)),
      peakSumKB: samples.reduce((sum, s) => sum + s.peakKB, 0),
      rssMaxKB: Math.max(...samples.map((s) => s.rssKB)),
      rssSumKB: samples.reduce((sum, s) => sum + s.rssKB, 0),
      problems,
    };
  } finally {
    observer.stop();
    for (const child of children) child.proc.kill('SIGTERM');
    await Promise.all(children.map((child) => waitFor(child, 60_000).catch(() => null)));
    await project.remove();
  }
}

/** RSS of one waiting agent and of `many` at once. */
export async function benchMemory(options: { many: number; compareTsx: boolean; log: (line: string) => void }): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  const launcher = process.env.DTO_LAUNCH === 'tsx' ? 'tsx' : process.env.DTO_LAUNCH === 'dist' ? 'prebuilt' : 'default';
  const plan: Array<[number, NodeJS.ProcessEnv | undefined, string]> = [[1, undefined, launcher], [options.many, undefined, launcher]];
  if (options.compareTsx && launcher !== 'tsx') plan.push([1, { ...process.env, DTO_LAUNCH: 'tsx' }, 'tsx']);
  for (const [agents, env, label] of plan) {
    options.log(`memory: ${agents} waiting agent(s) (${label}) ...`);
    rows.push(await measure(agents, env, label));
    const row = rows.at(-1)!;
    options.log(`  peak RSS max ${(row.peakMaxKB / 1024).toFixed(1)} MB, sum ${(row.peakSumKB / 1024).toFixed(0)} MB`);
  }
  return rows;
}
