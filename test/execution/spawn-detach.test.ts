// spawn-agent(-mock) --detach: register and return at once; a task that may start runs in a process of its own, the
// others are queued for the session to start; chained with && one call starts a whole graph.
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../scripts/lib/state/events.ts';
import { run, tempProject } from '../support/project.ts';

const spawn = (dir: string, ...args: string[]) => run('spawn-agent-mock', ['--session_id', 'det', ...args, '--detach'], dir);

describe('spawn-agent-mock --detach', () => {
  it('returns before its task ends; the task runs in another process; queued dependants start when it completes', async () => {
    const project = await tempProject('dto-detach-spawn-');
    // Long enough that `report` registers while `scan` still runs, on a loaded machine too (1.5 s once was not).
    const first = await spawn(project.dir, '--max_workers', '2', '--task_name', 'scan', '--goal', 'scan', '--delay_ms', '10000');
    expect(first.exitCode, first.all).toBe(0);
    expect(first.stdout).toMatch(/^scan runs in the background \(Agent-01, session det\), in a process of its own\.$/m);
    // The command returned while its task still runs, owned by a process that is not the command.
    const running = (await project.state())!.tasks.scan!;
    expect(running.status).toBe('running');
    const second = await spawn(project.dir, '--task_name', 'report', '--depends_on', 'scan', '--goal', 'report', '--delay_ms', '200');
    expect(second.exitCode, second.all).toBe(0);
    expect(second.stdout).toMatch(/^report is queued \(Agent-02, session det\)/m);

    const waited = await run('poll-session', ['--until_done', '--expect', '2', '--timeout', '60'], project.dir);
    expect(waited.exitCode, waited.all).toBe(0);
    const state = (await project.state())!;
    expect([state.tasks.scan!.status, state.tasks.report!.status]).toEqual(['completed', 'completed']);
    // Registered with no owner (the registering command never runs its task), each started once, in dependency order.
    const events = await readEvents(project.paths.eventsPath);
    expect(events.filter((e) => e.type === 'registered').map((e) => [e.task, e.pid])).toEqual([
      ['scan', null],
      ['report', null],
    ]);
    expect(events.filter((e) => e.type === 'started').map((e) => e.task)).toEqual(['scan', 'report']);
  }, 60_000);

  it('refuses --detach with --wait before anything is written', async () => {
    const project = await tempProject('dto-detach-spawn-');
    const result = await spawn(project.dir, '--task_name', 'a', '--goal', 'a', '--wait');
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/Give either --detach .* or --wait .*, not both\./);
    expect(await project.state()).toBeNull();
  });
});
