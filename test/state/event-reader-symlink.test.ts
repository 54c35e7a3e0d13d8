import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEventReader } from '../../scripts/lib/state/event-reader.ts';
import { run, tempProject } from '../support/project.ts';

describe('an events.jsonl that is a symbolic link out of the session folder', () => {
  it('is never read through: the incremental reader refuses it, and poll-session exits 2 naming it', async () => {
    const project = await tempProject();
    // A real session first, so poll-session has something to follow.
    expect((await run('spawn-agent-mock', ['--task_name', 'a', '--goal', 'g', '--delay_ms', '0'], project.dir)).exitCode).toBe(0);
    const outside = path.join(project.dir, 'elsewhere');
    await mkdir(outside);
    const secret = path.join(outside, 'secret.jsonl');
    await writeFile(secret, `${JSON.stringify({ ts: new Date().toISOString(), type: 'failed', task: 'a', error: 'SECRET-CONTENT' })}\n`);
    const { rm } = await import('node:fs/promises');
    await rm(project.paths.eventsPath);
    await symlink(secret, project.paths.eventsPath);

    const reader = openEventReader(project.paths.eventsPath);
    await expect(reader.read()).rejects.toMatchObject({ code: 'unsafe_path' });
    await reader.close();

    const poll = await run('poll-session', ['--once', '--from_start'], project.dir);
    expect(poll.exitCode).toBe(2);
    expect(poll.all).toContain('symbolic link');
    expect(poll.all).not.toContain('SECRET-CONTENT');
  }, 60_000);
});
