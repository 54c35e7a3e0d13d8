// End to end: the real claude CLI, driven by a scripted model, follows SKILL.md for agents that edit code: a plan of
// mock agents that write files runs detached with --isolation worktree (as section 7 says for editing tasks), the
// model waits in slices, verifies, reads the land command from aggregate's summary and lands the integration branch.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClaudeAsClient } from '../support/claude-fixtures.ts';
import { startMessagesApiStub, type MessagesApiStub, type StubRequest } from '../support/messages-api-stub.ts';
import { blockFollowingModel, strings, toolResultsOf, type RequestBody } from '../support/scripted-model.ts';
import { fillSkillDir, installSkillCopy, ROOT, skillBlock, withPlan } from '../support/skill-blocks.ts';

const BASH_LIMIT_MS = 20_000;
const SLICE_S = Math.floor((BASH_LIMIT_MS * 0.75) / 1000);
const MARKER = '[[e2e:isolation]]';

/** Three editing tasks: `model` creates a file that `routes` (its dependant) extends; `docs` is independent. */
const PLAN = {
  request: 'Add a user model, its routes and their docs',
  tasks: [
    {
      id: 'model',
      goal: 'Create src/user.ts',
      delay_ms: 1500,
      files: ['src/user.ts'],
      write: { 'src/user.ts': 'export type User = { id: string };\n' },
    },
    {
      id: 'routes',
      goal: 'Add routes for the user model',
      depends_on: ['model'],
      delay_ms: 1500,
      files: ['src/user.ts'],
      append: { 'src/user.ts': 'export const routes = ["/users"];\n' },
    },
    { id: 'docs', goal: 'Document the user API', delay_ms: 1500, files: ['docs/users.md'], write: { 'docs/users.md': '# Users\n' } },
  ],
};

let home: string;
let skill: string;
let stub: MessagesApiStub | undefined;

beforeAll(async () => {
  ({ home, skill } = await installSkillCopy('dto-e2e-iso-home-'));
}, 120_000);
afterAll(async () => {
  await stub?.close();
  await rm(home, { recursive: true, force: true });
});

const git = async (cwd: string, ...args: string[]) => (await execa('git', args, { cwd })).stdout;

