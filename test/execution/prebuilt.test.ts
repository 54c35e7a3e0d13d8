import { execa } from 'execa';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist, distFiles, listScripts } from '../../scripts/lib/launcher/build.ts';
import { isDistFresh, SKILL_DIR } from '../../scripts/lib/launcher/dist.ts';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { SCRIPTS_DIR } from '../../scripts/lib/launcher/launch.ts';
import { TSX_LOADER } from '../../scripts/lib/launcher/tsx-loader.ts';
import { tempProject } from '../support/project.ts';

// Bundles go to a folder beside dist/ (the same depth, so their relative source URLs resolve), removed afterwards.
const outDir = path.join(SKILL_DIR, `.dist-test-${process.pid}`);
const SCRIPTS = ['spawn-agent-mock', 'spawn-agent', 'orchestrate', 'cancel-session'];

const fromSource = (name: string, args: string[], cwd: string) =>
  execa(process.execPath, ['--import', TSX_LOADER, path.join(SCRIPTS_DIR, `${name}.ts`), ...args], { cwd, reject: false });
const fromBundle = (name: string, args: string[], cwd: string) =>
  execa(process.execPath, [path.join(outDir, `${name}.cjs`), ...args], { cwd, reject: false });

describe('the scripts/build command itself', () => {
  it('bundles every script and says so (it once exited 0 without building anything)', async () => {
    const out = path.join(SKILL_DIR, `.dist-test-cmd-${process.pid}`);
    try {
      const began = Date.now();
      const result = await execa('sh', [path.join(SCRIPTS_DIR, 'build'), '--out', out], { reject: false });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^Built \d+ scripts into /);
      const files = await readdir(out);
      const loaders = files.filter((file) => /^[^.]+\.cjs$/.test(file)).map((file) => file.replace(/\.cjs$/, ''));
      expect(loaders.sort()).toEqual(listScripts().sort());
      for (const name of loaders) expect(files, name).toContain(`${name}.bundle.cjs`);
      // Every script with a --help gets its V8 code cache at build time: all of them.
      expect(files.filter((file) => file.endsWith('.cache')).length).toBe(loaders.length);
      expect(files.filter((file) => file.endsWith('.tmp'))).toEqual([]);
      // Fresh as built: the stamp holds the build's start. (Whether a later edit makes it stale is the fake skill's test below:
      // here other work may edit the sources while it builds.)
      const stamp = (await stat(path.join(out, '.stamp'))).mtimeMs;
      expect(stamp).toBeGreaterThanOrEqual(began - 1000);
      expect(stamp).toBeLessThanOrEqual(Date.now());
      const saved = process.env.DTO_LAUNCH;
      process.env.DTO_LAUNCH = 'dist';
      try {
        expect(isDistFresh('spawn-agent-mock', out)).toBe(true);
      } finally {
        if (saved === undefined) delete process.env.DTO_LAUNCH;
        else process.env.DTO_LAUNCH = saved;
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('prebuilt scripts (scripts/build)', () => {
  beforeAll(async () => {
    const result = await buildDist({ outDir, scripts: SCRIPTS });
    expect(result.failed).toEqual([]);
    expect(result.scripts).toEqual(SCRIPTS);
  }, 120_000);
  afterAll(() => rm(outDir, { recursive: true, force: true }));

  it('prints the same --help and the same usage errors as the TypeScript source', async () => {
    const project = await tempProject();
    for (const name of SCRIPTS) {
      const [ts, js] = await Promise.all([fromSource(name, ['--help'], project.dir), fromBundle(name, ['--help'], project.dir)]);
      expect(js.exitCode, name).toBe(0);
      expect(js.stdout, name).toBe(ts.stdout);
    }
    const bad = ['--task_name', '../x', '--goal', 'g'];
    const [ts, js] = await Promise.all([
      fromSource('spawn-agent-mock', bad, project.dir),
      fromBundle('spawn-agent-mock', bad, project.dir),
    ]);
    expect(js.exitCode).toBe(2);
    expect(js.stderr).toBe(ts.stderr);
  });

  it('runs an agent exactly as the source does: state, events, result file, and the recorded launch (script and flags, as data)', async () => {
    const runs = [];
    for (const start of [fromSource, fromBundle]) {
      const project = await tempProject();
      const result = await start('spawn-agent-mock', ['--task_name', 'scan', '--goal', 'List files', '--delay_ms', '20'], project.dir);
      expect(result.exitCode).toBe(0);
      const task = (await project.state())!.tasks.scan!;
      runs.push({
        // Clock times and durations differ from run to run; the lines themselves must not.
        stdout: result.stdout
          .replace(/session \S+/, 'session X')
          .replace(/\[\d\d:\d\d\]/g, '[mm:ss]')
          .replace(/ in \d+(\.\d+)? m?s\b/g, ' in T'),
        status: task.status,
        launch: [task.launch!.script, ...task.launch!.args],
        events: (await readEvents(project.paths.eventsPath)).map((e) => e.type),
        result: (await readFile(task.result_path!, 'utf8')).replace(
          /^(session_id|started_at|ended_at|duration_ms|mock_delay_ms): .*$/gm,
          '$1: X',
        ),
      });
    }
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[0]!.launch).toEqual(['spawn-agent-mock', '--task_name', 'scan', '--goal', 'List files', '--delay_ms', '20']);
  });

  it('a start that only queues its task loads none of the packages kept as chunks (zod, execa, yaml, gray-matter)', async () => {
    // What dozens of `spawn-agent-mock ... &` at once mostly do: register a task that cannot start yet, and exit.
    const chunks = path.join(outDir, 'chunks');
    expect((await readdir(chunks)).filter((file) => file.endsWith('.cjs')).sort()).toEqual([
      'execa.cjs',
      'gray-matter.cjs',
      'yaml.cjs',
      'zod.cjs',
    ]);
    const hidden = `${chunks}-hidden`;
    await rename(chunks, hidden);
    try {
      const project = await tempProject();
      const starts: Array<[string, string]> = [
        ['spawn-agent-mock', 'a'],
        ['spawn-agent', 'b'],
        ['spawn-agent-mock', 'constructor'],
      ];
      for (const [script, name] of starts) {
        const args = ['--task_name', name, '--goal', 'g', '--depends_on', 'never', '--session_id', 's1'];
        const queued = await fromBundle(script, args, project.dir);
        expect(queued.stderr, name).toBe('');
        expect(queued.exitCode, name).toBe(0);
      }
      const state = (await project.state())!;
      expect(Object.keys(state.tasks)).toEqual(['a', 'b', 'constructor']);
      expect(Object.values(state.tasks).map((task) => task.status)).toEqual(['waiting', 'waiting', 'waiting']);
      // The control: a task that runs writes its result file (gray-matter), which needs a chunk.
      const runs = await fromBundle('spawn-agent-mock', ['--task_name', 'c', '--goal', 'g', '--session_id', 's1'], project.dir);
      expect(runs.exitCode).not.toBe(0);
      expect(runs.stderr).toContain('gray-matter.cjs');
    } finally {
      await rename(hidden, chunks);
    }
  });
});

describe("the prebuilt scripts' V8 code cache", () => {
  const cacheDir = path.join(SKILL_DIR, `.dist-test-cache-${process.pid}`);
  const NAME = 'cancel-session';
  const files = distFiles(cacheDir, NAME);
  const help = () => execa(process.execPath, [files.loader, '--help'], { reject: false });
  beforeAll(async () => {
    const result = await buildDist({ outDir: cacheDir, scripts: [NAME] });
    expect(result.failed).toEqual([]);
    expect(result.cached).toEqual([NAME]);
  }, 120_000);
  afterAll(() => rm(cacheDir, { recursive: true, force: true }));

  it('is used as built: a run with it leaves it as it is (a cache V8 accepts is never rewritten)', async () => {
    const before = await stat(files.cache);
    expect(before.size).toBeGreaterThan(10_000);
    for (let i = 0; i < 3; i++) expect((await help()).exitCode).toBe(0);
    const after = await stat(files.cache);
    expect([after.ino, after.mtimeMs, after.size]).toEqual([before.ino, before.mtimeMs, before.size]);
  });

  it('is rebuilt by the next run when it is missing, and a run without it works the same', async () => {
    const expected = (await help()).stdout;
    await rm(files.cache);
    const run = await help();
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toBe(expected);
    expect((await stat(files.cache)).size).toBeGreaterThan(10_000);
    expect((await readdir(cacheDir)).filter((file) => file.endsWith('.tmp'))).toEqual([]);
  });

  it('a damaged cache, or one made for other code, is never run: the script works and the cache is replaced', async () => {
    const expected = (await help()).stdout;
    const good = await readFile(files.cache);
    // One byte of V8's payload flipped under a valid header: V8 does not check its payload and dies of it (a fatal error).
    const flipped = Buffer.from(good);
    flipped[flipped.length >> 1]! ^= 0x55;
    // A cache left by a process that ran another build of the bundle: its header names other code.
    const otherBuild = Buffer.from(good);
    otherBuild.write('0'.repeat(32), 'dto-v8-cache-1 '.length, 'latin1');
    const damaged = [
      Buffer.from('not a code cache'),
      good.subarray(0, good.length >> 1),
      Buffer.alloc(good.length, 7),
      flipped,
      otherBuild,
    ];
    for (const bad of damaged) {
      await writeFile(files.cache, bad);
      const run = await help();
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.stdout).toBe(expected);
      expect(run.stderr).toBe('');
      const replaced = await readFile(files.cache);
      expect(replaced.equals(bad)).toBe(false);
      expect(replaced.length).toBeGreaterThan(10_000);
    }
  });

  it('a folder it cannot be written to (a read-only install) only means running without it', async () => {
    if (process.getuid?.() === 0) {
      // root writes anywhere: make the cache's path a folder instead, which no rename can replace.
      await rm(files.cache);
      await mkdir(files.cache);
      try {
        const run = await help();
        expect(run.exitCode, run.stderr).toBe(0);
        expect(run.stderr).toBe('');
        expect((await stat(files.cache)).isDirectory()).toBe(true);
        expect((await readdir(cacheDir)).filter((file) => file.endsWith('.tmp'))).toEqual([]);
      } finally {
        await rm(files.cache, { recursive: true, force: true });
      }
      return;
    }
    await rm(files.cache);
    await chmod(cacheDir, 0o555);
    try {
      const run = await help();
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.stderr).toBe('');
    } finally {
      await chmod(cacheDir, 0o755);
    }
    expect((await readdir(cacheDir)).filter((file) => file.endsWith('.cache') || file.endsWith('.tmp'))).toEqual([]);
  });
});

describe('when the launchers use dist/', () => {
  /** A fake skill folder: scripts/hello.ts, dist/hello.cjs and hello.bundle.cjs, dist/.stamp, and a copy of scripts/run. */
  async function fakeSkill() {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dto-fake-skill-'));
    await mkdir(path.join(dir, 'scripts', 'lib'), { recursive: true });
    await mkdir(path.join(dir, 'dist'));
    await copyFile(path.join(SCRIPTS_DIR, 'run'), path.join(dir, 'scripts', 'run'));
    await writeFile(path.join(dir, 'scripts', 'hello.ts'), 'process.stdout.write("from source\\n");\n');
    await writeFile(path.join(dir, 'scripts', 'lib', 'util.ts'), 'export {};\n');
    await writeFile(path.join(dir, 'package.json'), '{}\n');
    await writeFile(path.join(dir, 'dist', 'hello.cjs'), 'process.stdout.write("from dist\\n");\n');
    await writeFile(path.join(dir, 'dist', 'hello.bundle.cjs'), '\n');
    const old = new Date(Date.now() - 60_000);
    for (const file of ['scripts/hello.ts', 'scripts/lib/util.ts', 'package.json']) await utimes(path.join(dir, file), old, old);
    await writeFile(path.join(dir, 'dist', '.stamp'), 'built\n');
    return dir;
  }
  const touch = (file: string) => utimes(file, new Date(Date.now() + 5000), new Date(Date.now() + 5000));

  it('uses a bundle only while it is newer than every source, and never with DTO_LAUNCH=tsx', async () => {
    const dir = await fakeSkill();
    try {
      const dist = path.join(dir, 'dist');
      const run = (env: Record<string, string> = {}) => execa('sh', [path.join(dir, 'scripts', 'run'), 'hello'], { reject: false, env });
      expect(isDistFresh('hello', dist, dir)).toBe(true);
      expect((await run()).stdout).toBe('from dist');
      expect(isDistFresh('missing', dist, dir)).toBe(false);

      const tsx = await run({ DTO_LAUNCH: 'tsx' });
      expect(tsx.stdout).not.toContain('from dist'); // falls back to tsx (not installed in the fake skill)
      expect(tsx.stderr).toContain('tsx is not installed');

      await touch(path.join(dir, 'scripts', 'lib', 'util.ts'));
      expect(isDistFresh('hello', dist, dir)).toBe(false);
      const stale = await run();
      expect(stale.stdout).not.toContain('from dist');
      expect(stale.stderr).toContain('tsx is not installed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('treats a changed package.json as stale too', async () => {
    const dir = await fakeSkill();
    try {
      await touch(path.join(dir, 'package.json'));
      expect(isDistFresh('hello', path.join(dir, 'dist'), dir)).toBe(false);
      expect((await execa('sh', [path.join(dir, 'scripts', 'run'), 'hello'], { reject: false })).stdout).not.toContain('from dist');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
