// npm run test:stress: runs the suite (or chosen files) several times while a load generator keeps every core busy,
// and reports each test that failed at least once: the way to find a timing-dependent test before CI does.
//
// Usage:   npm run test:stress -- [--runs N] [--load N] [FILE ...]
// Example: npm run test:stress -- --runs 3 test/scheduling/queue.test.ts
// Exit:    0 no test failed in any run, 1 some test failed at least once, 2 bad arguments.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execa, type ResultPromise } from 'execa';

/** The parts of vitest's JSON report (`--reporter=json`) read here. */
interface JsonReport {
  numPassedTests: number;
  numFailedTests: number;
  testResults: Array<{
    name: string;
    status: string;
    message?: string;
    assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }>;
  }>;
}

/** One test that failed in a run: `file > full name`, and the first line of its message. */
interface Failure {
  key: string;
  message: string;
}

const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * Starts `count` busy loops (one Node process each, at normal priority, so they compete with the tests as another
 * program on a CI machine would). @returns a function that stops them all.
 */
function startLoad(count: number): () => void {
  const busy: ResultPromise[] = [];
  for (let i = 0; i < count; i++) {
    const child = execa(process.execPath, ['-e', 'for (;;) {}'], { reject: false, stdio: 'ignore' });
    child.catch(() => {});
    busy.push(child);
  }
  return () => {
    for (const child of busy) child.kill('SIGKILL');
  };
}

/** One vitest run of `files` (all when empty); @returns the tests that failed, or a whole file that failed to run. */
async function runOnce(files: readonly string[], reportPath: string): Promise<Failure[]> {
  const began = Date.now();
  const run = await execa('npx', ['vitest', 'run', '--reporter=dot', '--reporter=json', `--outputFile.json=${reportPath}`, ...files], {
    cwd: ROOT,
    reject: false,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let report: JsonReport;
  try {
    report = JSON.parse(await readFile(reportPath, 'utf8')) as JsonReport;
  } catch {
    return [{ key: '(vitest)', message: `no report (exit ${String(run.exitCode)})` }];
  }
  process.stdout.write(
    `[stress] ${report.numPassedTests} passed, ${report.numFailedTests} failed in ${Math.round((Date.now() - began) / 1000)} s\n`,
  );
  const failures: Failure[] = [];
  for (const file of report.testResults) {
    const name = path.relative(ROOT, file.name);
    const failed = file.assertionResults.filter((test) => test.status === 'failed');
    for (const test of failed) failures.push({ key: `${name} > ${test.fullName}`, message: firstLine(test.failureMessages[0] ?? '') });
    if (failed.length === 0 && file.status === 'failed')
      failures.push({ key: name, message: firstLine(file.message ?? 'the file failed') });
  }
  return failures;
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.slice(0, 200);
}

/** Parses the command line; @returns null (after printing why) when it is wrong. */
function options(argv: string[]): { runs: number; load: number; files: string[] } | null {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { runs: { type: 'string', default: '3' }, load: { type: 'string', default: String(os.availableParallelism()) } },
      allowPositionals: true,
    });
    const runs = Number(values.runs);
    const load = Number(values.load);
    if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new Error(`--runs must be an integer from 1 to 50, got ${values.runs}`);
    if (!Number.isInteger(load) || load < 0 || load > 64) throw new Error(`--load must be an integer from 0 to 64, got ${values.load}`);
    return { runs, load, files: positionals };
  } catch (error) {
    process.stderr.write(
      `error: ${error instanceof Error ? error.message : String(error)}\nUsage: npm run test:stress -- [--runs N] [--load N] [FILE ...]\n`,
    );
    return null;
  }
}

/** Runs the stress test; @returns the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const parsed = options(argv);
  if (!parsed) return 2;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dto-stress-'));
  const stopLoad = startLoad(parsed.load);
  const counts = new Map<string, { failures: number; message: string }>();
  try {
    for (let i = 1; i <= parsed.runs; i++) {
      process.stdout.write(`\n[stress] run ${i} of ${parsed.runs}, ${parsed.load} busy loops\n`);
      for (const failure of await runOnce(parsed.files, path.join(dir, `run-${i}.json`))) {
        const seen = counts.get(failure.key);
        counts.set(failure.key, { failures: (seen?.failures ?? 0) + 1, message: seen?.message ?? failure.message });
      }
    }
  } finally {
    stopLoad();
    await rm(dir, { recursive: true, force: true });
  }
  const rows = [...counts].sort((a, b) => b[1].failures - a[1].failures);
  process.stdout.write(`\n[stress] ${parsed.runs} runs under ${parsed.load} busy loops: ${rows.length} tests failed at least once\n`);
  for (const [key, { failures, message }] of rows) process.stdout.write(`${failures}/${parsed.runs}  ${key}\n      ${message}\n`);
  return rows.length === 0 ? 0 : 1;
}

process.exitCode = await main();
