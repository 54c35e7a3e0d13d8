// An event reader closed while a read is in flight keeps no descriptor (a cancel watch stopped at once used to leave one
// to the garbage collector: "Warning: Closing file descriptor N on garbage collection" on orchestrate's stderr, stress run 3).
import { mkdtemp, readdir, readlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEventReader } from '../../scripts/lib/state/event-reader.ts';

/** This process's open descriptors on `file` (Linux: /proc/self/fd). */
async function descriptorsOn(file: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === file) count++;
  }
  return count;
}

describe.runIf(process.platform === 'linux')('closing an event reader', () => {
  it('while its first read is opening the file: the read opens nothing that stays open, and later reads return nothing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dto-reader-close-'));
    const file = path.join(dir, 'events.jsonl');
    await writeFile(file, `${JSON.stringify({ ts: '2026-12-06T00:00:00.000Z', session_id: 's', type: 'registered', task: 'a' })}\n`);
    for (let i = 0; i < 20; i++) {
      const reader = openEventReader(file);
      const reading = reader.read();
      await reader.close();
      await reading.catch(() => undefined);
      expect(reader.position()).toBeNull();
      expect((await reader.read()).events).toEqual([]);
    }
    expect(await descriptorsOn(file)).toBe(0);
  });

  it('overlapping first reads open one descriptor, and close() closes it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dto-reader-close-'));
    const file = path.join(dir, 'events.jsonl');
    await writeFile(file, `${JSON.stringify({ ts: '2026-12-06T00:00:00.000Z', session_id: 's', type: 'registered', task: 'a' })}\n`);
    const reader = openEventReader(file);
    await Promise.all([reader.read(), reader.read(), reader.read()]);
    expect(await descriptorsOn(file)).toBe(1);
    await reader.close();
    expect(await descriptorsOn(file)).toBe(0);
  });
});
