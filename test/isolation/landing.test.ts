// The end-of-run line offers "land with" only for an integration branch that holds this run's last merge: put back when it
// was deleted after that merge, and withheld, with the reason, when someone moved it.
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkLanding } from '../../scripts/lib/isolation/landing.ts';
import { mergeRunLine, type MergeReport } from '../../scripts/lib/isolation/merge-report.ts';
import { resolveCommit } from '../../scripts/lib/isolation/git.ts';
import { newSessionState } from '../../scripts/lib/state/model.ts';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const BRANCH = 'dto/S1/integration';
const env = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

/** A repository whose integration branch is one merge ahead of main; the state records that merge as its tip. */
async function repoWithIntegration() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dto-landing-'));
  dirs.push(dir);
  const g = (...args: string[]) => execa('git', args, { cwd: dir, env });
  await g('init', '-q', '-b', 'main');
  await writeFile(path.join(dir, 'a.txt'), 'a\n');
  await g('add', '-A');
  await g('commit', '-q', '-m', 'base');
  const base = (await g('rev-parse', 'HEAD')).stdout;
  await g('checkout', '-q', '-b', BRANCH);
  await writeFile(path.join(dir, 'b.txt'), 'b\n');
  await g('add', '-A');
  await g('commit', '-q', '-m', 'merge of task A');
  const tip = (await g('rev-parse', 'HEAD')).stdout;
  await g('checkout', '-q', 'main');
  const state = newSessionState({ sessionId: 'S1', now: '2026-01-01T00:00:00.000Z', maxWorkers: 2 });
  state.integration = { branch: BRANCH, base, tip };
  return { dir, g, base, tip, state };
}

const report = { integration: { branch: BRANCH }, merged: ['A'], conflicted: [], gate_failed: [] } as unknown as MergeReport;

describe('the land command at the end of a run', () => {
  it('is offered for a branch at the last recorded merge', async () => {
    const { dir, state } = await repoWithIntegration();
    const landing = await checkLanding(dir, state);
    expect(landing).toEqual({ note: null, problem: null });
    expect(mergeRunLine(report, landing)).toContain(`Your branch is untouched; land with: git merge --ff-only ${BRANCH}`);
  });

  it('puts back a branch deleted after the last merge, says so, and offers it', async () => {
    const { dir, g, tip, state } = await repoWithIntegration();
    await g('branch', '-D', BRANCH);
    const landing = await checkLanding(dir, state);
    expect(await resolveCommit(dir, `refs/heads/${BRANCH}`)).toBe(tip);
    expect(landing!.note).toBe(`${BRANCH} was deleted after the last merge; restored at its last recorded tip ${tip.slice(0, 12)}`);
    const line = mergeRunLine(report, landing)!;
    expect(line).toContain('restored at its last recorded tip');
    expect(line).toContain('land with: git merge --ff-only');
  });

  it('withholds it, saying why, for a branch moved back by someone else, and warns for one moved on', async () => {
    const { dir, g, base, tip, state } = await repoWithIntegration();
    await g('branch', '-f', BRANCH, base);
    const moved = mergeRunLine(report, await checkLanding(dir, state))!;
    expect(moved).toContain(
      `${BRANCH} was moved to ${base.slice(0, 12)} outside this run and no longer holds its last merge ${tip.slice(0, 12)}`,
    );
    expect(moved).not.toContain('land with');

    await g('checkout', '-q', BRANCH);
    await g('reset', '-q', '--hard', tip);
    await writeFile(path.join(dir, 'c.txt'), 'c\n');
    await g('add', '-A');
    await g('commit', '-q', '-m', 'someone else');
    await g('checkout', '-q', 'main');
    const onwards = mergeRunLine(report, await checkLanding(dir, state))!;
    expect(onwards).toContain("moved on past this run's last merge");
    expect(onwards).not.toContain('land with');
  });
});
