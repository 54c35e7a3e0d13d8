/**
 * demo: the main job end to end with mock agents, in a fresh temporary project: the seeds' codebase
 * analysis (scan, then quality, security and performance in parallel, then a report).
 *
 * Usage:   npm run demo [-- --dir DIR]   (in the skill's folder), or "$S/scripts/run" demo [--dir DIR] from anywhere
 * Example: npm run demo
 * Writes:  DIR (default a new folder under the system temp dir): .agent/sessions/, .agent/results/, .agent/final_output.md.
 * Exit:    poll-session's code: 0 when every task completed.
 */
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runMain, type CommandSpec } from './lib/cli/cli.ts';
import { flag, parseOptionsOrShowHelp } from './lib/cli/options.ts';
import { EXIT } from './lib/core/errors.ts';
import { runScript } from './lib/launcher/run-script.ts';
import { launcherCommand } from './lib/launcher/dist.ts';

export const spec = {
  name: 'demo',
  summary:
    'Orchestrates the codebase-analysis scenario with mock agents in a fresh temporary project: five background agents ' +
    'started at once with dependencies, polled to the end, then aggregated. Needs no Claude account.',
  usage: '[--dir DIR]',
  flags: { dir: flag.string({ placeholder: 'DIR', description: 'Project folder to run in (default: a new temp folder).' }) },
  examples: [launcherCommand('demo'), launcherCommand('demo', '--dir demo-project')],
  notes: ["In the skill's folder, `npm run demo` builds the bundles first and runs the same."],
} satisfies CommandSpec;

/** The scenario: task name, goal, dependencies. */
export const DEMO_TASKS: Array<{ name: string; goal: string; dependsOn: string[] }> = [
  { name: 'T-01-scan', goal: 'Scan src/ and list every TypeScript file with its size and exports.', dependsOn: [] },
  { name: 'T-02-quality', goal: 'Review code quality: naming, duplication, complexity hot spots.', dependsOn: ['T-01-scan'] },
  { name: 'T-03-security', goal: 'Scan for security issues: injection, secrets, unsafe input handling.', dependsOn: ['T-01-scan'] },
  { name: 'T-04-performance', goal: 'Find performance risks: sync I/O, N+1 loops, large allocations.', dependsOn: ['T-01-scan'] },
  {
    name: 'T-05-report',
    goal: 'Merge the three reviews into one prioritised report.',
    dependsOn: ['T-02-quality', 'T-03-security', 'T-04-performance'],
  },
];

/** Runs the demo; returns poll-session's exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const parsed = parseOptionsOrShowHelp(argv, spec);
  if (!parsed) return EXIT.ok;
  const dirFlag = parsed.options.dir;
  const dir = dirFlag ? path.resolve(dirFlag) : await mkdtemp(path.join(os.tmpdir(), 'dto-demo-'));
  await mkdir(path.join(dir, 'src'), { recursive: true });
  await writeFile(path.join(dir, 'src', 'index.ts'), 'export const answer = 42;\n');
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`Project: ${dir}`);
  say(`Request: "Analyze my TypeScript project for code quality, security, and performance"`);
  say(`Starting ${DEMO_TASKS.length} mock agents in the background at once; dependencies make them wait their turn.`);
  say('This is a rehearsal: mock agents simulate the work (no account needed); their results are placeholders, not findings.\n');

  const sessionId = `demo-${Date.now().toString(36)}`;
  const agents = DEMO_TASKS.map((task) =>
    runScript(
      'spawn-agent-mock',
      [
        '--task_name',
        task.name,
        '--goal',
        task.goal,
        '--session_id',
        sessionId,
        '--quiet',
        ...(task.dependsOn.length ? ['--depends_on', task.dependsOn.join(',')] : []),
      ],
      { cwd: dir, stdio: 'ignore', reject: false },
    ),
  );
  // A person watches: the live board on a terminal, else every event and the status tables (--verbose), not the slices a model reads.
  const watch = process.stdout.isTTY ? [] : ['--verbose'];
  const poll = await runScript('poll-session', ['--expect', String(DEMO_TASKS.length), '--timeout', '120', ...watch], {
    cwd: dir,
    stdio: 'inherit',
    reject: false,
  });
  await Promise.all(agents);
  say('');
  // poll-session already printed the execution summary; aggregate's own copy would repeat it.
  await runScript('aggregate', ['--html'], { cwd: dir, stdout: 'ignore', stderr: 'inherit' });
  say(
    `Outputs:\n  state:   ${path.join(dir, '.agent/sessions/latest.yaml')}\n  events:  ${path.join(dir, '.agent/sessions/events.jsonl')}` +
      `\n  results: ${path.join(dir, '.agent/results/')}\n  report:  ${path.join(dir, '.agent/final_output.md')} (and final_output.html)`,
  );
  return poll.exitCode ?? EXIT.taskFailed;
}

if (process.argv[1]?.endsWith('demo.ts')) runMain(main);
