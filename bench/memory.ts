// Benchmark 4: resident memory of the orchestrator while many background tasks are registered and only a few may run.
import { readdir, readFile, readlink } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { startScript, tempProject, waitFor } from './lib/procs.ts';

/** Memory of `tasks` background tasks registered at once with `--max_workers workers` (kB). */
export interface MemoryRow {
  tasks: number;
  workers: number;
  launcher: string;
  /**
   * Peak of the RSS summed over every process of the orchestrator (sampled every {@link SAMPLE_MS})
   * once every task is registered: what the registered tasks hold while they wait and run.
   */
  peakSumKB: number;
  /** Most orchestrator processes alive at one sample once every task is registered. */
  peakProcesses: number;
  /** The same peaks over the whole run, the start-up burst included (all N processes starting at once). */
  burstPeakSumKB: number;
  burstPeakProcesses: number;
  /** Samples taken. */
  samples: number;
  /** From the first start until every task ended (ms). */
  wallMs: number;
  problems: string[];
}

/** Sampling period of the RSS sum (ms), as the issue asks. */
export const SAMPLE_MS = 100;

/**
 * The orchestrator's processes of one project: every process whose working directory is the
 * project folder (the agents, the ones they start for queued tasks, poll-session), and their VmRSS.
 * The bench itself runs elsewhere, so it is not counted.
 */
async function projectProcesses(dir: string): Promise<Array<{ pid: number; rssKB: number }>> {
  const out: Array<{ pid: number; rssKB: number }> = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await readlink(`/proc/${entry}/cwd`)) !== dir) continue;
      const status = await readFile(`/proc/${entry}/status`, 'utf8');
      const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
      if (Number.isFinite(rss)) out.push({ pid: Number(entry), rssKB: rss });
    } catch {
      // Gone, or not ours to read.
    }
  }
  return out;
}

async function measure(tasks: number, workers: number, delayMs: number, launcher: string): Promise<MemoryRow> {
  const project = await tempProject('memory');
  const names = Array.from({ length: tasks }, (_, i) => `m${String(i + 1).padStart(3, '0')}`);
  const problems: string[] = [];
  let peakSumKB = 0;
  let peakProcesses = 0;
  let burstPeakSumKB = 0;
  let burstPeakProcesses = 0;
  let samples = 0;
  let sampling = true;
  let registered = false;
  const sampler = (async () => {
    while (sampling) {
      const procs = await projectProcesses(project.dir);
      samples += 1;
      const sum = procs.reduce((total, p) => total + p.rssKB, 0);
      burstPeakSumKB = Math.max(burstPeakSumKB, sum);
      burstPeakProcesses = Math.max(burstPeakProcesses, procs.length);
      if (!registered) {
        const text = await readFile(project.statePath, 'utf8').catch(() => '');
        registered = (text.match(/^ {2}m\d{3}:/gm) ?? []).length === tasks;
      }
      if (registered) {
        peakSumKB = Math.max(peakSumKB, sum);
        peakProcesses = Math.max(peakProcesses, procs.length);
      }
      await delay(SAMPLE_MS);
    }
  })();
  const began = Date.now();
  const children = names.map((name) =>
    startScript(
      'spawn-agent-mock',
      [
        '--task_name',
        name,
        '--goal',
        `work ${name}`,
        '--delay_ms',
        String(delayMs),
        '--max_workers',
        String(workers),
        '--session_id',
        'memory',
        '--quiet',
      ],
      project.dir,
    ),
  );
  try {
    const poll = startScript('poll-session', ['--expect', String(tasks), '--timeout', '900'], project.dir);
    const codes = await Promise.all(children.map((child) => waitFor(child, 15 * 60_000)));
    const pollExit = await waitFor(poll, 15 * 60_000);
    const failed = codes.filter((code) => code !== 0).length;
    if (failed > 0) problems.push(`${failed} spawn process(es) exited non-zero`);
    if (pollExit !== 0) problems.push(`poll-session exit ${pollExit}`);
    const wallMs = Date.now() - began;
    // The last agents exit just after their task ends: let the sampler see them go.
    await delay(500);
    return { tasks, workers, launcher, peakSumKB, peakProcesses, burstPeakSumKB, burstPeakProcesses, samples, wallMs, problems };
  } finally {
    sampling = false;
    await sampler;
    for (const child of children) child.proc.kill('SIGTERM');
    await project.remove();
  }
}

/** Peak RSS summed over the orchestrator's processes while `tasks` tasks run `workers` at a time. */
export async function benchMemory(options: {
  tasks: number;
  workers: number;
  delayMs: number;
  log: (line: string) => void;
}): Promise<MemoryRow[]> {
  const launcher = process.env.DTO_LAUNCH === 'tsx' ? 'tsx' : process.env.DTO_LAUNCH === 'dist' ? 'prebuilt' : 'default';
  options.log(`memory: ${options.tasks} tasks registered at once, --max_workers ${options.workers} (${launcher}) ...`);
  const row = await measure(options.tasks, options.workers, options.delayMs, launcher);
  options.log(
    `  peak RSS sum once registered ${(row.peakSumKB / 1024).toFixed(0)} MB (${row.peakProcesses} processes at most); ` +
      `with the start-up burst ${(row.burstPeakSumKB / 1024).toFixed(0)} MB (${row.burstPeakProcesses}); ${row.samples} samples`,
  );
  return [row];
}
