// Test fixture: makes N updates of the session state in the current directory, each adding 1 to a shared counter
// (max_workers) and to its own task's attempts, with one event each. Usage: state-writer.ts TASK N
//
// Fault-injection hooks (environment), for the lock tests:
//   WRITER_TRACE=1             print "in" inside each change, "out" once each update is committed (one line each,
//                              written synchronously so a test knows who is in the critical section right now)
//   WRITER_RENAME_WAIT=P:MS    before a rename onto latest.yaml, with probability P print "rename-wait" and wait MS
//                              ms (the moment between the commit's last check and the rename, where a paused or
//                              killed holder does the most harm); "rename" is printed before every other such rename
import fs from 'node:fs/promises';
import { writeSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { resolveSessionPaths } from '../../scripts/lib/state/session-paths.ts';
import { updateState } from '../../scripts/lib/state/state-store.ts';

const [task, count] = process.argv.slice(2);
const trace = process.env.WRITER_TRACE === '1';
const say = (line: string) => trace && writeSync(1, `${line}\n`);

const wait = process.env.WRITER_RENAME_WAIT;
if (wait) {
  const [probability, ms] = wait.split(':').map(Number) as [number, number];
  const realRename = fs.rename;
  fs.rename = async (from, to) => {
    if (String(to).endsWith('latest.yaml')) {
      if (Math.random() < probability) {
        say('rename-wait');
        await new Promise((resolve) => setTimeout(resolve, ms));
      } else {
        say('rename');
      }
    }
    return realRename(from, to);
  };
  syncBuiltinESMExports();
}

const paths = resolveSessionPaths({});
for (let i = 0; i < Number(count); i++) {
  await updateState(paths, (tx) => {
    say('in');
    tx.state!.max_workers += 1;
    tx.state!.tasks[task!]!.attempts += 1;
    tx.emit('waiting', { task });
  });
  say('out');
}
