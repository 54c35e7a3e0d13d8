// Acceptance with the real Claude Code CLI (the pinned devDependency) against the loopback Messages API stub: a task
// whose check fails on the first attempt and passes on the second; the second attempt resumed the same Claude session
// and was given the check's output.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { argLoggingClaude, claudeProject, loggedArgs, tempDir, useMarkerStub } from '../support/claude-fixtures.ts';
import { stubEnv } from '../support/messages-api-stub.ts';
import { start } from '../support/project.ts';

const STREAM = ['-p', '--output-format', 'stream-json', '--verbose'];
const MARKER = '[[stub:answer:chk]]';

const { stub, requestsWith } = useMarkerStub();

describe('a check per task with the real claude CLI', () => {
  it('the check fails once: the next attempt resumes the same Claude session with its output, then it passes and the task is verified', async () => {
    const project = await claudeProject('dto-check-real-');
    const home = await tempDir('dto-check-home-');
    const argsLog = await tempDir('dto-check-args-');
    await writeFile(
      path.join(project.dir, 'check.cjs'),
      `const fs = require('node:fs'); const n = (fs.existsSync('runs') ? Number(fs.readFileSync('runs', 'utf8')) : 0) + 1;\n` +
        `fs.writeFileSync('runs', String(n)); if (n === 1) { console.error('FAILED: expected 42, got 41'); process.exit(1); }\n` +
        `console.log('all 3 checks passed');\n`,
    );
    const env = { ...stubEnv(stub(), home), CLAUDE_BIN: await argLoggingClaude(), ARGS_LOG: argsLog };
    const result = await start(
      'spawn-agent',
      ['--task_name', 'chk', '--goal', `Fix the answer. ${MARKER}`, '--check', 'node check.cjs', '--retries', '1'],
      project.dir,
      env,
    );
    expect([result.exitCode, result.stderr]).toEqual([0, '']);
    const task = (await project.state())!.tasks.chk!;
    expect(task).toMatchObject({ status: 'completed', attempts: 2, error: null });
    expect(task.verdict).toMatchObject({ value: 'verified' });
    expect(task.verdict!.evidence[0]).toBe('check `node check.cjs` passed');
    const sessionId = task.claude_session_id!;
    // Two runs of the CLI: the second resumed the first one's own session.
    expect(await loggedArgs(argsLog)).toEqual([STREAM, [...STREAM, '--resume', sessionId]]);
    // The resumed conversation reached the API with the first answer and, as the next instruction, the check's output.
    const requests = requestsWith(MARKER);
    const resumed = requests.filter((r) => r.body.includes('FAILED: expected 42, got 41'));
    expect(requests.length - resumed.length).toBeGreaterThanOrEqual(1);
    expect(resumed.length).toBeGreaterThanOrEqual(1);
    expect(resumed.at(-1)!.body).toContain('Answer for chk.');
    expect(resumed.at(-1)!.body).toContain('The check of this task failed: `node check.cjs` exited 1');
    const events = (await readEvents(project.paths.eventsPath)).filter((e) => e.task === 'chk');
    expect(events.map((e) => e.type)).toEqual(['registered', 'started', 'retrying', 'started', 'completed']);
    expect(JSON.stringify(events[2])).toContain(`check \`node check.cjs\` failed (exit 1); resuming Claude session ${sessionId}`);
    expect(result.stdout).toContain('check `node check.cjs` passed');
  });
});
