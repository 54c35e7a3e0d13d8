// Runs a script of the skill as a child process with execa (kept apart from launch.ts, so an agent start that only
// needs the command line, such as a registration that queues its task, never loads execa).
import { execa, type Options } from 'execa';
import { scriptArgv } from './launch.ts';

/**
 * Runs a script of the skill as a child process with execa.
 * @param name - script name without extension, e.g. `spawn-agent-mock`.
 * @param options - execa options (cwd, stdio, detached, reject, ...).
 */
export function runScript<O extends Options>(name: string, args: readonly string[], options: O) {
  return execa(process.execPath, scriptArgv(name, args), options);
}
