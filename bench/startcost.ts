// Benchmark 7: the CPU one agent start costs when it only registers a queued task (what dozens of `&` starts pay at once).
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDistFresh } from '../scripts/lib/launcher/dist.ts';
import { scriptArgv } from '../scripts/lib/launcher/launch.ts';
import { tempProject } from './lib/procs.ts';

/** CPU seconds of one way of starting, per start. */
export interface StartCostRow {
  /** How the process was started. */
  label: string;
  starts: number;
  /** User + system CPU of the started processes (and their children), per start (ms). */
  cpuPerStartMs: number;
  /** The same, less Node's own start (`node` running an empty file): what the skill's code costs (ms). */
  aboveNodeMs: number | null;
  /** Wall time per start, one after the other (ms): noisy on a shared machine, CPU is the measure. */
  wallPerStartMs: number;
  problems: string[];
}

const RUN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'run');

/**
 * Runs `argv` `starts` times one after the other in a POSIX shell and reads the CPU of its children
 * from the shell's `times` builtin (second line: children's user and system time), so every process
 * a start runs (sh, setsid, node) is counted, on any POSIX system, without per-process sampling.
 */
async function timeStarts(
  argvs: string[][],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ cpuS: number; wallMs: number; failures: string[] }> {
  const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;
  const script =
    argvs.map((argv) => `${argv.map(quote).join(' ')} >/dev/null 2>>.errors || echo "exit $?" >>.errors`).join('\n') + '\ntimes\n';
  await writeFile(path.join(cwd, '.starts.sh'), script);
  const started = Date.now();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('sh', ['.starts.sh'], { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    child.on('error', reject);
    child.on('close', () => resolve(text));
  });
  const wallMs = Date.now() - started;
  const children = out.trim().split('\n').at(-1) ?? '';
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const errors = await readFile(path.join(cwd, '.errors'), 'utf8').catch(() => '');
  return { cpuS: (seconds[0] ?? NaN) + (seconds[1] ?? NaN), wallMs, failures: errors.trim() ? [errors.trim().slice(0, 300)] : [] };
}

/** `count` queued registrations (a dependency that is never registered): register, decide, exit. */
function registrations(prefix: string, count: number, command: (args: string[]) => string[]): string[][] {
  return Array.from({ length: count }, (_, i) =>
    command(['--task_name', `${prefix}${i}`, '--goal', 'bench', '--depends_on', 'never', '--session_id', 'bench', '--quiet']),
  );
}

/** Through scripts/run, its freshness check (`find -newer dist/.stamp`) included unless a source changed since the build. */
function runWay(starts: number, env: NodeJS.ProcessEnv): { label: string; argvs: string[][]; env: NodeJS.ProcessEnv } {
  const withoutLaunch = { ...env };
  delete withoutLaunch.DTO_LAUNCH;
  const saved = process.env.DTO_LAUNCH;
  delete process.env.DTO_LAUNCH;
  const fresh = isDistFresh('spawn-agent-mock');
  if (saved !== undefined) process.env.DTO_LAUNCH = saved;
  return {
    label: fresh
      ? 'prebuilt, through scripts/run (sh, its freshness check, setsid)'
      : 'prebuilt, through scripts/run (sh, setsid; DTO_LAUNCH=dist: sources changed since the build, so no freshness check)',
    argvs: registrations('b', starts, (args) => ['sh', RUN, 'spawn-agent-mock', ...args]),
    env: fresh ? withoutLaunch : { ...env, DTO_LAUNCH: 'dist' },
  };
}

/**
 * The CPU a start costs, several ways, each `starts` times in a session already holding `preload`
 * tasks: Node itself (an empty file), the prebuilt script started with node, the same through
 * scripts/run (sh and setsid before node), and through tsx when `tsx` is set.
 */
export async function benchStartCost(options: {
  starts: number;
  preload: number;
  tsx: boolean;
  log: (line: string) => void;
}): Promise<StartCostRow[]> {
  const project = await tempProject('startcost');
  const rows: StartCostRow[] = [];
  try {
    const env = { ...process.env };
    delete env.DTO_ADOPT_TOKEN;
    const dist = { ...env, DTO_LAUNCH: 'dist' };
    const node = (args: string[], launch: NodeJS.ProcessEnv) => {
      const saved = process.env.DTO_LAUNCH;
      process.env.DTO_LAUNCH = launch.DTO_LAUNCH;
      try {
        return [process.execPath, ...scriptArgv('spawn-agent-mock', args)];
      } finally {
        if (saved === undefined) delete process.env.DTO_LAUNCH;
        else process.env.DTO_LAUNCH = saved;
      }
    };
    await timeStarts(
      registrations('pre', options.preload, (args) => node(args, dist)),
      project.dir,
      dist,
    );
    const empty = path.join(project.dir, 'empty.cjs');
    await writeFile(empty, '');
    const ways: Array<{ label: string; argvs: string[][]; env: NodeJS.ProcessEnv }> = [
      { label: 'node, empty file (the floor)', argvs: Array.from({ length: options.starts }, () => [process.execPath, empty]), env: dist },
      {
        label: 'prebuilt, node dist/spawn-agent-mock.cjs',
        argvs: registrations('a', options.starts, (args) => node(args, dist)),
        env: dist,
      },
      runWay(options.starts, env),
    ];
    if (options.tsx) {
      ways.push({
        label: 'TypeScript through tsx',
        argvs: registrations('c', Math.max(3, options.starts >> 2), (args) => node(args, { DTO_LAUNCH: 'tsx' })),
        env: { ...env, DTO_LAUNCH: 'tsx' },
      });
    }
    let floorMs: number | null = null;
    for (const way of ways) {
      options.log(`startcost: ${way.label}, ${way.argvs.length} starts ...`);
      const { cpuS, wallMs, failures } = await timeStarts(way.argvs, project.dir, way.env);
      const cpuPerStartMs = (cpuS * 1000) / way.argvs.length;
      floorMs ??= cpuPerStartMs;
      rows.push({
        label: way.label,
        starts: way.argvs.length,
        cpuPerStartMs,
        aboveNodeMs: rows.length === 0 ? null : cpuPerStartMs - floorMs,
        wallPerStartMs: wallMs / way.argvs.length,
        problems: failures,
      });
    }
  } finally {
    await project.remove();
  }
  return rows;
}
