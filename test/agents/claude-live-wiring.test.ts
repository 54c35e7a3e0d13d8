import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { fakeProject } from '../support/claude-fixtures.ts';
import { run, start } from '../support/project.ts';

describe('live progress of a running claude agent, end to end', () => {
  it('reaches latest.yaml while the agent runs (turns growing), poll-session --once --json shows it, and the end figures replace it', async () => {
    const p = await fakeProject('turns', { FAKE_CLAUDE_STEP_MS: '700' });
    const child = start('spawn-agent', ['--task_name', 'w', '--goal', 'g', '--model', 'claude-sonnet-4-5'], p.dir, p.env);
    const turnsSeen: number[] = [];
    let pollJson = '';
    for (let i = 0; i < 14; i++) {
      await delay(500);
      const live = (await p.state())?.tasks.w?.live;
      if (live && turnsSeen.at(-1) !== live.turns) turnsSeen.push(live.turns);
      if (i === 6) pollJson = (await run('poll-session', ['--once', '--json'], p.dir, p.env)).stdout;
    }
    const result = await child;
    expect(result.exitCode).toBe(0);
    // Seen at least twice while running, never going backwards.
    expect(turnsSeen.length).toBeGreaterThanOrEqual(2);
    expect([...turnsSeen].sort((a, b) => a - b)).toEqual(turnsSeen);
    expect(pollJson).toContain('"live":{"turns"');
    expect((await p.state())!.tasks.w!.live).toMatchObject({ turns: 3, est_cost_usd: 0.5 });
  }, 60_000);
});
