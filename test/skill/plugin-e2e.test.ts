// /orchestrate end to end: the plugin installed from a local marketplace, the real CLI expanding the command, and a
// scripted model running the command's own blocks as it received them (plugin folder already filled in), in the
// default permission mode with only the skill allowed: the command's allowed-tools, then the skill at the wake-up.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClaudeAsClient } from '../support/claude-fixtures.ts';
import { startMessagesApiStub, type MessagesApiStub } from '../support/messages-api-stub.ts';
import { skillFollowingModel } from '../support/background-model.ts';
import { installPluginCopy, PLUGIN } from '../support/plugin-install.ts';

const BASH_LIMIT_MS = 20_000;
const MARKER = 'plans/e2e-review.yaml';
const PLAN = {
  request: 'Review the repository',
  tasks: [
    { id: 'scan', goal: 'List the source files', delay_ms: 8000 },
    { id: 'quality', goal: 'Review quality', depends_on: ['scan'], delay_ms: 12000 },
    { id: 'security', goal: 'Review security', depends_on: ['scan'], delay_ms: 12000 },
    { id: 'performance', goal: 'Review performance', depends_on: ['scan'], delay_ms: 4000, fail: true },
    { id: 'report', goal: 'Merge the reviews', depends_on: ['quality', 'security'], delay_ms: 6000 },
  ],
};

let home: string | undefined;
let stub: MessagesApiStub | undefined;

beforeAll(async () => {
  // The plugin from a local marketplace, its node_modules linked and scripts/build run where its commands point.
  ({ home } = await installPluginCopy('dto-plugin-e2e-home-'));
  // Under load (two busy cores beside the suite) the copy, two CLI starts and scripts/build took over 2 minutes.
}, 300_000);
afterAll(async () => {
  await stub?.close();
  if (home) await rm(home, { recursive: true, force: true, maxRetries: 5 });
});

describe('/orchestrate followed by a model in the real CLI (plugin from a local marketplace, default permission mode)', () => {
  it('starts the plan detached, waits in the background, and on the wake-up renews the approval with the skill: 0 denials', async () => {
    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-plugin-e2e-project-'));
    try {
      await execa('git', ['init', '-q'], { cwd: project });
      await mkdir(path.join(project, 'plans'));
      await writeFile(path.join(project, MARKER), YAML.stringify(PLAN));
      // The command's text as the model received it (plugin folder filled in): its start and wait blocks, PLAN and N replaced.
      const model = skillFollowingModel({
        marker: MARKER,
        skill: PLUGIN,
        plan: '',
        command: { planFile: MARKER, workers: '--workers 3' },
        project,
      });
      stub = await startMessagesApiStub(model.reply);
      const { result, lines } = await runClaudeAsClient({
        cwd: project,
        input: `/${PLUGIN}:orchestrate ${MARKER} --workers 3 --rehearse`,
        stub,
        home: home!,
        maxTurns: 40,
        allowedTools: `Skill(${PLUGIN})`,
        permissionMode: 'default',
        bashLimitMs: BASH_LIMIT_MS,
      });
      const final = lines.at(-1) as { result?: string; permission_denials?: unknown[] } | undefined;
      const trace = `steps: ${JSON.stringify(model.steps.map((s) => s.kind))}\nstderr: ${result.stderr.slice(-600)}`;
      expect(final, trace).toMatchObject({ type: 'result', is_error: false, result: 'Done: the run ended and the report is read.' });
      // The command pre-approved its launcher for its turn; at the wake-up the skill renewed it: nothing was refused.
      expect(final!.permission_denials, trace).toEqual([]);
      // One task fails on purpose: the wake-up says exit 1, so the model loads the skill again and runs aggregate.
      expect(model.steps.map((s) => s.kind)).toEqual(['start', 'wait', 'end_turn', 'skill', 'aggregate', 'answer']);
      expect(model.wakeUps.map((w) => w.exitCode)).toEqual([1]);
      expect(model.requests).toBeLessThanOrEqual(7);
      const start = model.results.get(model.steps[0]!.id)!;
      expect(start.text).toMatch(/^Started session \S+ in the background \(pid \d+\): 5 tasks, mock agents\.$/m);
      const digest = await readFile(model.wakeUps[0]!.outputFile!, 'utf8');
      expect(Buffer.byteLength(digest), digest).toBeLessThanOrEqual(2048);
      expect(digest).toMatch(/performance/);
      const verify = model.results.get(model.steps.find((s) => s.kind === 'aggregate')!.id)!;
      expect(verify.isError, verify.text.slice(0, 300)).toBe(false);
      expect(verify.text).toContain('Completed: 4 of 5 tasks');
      expect(verify.text).toMatch(/REHEARSAL WITH SIMULATED AGENTS/);
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  }, 180_000);
});
