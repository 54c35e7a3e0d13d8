import { appendFile, mkdir, rename, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEventReader } from '../../scripts/lib/state/event-reader.ts';
import { readEvents } from '../../scripts/lib/state/events.ts';
import type { SessionEvent } from '../../scripts/lib/state/events.ts';
import { pendingReplacements, REPLACEMENT_GRACE_MS } from '../../scripts/lib/progress/poll-loop.ts';
import { RunTracker } from '../../scripts/lib/progress/run-tracker.ts';
import { at, finishedEvents, liveState } from '../support/fixed-session.ts';
import { tempProject } from '../support/project.ts';

const ev = (type: SessionEvent['type'], task?: string, extra: Partial<SessionEvent> = {}): SessionEvent => ({
  ts: at(1),
  session_id: 's1',
  type,
  ...(task ? { task } : {}),
  ...extra,
});
const line = (event: SessionEvent) => `${JSON.stringify(event)}\n`;

async function eventsFile() {
  const { paths } = await tempProject('dto-events-');
  await mkdir(paths.dir, { recursive: true });
  return paths.eventsPath;
}

describe('event reader (events.jsonl by byte offset)', () => {
  it('returns only what was appended since the last read; a missing file is an empty log', async () => {
    const file = await eventsFile();
    const reader = openEventReader(file);
    expect(await reader.read()).toEqual({ events: [], rotated: false, invalidLines: 0, bytes: 0 });
    await writeFile(file, line(ev('session_started')) + line(ev('registered', 'a')));
    expect((await reader.read()).events.map((e) => e.type)).toEqual(['session_started', 'registered']);
    expect((await reader.read()).events).toEqual([]);
    await appendFile(file, line(ev('started', 'a')));
    expect((await reader.read()).events.map((e) => e.type)).toEqual(['started']);
    await reader.close();
  });

  it('reads a large log a batch at a time with maxBytes: every event once, in order, and a last line without newline only at the end', async () => {
    const file = await eventsFile();
    const events = Array.from({ length: 3000 }, (_, i) => ev('started', `t${i}`, { error: 'x'.repeat(i % 200) }));
    const text = events.map(line).join('') + JSON.stringify(ev('completed', 'last'));
    await writeFile(file, text);
    const reader = openEventReader(file);
    const seen: string[] = [];
    let batches = 0;
    let read = 0;
    for (;;) {
      const batch = await reader.read({ until: Infinity, maxBytes: 64 * 1024, final: true });
      seen.push(...batch.events.map((e) => e.task!));
      if (batch.bytes === 0) break;
      expect(batch.bytes).toBeLessThanOrEqual(64 * 1024);
      read += batch.bytes;
      batches += 1;
    }
    expect(read).toBe(Buffer.byteLength(text));
    expect(batches).toBe(Math.ceil(Buffer.byteLength(text) / (64 * 1024)));
    expect(seen).toEqual([...events.map((e) => e.task!), 'last']);
    await reader.close();
  });

  it('waits for the rest of a torn last line, including a split multi-byte character', async () => {
    const file = await eventsFile();
    const reader = openEventReader(file);
    const whole = Buffer.from(line(ev('failed', 'a', { error: 'échec: ⚠️ timeout' })));
    const cut = whole.indexOf(Buffer.from('⚠️')) + 1;
    await writeFile(file, whole.subarray(0, cut));
    expect(await reader.read()).toEqual({ events: [], rotated: false, invalidLines: 0, bytes: cut });
    await appendFile(file, whole.subarray(cut));
    const { events } = await reader.read();
    expect(events.map((e) => e.error)).toEqual(['échec: ⚠️ timeout']);
    await reader.close();
  });

  it('skips lines that are not JSON objects and counts them', async () => {
    const file = await eventsFile();
    const reader = openEventReader(file);
    await writeFile(file, `not json\n[1,2]\n\n${line(ev('started', 'a'))}`);
    const batch = await reader.read();
    expect(batch.events.map((e) => e.type)).toEqual(['started']);
    expect(batch.invalidLines).toBe(2);
    await reader.close();
  });

  it('follows an archived session: drains the renamed file, then reads the new one from its start', async () => {
    const file = await eventsFile();
    const reader = openEventReader(file);
    await writeFile(file, line(ev('started', 'a')));
    expect((await reader.read()).events).toHaveLength(1);
    await appendFile(file, line(ev('completed', 'a')));
    await rename(file, path.join(path.dirname(file), 's1.events.jsonl'));
    await writeFile(file, line({ ...ev('session_started'), session_id: 's2' }));
    const batch = await reader.read();
    expect(batch.rotated).toBe(true);
    expect(batch.events.map((e) => [e.session_id, e.type])).toEqual([
      ['s1', 'completed'],
      ['s2', 'session_started'],
    ]);
    await appendFile(file, line({ ...ev('registered', 'b'), session_id: 's2' }));
    expect((await reader.read()).events.map((e) => e.type)).toEqual(['registered']);
    await reader.close();
  });

  it('reads a file truncated in place again from the start', async () => {
    const file = await eventsFile();
    const reader = openEventReader(file);
    await writeFile(file, line(ev('started', 'a')) + line(ev('completed', 'a')));
    await reader.read();
    await truncate(file, 0);
    await appendFile(file, line(ev('started', 'b')));
    const batch = await reader.read();
    expect(batch.rotated).toBe(true);
    expect(batch.events.map((e) => e.task)).toEqual(['b']);
    await reader.close();
  });
});

