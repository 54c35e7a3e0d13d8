// The state store under file-system faults: full disk, read-only and immutable files, a folder that is a file,
// a state file deleted mid-run, a symlinked event log. Each fault gets a clear error and leaves nothing half-done.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import { mkdir, readdir, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeFileAtomic } from '../../scripts/lib/state/atomic-write.ts';
import { OrchestratorError } from '../../scripts/lib/core/errors.ts';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { resolveSessionPaths, type SessionPaths } from '../../scripts/lib/state/session-paths.ts';
import { readState, updateState } from '../../scripts/lib/state/state-store.ts';
import { openSession, registerTask } from '../../scripts/lib/scheduling/transitions.ts';
import { run, tempProject } from '../support/project.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

async function newSession(paths: SessionPaths, goal = 'g'): Promise<string> {
  await updateState(paths, (tx) => {
    registerTask(tx, openSession(tx, { sessionId: 'faults' }), { name: 'a', goal, runner: 'mock', pid: process.pid });
  });
  return readFile(paths.statePath, 'utf8');
}

/** Files of the session folder other than the state, its events and the lock (temporary files, mostly). */
async function leftovers(paths: SessionPaths): Promise<string[]> {
  return (await readdir(paths.dir)).filter((f) => !['latest.yaml', 'events.jsonl'].includes(f));
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}

/** A small tmpfs at a fresh folder (root only); null when mounting is not possible here. */
async function mountTmpfs(options: string): Promise<{ dir: string; remount(opts: string): void; unmount(): void } | null> {
  const project = await tempProject();
  const dir = path.join(project.dir, 'mnt');
  await mkdir(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    return null;
  }
  return {
    dir,
    remount: (opts) => execFileSync('mount', ['-o', `remount,${opts}`, dir], { stdio: 'ignore' }),
    unmount: () => execFileSync('umount', [dir], { stdio: 'ignore' }),
  };
}