describe('SKILL.md for editing tasks, followed by a model in the real claude CLI (worktree isolation, mock agents)', () => {
  it("runs the plan isolated, leaves the user's tree untouched, and lands the integration branch named by aggregate", async () => {
    // SKILL.md section 7: editing tasks that run at once in one repository get --isolation worktree.
    const skillText = await readFile(path.join(ROOT, 'SKILL.md'), 'utf8');
    expect(skillText).toMatch(/--isolation worktree/);
    expect(skillText).toMatch(/git merge --ff-only dto\/<session>\/integration/);
    // SKILL.md section 4: the model's own plan goes to orchestrate on standard input, in the start block's heredoc.
    const start = withPlan(await skillBlock('orchestrate -', '--agent mock', '--detach'), YAML.stringify(PLAN)).replace(
      '--detach',
      '--isolation worktree --detach',
    );
    const wait = (await skillBlock('poll-session --timeout 90')).replace('--timeout 90', `--timeout ${SLICE_S}`);
    const verify = await skillBlock('scripts/run" aggregate');

    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-e2e-iso-project-'));
    await git(project, 'init', '-q', '-b', 'main');
    await writeFile(path.join(project, 'README.md'), '# app\n');
    await writeFile(path.join(project, '.gitignore'), '.agent/\n');
    await git(project, 'add', '.');
    await git(project, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'init');
    const headBefore = await git(project, 'rev-parse', 'HEAD');

    let base: string | null = null;
    let statusBeforeLand: string | null = null;
    const inner = blockFollowingModel(MARKER, (body, calls) => {
      if (calls.length === 0) {
        calls.push({ kind: 'skill', id: 'toolu_iso_skill' });
        return { type: 'tool_use', id: 'toolu_iso_skill', name: 'Skill', input: { skill: 'distributed-task-orchestrator' } };
      }
      if (calls.at(-1)!.kind === 'skill') {
        base =
          (strings(body.messages)
            .join('\n')
            .match(/Base directory for this skill: (.+)/) ?? [])[1]?.trim() ?? null;
        if (!base) return { type: 'text', text: 'No base directory line in the conversation.' };
      }
      const fill = (block: string) => fillSkillDir(block, base!);
      return { start: fill(start), wait: fill(wait), verify: fill(verify) };
    });
    // After verifying, the model does what SKILL.md section 6 says: takes the land command from the summary and runs it.
    const reply = (request: StubRequest) => {
      const last = inner.calls.at(-1);
      const ours = request.method === 'POST' && request.body.includes(MARKER) && request.body.includes('"name":"Bash"');
      if (ours && (last?.kind === 'verify' || last?.kind === 'land')) {
        for (const result of toolResultsOf(JSON.parse(request.body) as RequestBody)) inner.results.set(result.id, result);
        if (last.kind === 'land') return { type: 'text' as const, text: 'Done: landed the integration branch.' };
        const summary = inner.results.get(last.id)?.text ?? '';
        const land = summary.match(/land with: (git merge --ff-only \S+)/);
        if (!land) return { type: 'text' as const, text: `No land command in the summary: ${summary.slice(-400)}` };
        statusBeforeLand = execFileSync('git', ['status', '--porcelain'], { cwd: project, encoding: 'utf8' });
        inner.calls.push({ kind: 'land', id: 'toolu_iso_land', command: land[1] });
        return { type: 'tool_use' as const, id: 'toolu_iso_land', name: 'Bash', input: { command: land[1]!, description: 'land' } };
      }
      return inner.reply(request);
    };
    stub = await startMessagesApiStub(reply);
    const { result, lines } = await runClaudeAsClient({
      cwd: project,
      input: `Rehearse the user feature plan with mock agents editing the code, wait, report and land it. ${MARKER}`,
      stub,
      home,
      maxTurns: 60,
      allowedTools: 'Bash,Write,Skill',
      bashLimitMs: BASH_LIMIT_MS,
    });
    expect(lines.at(-1), `stderr: ${result.stderr}`).toMatchObject({
      type: 'result',
      is_error: false,
      result: 'Done: landed the integration branch.',
    });
    expect(base).toBe(skill);
    const kinds = inner.calls.map((c) => c.kind);
    expect(kinds.slice(0, 2)).toEqual(['skill', 'start']);
    expect(kinds.slice(-2)).toEqual(['verify', 'land']);

    // What aggregate printed: every task merged, the integration branch and its land command.
    const verifyText = inner.results.get(inner.calls.find((c) => c.kind === 'verify')!.id)!.text;
    expect(verifyText).toContain('Completed: 3 of 3 tasks');
    expect(verifyText).toMatch(/Integration branch dto\/\S+\/integration: 3 merged\. Your branch is untouched/);
    // Until the land step the user's branch and working tree were not touched (only .agent/, which is ignored).
    expect(statusBeforeLand).toBe('');
    // The land step fast-forwarded main onto the integration branch: the dependant's edit sits on the model's file.
    const landResult = inner.results.get('toolu_iso_land')!;
    expect(landResult.isError, landResult.text).toBe(false);
    await git(project, 'merge-base', '--is-ancestor', headBefore, 'HEAD');
    expect(await readFile(path.join(project, 'src/user.ts'), 'utf8')).toBe(
      'export type User = { id: string };\nexport const routes = ["/users"];\n',
    );
    expect(await readFile(path.join(project, 'docs/users.md'), 'utf8')).toBe('# Users\n');
    // Merged worktrees were removed: only the user's checkout is left.
    expect((await git(project, 'worktree', 'list')).split('\n')).toHaveLength(1);
    await rm(project, { recursive: true, force: true });
  }, 180_000);
});
