// Test fixture: takes the session lock, says "locked", and holds it until killed.
import { withLock } from '../../scripts/lib/lock.ts';
import { resolveSessionPaths } from '../../scripts/lib/session-paths.ts';

const paths = resolveSessionPaths({});
await withLock(paths.lockPath, async () => {
  process.stdout.write('locked\n');
  await new Promise(() => {});
});
