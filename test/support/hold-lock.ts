// Test fixture: takes the session lock, says "locked", and holds it until killed.
import { mkdir } from 'node:fs/promises';
import { withLock } from '../../scripts/lib/state/lock.ts';
import { resolveSessionPaths } from '../../scripts/lib/state/session-paths.ts';

const paths = resolveSessionPaths({});
await mkdir(paths.dir, { recursive: true });
await withLock(paths.lockPath, async () => {
  process.stdout.write('locked\n');
  // A timer keeps the process alive (a bare never-settling promise would let Node exit).
  await new Promise(() => setInterval(() => {}, 60_000));
});
