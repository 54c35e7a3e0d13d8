// Test fixture: makes N updates of the session state in the current directory, each adding 1 to a shared counter
// (max_workers) and to its own task's attempts, with one event each. Usage: state-writer.ts TASK N
import { resolveSessionPaths } from '../../scripts/lib/session-paths.ts';
import { updateState } from '../../scripts/lib/state-store.ts';

const [task, count] = process.argv.slice(2);
const paths = resolveSessionPaths({});
for (let i = 0; i < Number(count); i++) {
  await updateState(paths, (tx) => {
    tx.state!.max_workers += 1;
    tx.state!.tasks[task!]!.attempts += 1;
    tx.emit('waiting', { task });
  });
}
