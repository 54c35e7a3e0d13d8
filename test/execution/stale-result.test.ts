// An agent that loses its task between its last look at the state and its result file's commit (stopped there while
// the task was reaped, replaced and completed by the replacement) must not write its result over the replacement's.
import fs from 'node:fs/promises';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { executeClaimedTask } from '../../scripts/lib/execution/task-execution.ts';
import { readState, updateState } from '../../scripts/lib/state/state-store.ts';
import { openSession, registerTask, setStatus } from '../../scripts/lib/scheduling/transitions.ts';
import { tempProject } from '../support/project.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe("an agent's result file after it lost its task", () => {
  it("is not committed over the replacement's result when the task changed hands after the agent's last look", async () => {
    const project = await tempProject('dto-stale-result-');
    const resultPath = path.join(project.dir, '.agent/results/scan.md');
    const REPLACEMENT_PID = 4_000_001;
    await updateState(project.paths, (tx) => {
      const state = openSession(tx, { sessionId: 'stale', maxWorkers: 2 });
      registerTask(tx, state, { name: 'scan', goal: 'scan', runner: 'mock', pid: process.pid });
      setStatus(tx, state, 'scan', 'running');
    });
    const claimed = (await readState(project.paths))!;
    // The moment the old agent starts writing its result file, the task has already been reaped, replaced and
    // completed by the replacement (the old agent was stopped right after it last looked at the state).
    const realOpen = fs.open;
    let replacedMeanwhile = false;
    vi.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
      if (!replacedMeanwhile && String(args[0]).startsWith(`${resultPath}.`) && String(args[0]).endsWith('.tmp')) {
        replacedMeanwhile = true;
        await updateState(project.paths, (tx) => {
          const task = tx.state!.tasks.scan!;
          Object.assign(task, { status: 'completed', pid: REPLACEMENT_PID, pid_start: '1', attempts: 2, result_path: resultPath });
        });
        writeFileSync(resultPath, 'REPLACEMENT RESULT\n');
      }
      return realOpen(...args);
    });
    const end = await executeClaimedTask({
      paths: project.paths,
      name: 'scan',
      state: claimed,
      resultPath,
      agentCwd: project.dir,
      executor: async () => ({ status: 'completed', body: 'STALE RESULT of attempt 1' }),
      controller: new AbortController(),
    });
    expect(replacedMeanwhile).toBe(true);
    expect(await fs.readFile(resultPath, 'utf8')).toBe('REPLACEMENT RESULT\n');
    expect(readdirSync(path.dirname(resultPath))).toEqual(['scan.md']);
    expect(end.status).toBe('completed');
    expect((await readState(project.paths))!.tasks.scan).toMatchObject({ status: 'completed', pid: REPLACEMENT_PID, attempts: 2 });
  });
});