describe('full disk', () => {
  it('on a real full disk (64 KiB tmpfs) says "no space left on the device holding" the state file, exits 2, and leaves no temporary file', async (ctx) => {
    const mnt = await mountTmpfs('size=64k');
    if (!mnt) return ctx.skip('cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN); the injected test below covers the logic');
    try {
      const paths = resolveSessionPaths({ cwd: mnt.dir, sessionDir: 's' });
      const before = await newSession(paths);
      const error = await updateState(paths, (tx) => void (tx.state!.tasks.a!.goal = 'x'.repeat(200_000))).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OrchestratorError);
      expect(error).toMatchObject({ code: 'write_failed', exitCode: 2 });
      expect((error as Error).message).toContain(`no space left on the device holding ${paths.statePath}`);
      expect(await readFile(paths.statePath, 'utf8')).toBe(before);
      expect(await leftovers(paths)).toEqual([]);
      // The disk is not left full by us: the next small change goes through.
      await updateState(paths, (tx) => void (tx.state!.max_workers = 9));
      expect((await readState(paths))!.max_workers).toBe(9);
    } finally {
      mnt.unmount();
    }
  });

  it('an agent started on a full disk (a filled tmpfs) exits 2 with the words, no stack trace, and leaves no temporary file', async (ctx) => {
    const mnt = await mountTmpfs('size=64k');
    if (!mnt) return ctx.skip('cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN); the injected test below covers the logic');
    try {
      const sessionDir = path.join(mnt.dir, 's');
      const paths = resolveSessionPaths({ cwd: mnt.dir, sessionDir: 's' });
      const before = await newSession(paths);
      // Fill what is left of the disk.
      await writeFile(path.join(mnt.dir, 'filler'), Buffer.alloc(128 * 1024)).catch(() => undefined);
      const { dir } = await tempProject();
      const result = await run(
        'spawn-agent-mock',
        ['--task_name', 'b', '--goal', 'g', '--delay_ms', '0', '--session_dir', sessionDir],
        dir,
      );
      expect(result.exitCode, result.all).toBe(2);
      expect(result.stderr).toContain(`no space left on the device holding ${paths.statePath}`);
      expect(result.stderr).not.toMatch(/unexpected failure|ENOSPC:| {4}at /);
      expect(await readFile(paths.statePath, 'utf8')).toBe(before);
      expect(await leftovers(paths)).toEqual([]);
    } finally {
      mnt.unmount();
    }
  }, 60_000);

  it.each([
    ['ENOSPC', /no space left on the device holding .*latest\.yaml/],
    ['EDQUOT', /disk quota is used up/],
    ['EIO', /input\/output error/],
  ])('a write that fails with %s half-way removes the temporary file and says so in words', async (code, pattern) => {
    const { paths } = await tempProject();
    const before = await newSession(paths);
    const realOpen = fs.open;
    vi.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
      const handle = await realOpen(...args);
      if (String(args[0]).endsWith('.tmp')) {
        handle.writeFile = async (data: unknown) => {
          await handle.write(String(data).slice(0, 10));
          throw errno(code);
        };
      }
      return handle;
    });
    const error = await updateState(paths, (tx) => void (tx.state!.max_workers = 7)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'write_failed', exitCode: 2 });
    expect((error as Error).message).toMatch(pattern);
    expect((error as Error).message).toContain('It was left as it was');
    expect(await readFile(paths.statePath, 'utf8')).toBe(before);
    expect(await leftovers(paths)).toEqual([]);
  });

  it.each([
    ['EROFS', /read-only.*--session_dir/],
    ['EACCES', /permission denied.*chmod u\+w/],
    ['EPERM', /immutable.*chattr -i/],
  ])('a commit (rename) refused with %s removes the temporary file and says what to do', async (code, pattern) => {
    const { paths } = await tempProject();
    const before = await newSession(paths);
    const realRename = fs.rename;
    vi.spyOn(fs, 'rename').mockImplementation(async (from, to) => {
      if (String(to) === paths.statePath) throw errno(code);
      return realRename(from, to);
    });
    const logged = await readFile(paths.eventsPath, 'utf8');
    const error = await updateState(paths, (tx) => {
      tx.state!.max_workers = 7;
      registerTask(tx, tx.state!, { name: 'b', goal: 'g', runner: 'mock', pid: process.pid });
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'write_failed', exitCode: 2 });
    expect((error as Error).message).toMatch(pattern);
    expect(await readFile(paths.statePath, 'utf8')).toBe(before);
    // The change's events, logged right before the rename, are taken back with it.
    expect(await readFile(paths.eventsPath, 'utf8')).toBe(logged);
    expect(await leftovers(paths)).toEqual([]);
  });

  it('a writer that dies right after renaming the state into place has already logged that change (no event lost)', async () => {
    const { paths } = await tempProject();
    await newSession(paths);
    const realRename = fs.rename;
    // The writer stops for good right after its rename (as if SIGKILLed there): nothing of ours runs after it.
    let renamed!: () => void;
    const atRename = new Promise<void>((resolve) => (renamed = resolve));
    vi.spyOn(fs, 'rename').mockImplementation(async (from, to) => {
      await realRename(from, to);
      if (String(to) !== paths.statePath) return;
      renamed();
      await new Promise(() => {});
    });
    void updateState(paths, (tx) => {
      registerTask(tx, tx.state!, { name: 'b', goal: 'g', runner: 'mock', pid: process.pid });
    });
    await atRename;
    expect((await readState(paths))!.tasks.b?.status).toBe('pending');
    const events = await readEvents(paths.eventsPath);
    expect(events.filter((e) => e.task === 'b').map((e) => e.type)).toEqual(['registered']);
  });

  it('writeFileAtomic removes its temporary file when the fence before the rename throws, and rethrows that error', async () => {
    const { dir } = await tempProject();
    const target = path.join(dir, 'out.md');
    await writeFile(target, 'old');
    const fence = new Error('lock lost');
    await expect(writeFileAtomic(target, 'new', { beforeCommit: () => Promise.reject(fence) })).rejects.toBe(fence);
    expect(await readFile(target, 'utf8')).toBe('old');
    expect(await readdir(dir)).toEqual(['out.md']);
  });
});

