// The lock file names its owner: a live owner is never robbed, a dead one is taken over at once, a foreign one by staleness.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { mkdir, readdir, readFile, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TSX_LOADER } from '../../scripts/lib/launcher/tsx-loader.ts';
import { inspectLock, LockLostError, lockStats, takeOver, withLock, type LockOwner } from '../../scripts/lib/state/lock.ts';
import { tempProject } from '../support/project.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

async function holdLockInChild(cwd: string) {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, path.join(import.meta.dirname, '../support/hold-lock.ts')], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
    child.on('exit', () => reject(new Error('hold-lock exited early')));
  });
  return child;
}

function fakeOwner(overrides: Partial<LockOwner>): string {
  return JSON.stringify({
    pid: 4_000_000,
    start: '1',
    host: 'elsewhere.example',
    pidns: null,
    token: 'f'.repeat(24),
    acquired_at: '2026-01-01T00:00:00.000Z',
    ...overrides,
  });
}

describe('session lock ownership', () => {
  it(
    'never takes the lock from a live holder that is stopped (SIGSTOP), and names its pid after the wait',
    { timeout: 60_000 },
    async () => {
      const project = await tempProject();
      const holder = await holdLockInChild(project.dir);
      try {
        holder.kill('SIGSTOP');
        const began = Date.now();
        const error = await withLock(project.paths.lockPath, async () => 'entered', { waitMs: 1500, staleMs: 200 }).catch(
          (e: unknown) => e,
        );
        expect(Date.now() - began).toBeGreaterThanOrEqual(1500);
        expect(error).toMatchObject({ code: 'lock_failed', exitCode: 2 });
        const message = (error as Error).message;
        expect(message).toContain(project.paths.lockPath);
        expect(message).toContain(`process ${holder.pid} holds it`);
        expect(message).toContain(`kill -CONT ${holder.pid}`);
        // The holder's lock is still in place, still its own.
        expect((JSON.parse(await readFile(project.paths.lockPath, 'utf8')) as { pid: number }).pid).toBe(holder.pid);
      } finally {
        holder.kill('SIGCONT');
        holder.kill('SIGKILL');
      }
    },
  );

  it('takes over the lock of a holder that died at once, not after a stale time', { timeout: 60_000 }, async () => {
    const project = await tempProject();
    const holder = await holdLockInChild(project.dir);
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.on('exit', resolve));
    const takeovers = lockStats.takeovers;
    // A take-over by staleness would need 60 s, past the 30 s wait: entering proves it was by identity.
    expect(await withLock(project.paths.lockPath, async () => 'entered', { waitMs: 30_000, staleMs: 60_000 })).toBe('entered');
    expect(lockStats.takeovers - takeovers).toBe(1);
  });

  it('removes the files of a holder and a waiter that were both killed, when it takes the lock over', { timeout: 60_000 }, async () => {
    const project = await tempProject();
    const holder = await holdLockInChild(project.dir);
    const waiter = spawn(process.execPath, ['--import', TSX_LOADER, path.join(import.meta.dirname, '../support/hold-lock.ts')], {
      cwd: project.dir,
      stdio: 'ignore',
    });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !(await readdir(project.paths.dir)).some((f) => f.endsWith('.new')))
      await new Promise((r) => setTimeout(r, 20));
    expect((await readdir(project.paths.dir)).filter((f) => f.endsWith('.new'))).toHaveLength(1);
    waiter.kill('SIGKILL');
    holder.kill('SIGKILL');
    await Promise.all([new Promise((r) => waiter.on('exit', r)), new Promise((r) => holder.on('exit', r))]);
    expect(await withLock(project.paths.lockPath, async () => 'entered')).toBe('entered');
    expect(await readdir(project.paths.dir)).toEqual([]);
  });

  it("removes a killed waiter's prepared file at a process's first take of the lock, with no take-over (a --resume after a crash)", async () => {
    const project = await tempProject();
    await mkdir(project.paths.dir, { recursive: true });
    const child = spawn('true');
    await new Promise((resolve) => child.on('exit', resolve));
    // A waiter killed while waiting leaves `<lock>.<pid>.<token>.new`; the lock itself is free.
    const left = `${path.basename(project.paths.lockPath)}.${child.pid!}.0123456789abcdef01234567.new`;
    await writeFile(path.join(project.paths.dir, left), '{}');
    expect(await withLock(project.paths.lockPath, async () => 'entered')).toBe('entered');
    expect(await readdir(project.paths.dir)).toEqual([]);
  });

  it('a waiter acting on an old look (the dead lock already replaced by a live one) leaves the live lock alone, even if another process grabs the lock meanwhile', async () => {
    const project = await tempProject();
    await mkdir(project.paths.dir, { recursive: true });
    const { HOST } = await import('../../scripts/lib/process/identity.ts');
    // The waiter looked at a lock whose owner is dead...
    await writeFile(project.paths.lockPath, fakeOwner({ pid: 4_000_000, start: '1', host: HOST, token: 'd'.repeat(24) }));
    const judged = (await inspectLock(project.paths.lockPath))!;
    await unlink(project.paths.lockPath);
    const own = {
      prepared: path.join(project.paths.dir, 'waiter.new'),
      record: fakeOwner({ pid: process.pid, host: HOST, token: 'e'.repeat(24) }),
      staleMs: 20_000,
    };
    await writeFile(own.prepared, own.record);
    // ...and another process, racing, grabs the lock the moment any rename moves ours away.
    const realRename = fs.rename;
    vi.spyOn(fs, 'rename').mockImplementation(async (from, to) => {
      await realRename(from, to);
      if (String(from) === project.paths.lockPath)
        await writeFile(project.paths.lockPath, fakeOwner({ token: 'c'.repeat(24) })).catch(() => {});
    });
    const outcome = await withLock(project.paths.lockPath, async (lock) => {
      // Meanwhile the lock was taken over and is now held, live, by us: the late take-over must not touch it.
      await takeOver(project.paths.lockPath, judged, own);
      return lock.verify().then(() => 'still ours');
    });
    expect(outcome).toBe('still ours');
  });

  it('treats a recorded pid that now belongs to another process (reused pid) as dead', async () => {
    const project = await tempProject();
    await mkdir(project.paths.dir, { recursive: true });
    const { HOST } = await import('../../scripts/lib/process/identity.ts');
    // Our own pid, but with another start time: the process that took the lock is gone.
    await writeFile(project.paths.lockPath, fakeOwner({ pid: process.pid, start: 'not-our-start', host: HOST }));
    expect(await withLock(project.paths.lockPath, async () => 'entered', { waitMs: 2000, staleMs: 60_000 })).toBe('entered');
  });

  it(
    'waits for a lock owned on another host while its heartbeat is fresh, and takes it over once it goes stale',
    { timeout: 30_000 },
    async () => {
      const project = await tempProject();
      await mkdir(project.paths.dir, { recursive: true });
      await writeFile(project.paths.lockPath, fakeOwner({}));
      // Fresh: refreshed by the "remote" holder every 100 ms, so it is never stale.
      const refresh = setInterval(() => void utimes(project.paths.lockPath, new Date(), new Date()).catch(() => {}), 100);
      const busy = await withLock(project.paths.lockPath, async () => 'entered', { waitMs: 1500, staleMs: 600 }).catch((e: unknown) => e);
      clearInterval(refresh);
      expect(busy).toMatchObject({ code: 'lock_failed' });
      expect((busy as Error).message).toContain('on host elsewhere.example');
      // Not refreshed any more: stale after staleMs of unchanged mtime.
      const began = Date.now();
      expect(await withLock(project.paths.lockPath, async () => 'entered', { waitMs: 10_000, staleMs: 600 })).toBe('entered');
      expect(Date.now() - began).toBeGreaterThanOrEqual(600);
    },
  );

  it("fails the fence once the lock is no longer ours, and its release leaves the new owner's lock alone", async () => {
    const project = await tempProject();
    await mkdir(project.paths.dir, { recursive: true });
    const other = fakeOwner({ token: 'a'.repeat(24) });
    const error = await withLock(project.paths.lockPath, async (lock) => {
      await lock.verify();
      // Someone replaced our lock (only possible off this host, after a stall).
      await writeFile(project.paths.lockPath, other);
      return lock.verify();
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockLostError);
    expect(await readFile(project.paths.lockPath, 'utf8')).toBe(other);
  });

  it('lets exactly one of many in-process waiters hold the lock at a time, and leaves no file behind', async () => {
    const project = await tempProject();
    await mkdir(project.paths.dir, { recursive: true });
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        withLock(project.paths.lockPath, async () => {
          inside += 1;
          most = Math.max(most, inside);
          await new Promise((resolve) => setTimeout(resolve, 2));
          inside -= 1;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(await readdir(project.paths.dir)).toEqual([]);
  });
});
