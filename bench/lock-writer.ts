// One writer process of the lock benchmark: waits for "go" on stdin, then makes N updates of the session state.
//   node --import tsx bench/lock-writer.ts SESSION_DIR TASK UPDATES [--no-lock]
// Each update adds 1 to the shared counter (`max_workers`) and to its own task's `attempts`, renews the
// task's heartbeat and logs one event, as an agent's heartbeat would. Prints one JSON line at the end:
// { start, end, lockAttempts } (Date.now() values). --no-lock does the same read-change-write cycle
// without the lock (the floor; only correct with a single writer).
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { appendEvents } from '../scripts/lib/state/events.ts';
import { lockStats } from '../scripts/lib/state/lock.ts';
import { SessionStateSchema, type SessionState } from '../scripts/lib/state/schema.ts';
import { decodeState, encodeState, updateState } from '../scripts/lib/state/state-store.ts';
import type { SessionPaths } from '../scripts/lib/state/session-paths.ts';

const [sessionDir, task, updatesArg, mode] = process.argv.slice(2);
if (!sessionDir || !task || !updatesArg) throw new Error('usage: lock-writer.ts SESSION_DIR TASK UPDATES [--no-lock]');
const updates = Number(updatesArg);
const dir = path.resolve(sessionDir);
const paths: SessionPaths = {
  cwd: dir,
  dir,
  statePath: path.join(dir, 'latest.yaml'),
  lockPath: path.join(dir, 'latest.yaml.lock'),
  eventsPath: path.join(dir, 'events.jsonl'),
};

function change(state: SessionState, now: Date): void {
  state.max_workers += 1;
  const record = state.tasks[task!]!;
  record.attempts += 1;
  record.heartbeat_at = now.toISOString();
}

/** The critical section of updateState without the lock: read, parse, validate, change, validate, write, rename, log. */
async function unlockedUpdate(): Promise<void> {
  const now = new Date();
  const state = await decodeState(await readFile(paths.statePath, 'utf8'), paths.statePath);
  change(state, now);
  const next = SessionStateSchema.parse(state);
  const tmp = `${paths.statePath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, await encodeState(next), 'utf8');
  await rename(tmp, paths.statePath);
  await appendEvents(paths.eventsPath, [{ ts: now.toISOString(), session_id: next.session_id, type: 'waiting', task }]);
}

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();
const start = Date.now();
for (let i = 0; i < updates; i++) {
  if (mode === '--no-lock') {
    await unlockedUpdate();
  } else {
    await updateState(paths, (tx) => {
      change(tx.state!, tx.now);
      tx.emit('waiting', { task });
    });
  }
}
const end = Date.now();
process.stdout.write(`${JSON.stringify({ start, end, lockAttempts: lockStats.attempts })}\n`);