describe('unusable state files and folders', () => {
  it('refuses to change a state file made read-only (chmod 444), naming it, with no temporary file left', async () => {
    const { paths } = await tempProject();
    const before = await newSession(paths);
    await fs.chmod(paths.statePath, 0o444);
    const error = await updateState(paths, (tx) => void (tx.state!.max_workers = 7)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'write_failed', exitCode: 2 });
    expect((error as Error).message).toContain(`${paths.statePath} is read-only (mode 0444)`);
    expect((error as Error).message).toContain('chmod u+w');
    expect(await readFile(paths.statePath, 'utf8')).toBe(before);
    expect(await leftovers(paths)).toEqual([]);
  });

  it('an immutable state file (chattr +i) gets a clear error and no temporary file', async (ctx) => {
    const { paths } = await tempProject();
    const before = await newSession(paths);
    try {
      execFileSync('chattr', ['+i', paths.statePath], { stdio: 'ignore' });
    } catch {
      return ctx.skip(
        'chattr +i is not available here (not root, or the file system has no such flag); the injected EPERM test covers the logic',
      );
    }
    try {
      const error = await updateState(paths, (tx) => void (tx.state!.max_workers = 7)).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'write_failed', exitCode: 2 });
      expect((error as Error).message).toContain(paths.statePath);
      expect((error as Error).message).toMatch(/immutable/);
      expect(await readFile(paths.statePath, 'utf8')).toBe(before);
      expect(await leftovers(paths)).toEqual([]);
    } finally {
      execFileSync('chattr', ['-i', paths.statePath], { stdio: 'ignore' });
    }
  });

  it('a read-only session folder (read-only mount) gets a hint to use a writable folder, not to remove it', async (ctx) => {
    const mnt = await mountTmpfs('size=1m');
    if (!mnt) return ctx.skip('cannot mount a tmpfs here; the injected EACCES/EROFS tests cover the logic');
    try {
      const paths = resolveSessionPaths({ cwd: mnt.dir, sessionDir: 's' });
      const before = await newSession(paths);
      mnt.remount('ro');
      const error = await updateState(paths, (tx) => void (tx.state!.max_workers = 7)).catch((e: unknown) => e);
      expect(error).toMatchObject({ exitCode: 2 });
      expect((error as Error).message).toMatch(/read-only.*--session_dir/);
      expect((error as Error).message).not.toMatch(/remove that folder/);
      expect(await readFile(paths.statePath, 'utf8')).toBe(before);
      mnt.remount('rw');
      expect(await leftovers(paths)).toEqual([]);
    } finally {
      mnt.unmount();
    }
  });

  it('a session folder the lock cannot be created in (EACCES) gets a permission hint naming the folder', async () => {
    const { paths } = await tempProject();
    await newSession(paths);
    const realOpen = fs.open;
    vi.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
      if (String(args[0]).startsWith(paths.lockPath)) throw errno('EACCES');
      return realOpen(...args);
    });
    const error = await updateState(paths, (tx) => void (tx.state!.max_workers = 7)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'write_failed', exitCode: 2 });
    expect((error as Error).message).toContain(`permission denied for ${paths.lockPath}`);
    expect((error as Error).message).toContain(`chmod u+w "${paths.dir}"`);
  });

  it.each([
    ['poll-session', ['--once']],
    ['aggregate', []],
    ['spawn-agent-mock', ['--task_name', 'a', '--goal', 'g', '--delay_ms', '0']],
    ['cancel-session', []],
  ])(
    '%s with a --session_dir that is a file says so (exit 2, no stack trace) and leaves the file alone',
    { timeout: 60_000 },
    async (script, args) => {
      const { dir } = await tempProject();
      const file = path.join(dir, 'not-a-folder');
      await writeFile(file, 'mine');
      const result = await run(script, [...args, '--session_dir', file], dir);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`${file} is a file, not a folder`);
      expect(result.stderr).not.toMatch(/unexpected failure|ENOTDIR|EEXIST| {4}at /);
      expect(await readFile(file, 'utf8')).toBe('mine');
      expect((await readdir(dir)).sort()).toEqual(['not-a-folder']);
    },
  );
});

describe('a session deleted mid-run', () => {
  it('a writer that joined a session finds latest.yaml deleted: it names the file and writes nothing', async () => {
    const { paths } = await tempProject();
    await newSession(paths);
    await unlink(paths.statePath);
    for (const attempt of [() => updateState(paths, (tx) => void tx.state), () => readState(paths)]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'session_vanished', exitCode: 2 });
      expect((error as Error).message).toContain(`${paths.statePath} (session faults) was deleted`);
    }
    expect(await leftovers(paths)).toEqual([]);
  });

  it(
    'an agent whose latest.yaml is deleted while it runs keeps its result file and names the missing state file',
    { timeout: 60_000 },
    async () => {
      const project = await tempProject();
      const agent = run('spawn-agent-mock', ['--task_name', 'scan', '--goal', 'g', '--delay_ms', '3000'], project.dir);
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const state = await project.state().catch(() => null);
        if (state?.tasks.scan?.status === 'running') break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await unlink(project.paths.statePath);
      const result = await agent;
      expect(result.stdout).not.toMatch(/scan: cancelled/);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`${project.paths.statePath} (session `);
      expect(result.stderr).toContain('was deleted');
      expect(result.stderr).not.toMatch(/unexpected failure/);
      expect(await readFile(path.join(project.dir, '.agent/results/scan.md'), 'utf8')).toContain('scan');
    },
  );
});

describe('a symlinked event log', () => {
  it('refuses an events.jsonl that links to a file outside the session folder: the outside file and the state stay as they were', async () => {
    const { dir, paths } = await tempProject();
    const before = await newSession(paths);
    const outside = path.join(dir, 'outside.txt');
    await writeFile(outside, 'precious\n');
    await unlink(paths.eventsPath);
    await symlink(outside, paths.eventsPath);
    const error = await updateState(paths, (tx) => {
      tx.state!.max_workers = 7;
      tx.emit('waiting', { task: 'a' });
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'unsafe_path', exitCode: 2 });
    expect((error as Error).message).toContain(`Refusing to use ${paths.eventsPath}: it is a symbolic link`);
    expect(await readFile(outside, 'utf8')).toBe('precious\n');
    expect(await readFile(paths.statePath, 'utf8')).toBe(before);
    await expect(readEvents(paths.eventsPath)).rejects.toMatchObject({ code: 'unsafe_path' });
  });
});