describe('readEvents (the whole log at once, through the same reader)', () => {
  it('reads every event in order across chunk boundaries, skipping garbled lines and a torn last line', async () => {
    const file = await eventsFile();
    expect(await readEvents(file)).toEqual([]);
    // 3000 events of ~100 bytes: several 64 KiB chunks, with lines split across them.
    const many = Array.from({ length: 3000 }, (_, i) => ev('started', `task-${i}`, { error: 'é'.repeat(i % 7) }));
    const torn = line(ev('completed', 'torn')).slice(0, 30);
    await writeFile(file, `not json\n${many.map(line).join('')}[1]\n${torn}`);
    const events = await readEvents(file);
    expect(events).toHaveLength(3000);
    expect(events.map((e) => e.task)).toEqual(many.map((e) => e.task));
    expect(events[2999]).toEqual(many[2999]);
  });

  it('takes a last line without a newline when it is a whole event', async () => {
    const file = await eventsFile();
    await writeFile(file, line(ev('started', 'a')) + JSON.stringify(ev('completed', 'a')));
    expect((await readEvents(file)).map((e) => e.type)).toEqual(['started', 'completed']);
  });

  it('refuses a log that is a symbolic link, like the incremental reader', async () => {
    const file = await eventsFile();
    const target = path.join(path.dirname(file), 'elsewhere.jsonl');
    await writeFile(target, line(ev('started', 'a')));
    await symlink(target, file);
    await expect(readEvents(file)).rejects.toMatchObject({ code: 'unsafe_path' });
  });
});

describe('run tracker (statuses and batches from events alone)', () => {
  it('announces each topological batch once, when all its tasks ended', () => {
    const tracker = new RunTracker();
    const announced: string[] = [];
    for (const event of finishedEvents()) {
      tracker.apply(event);
      for (const done of tracker.completedBatches())
        announced.push(
          `${done.batch}/${done.batches} ${done.tasks.join(',')} ${JSON.stringify(done.counts)} ${done.duration_ms} ${done.ts}`,
        );
    }
    expect(announced).toEqual([
      `1/3 scan {"completed":1} 2500 ${at(3.5)}`,
      `2/3 quality,security,perf {"completed":2,"failed":1} 6200 ${at(9.8)}`,
      `3/3 report {"skipped":1} null ${at(9.8)}`,
    ]);
    expect(tracker.completedBatches()).toEqual([]);
  });

  it('holds a batch while a task is being replaced, and a task the caller holds', () => {
    const tracker = new RunTracker();
    for (const event of [
      ev('session_started'),
      ev('registered', 'a', { depends_on: [] }),
      ev('started', 'a'),
      ev('failed', 'a', { error: 'died' }),
    ])
      tracker.apply(event);
    expect(tracker.completedBatches(() => true)).toEqual([]);
    tracker.apply(ev('replaced', 'a', { attempt: 2 }));
    expect(tracker.completedBatches()).toEqual([]);
    expect(tracker.tasks.get('a')!.status).toBe('replacing');
    for (const event of [
      ev('registered', 'a', { depends_on: [] }),
      ev('started', 'a', { attempt: 2 }),
      ev('completed', 'a', { attempt: 2 }),
    ])
      tracker.apply(event);
    expect(tracker.completedBatches().map((b) => b.counts)).toEqual([{ completed: 1 }]);
  });

  it('starts afresh on a new session', () => {
    const tracker = new RunTracker();
    tracker.apply(ev('registered', 'a'));
    tracker.apply({ ...ev('session_started'), session_id: 's2' });
    expect([tracker.sessionId, tracker.tasks.size]).toEqual(['s2', 0]);
  });
});

describe('pending replacements', () => {
  it('counts a replaced, not yet re-registered task as active within the grace period and while its process lives', () => {
    const state = liveState();
    Object.assign(state.tasks.security!, { agent_died: true, replaced_attempt: 1, attempts: 1 });
    const started = new Map<string, { pid: number | undefined; since: number }>();
    expect([...pendingReplacements(state, started, 1000)]).toEqual(['security']);
    expect([...pendingReplacements(state, started, 1000 + REPLACEMENT_GRACE_MS)]).toEqual([]);
    started.set('security', { pid: 4242, since: 5000 });
    expect([...pendingReplacements(state, started, 5001, () => true)]).toEqual(['security']);
    expect([...pendingReplacements(state, started, 5001, () => false)]).toEqual([]);
    state.tasks.security!.replaced_attempt = null;
    expect([...pendingReplacements(state, started, 5001, () => true)]).toEqual([]);
    expect(started.has('security')).toBe(false);
  });
});
