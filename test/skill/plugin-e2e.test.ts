// /orchestrate end to end: the plugin installed from a local marketplace, the real CLI expanding the command, and a
// scripted model running the command's own blocks as it received them (plugin folder already filled in).
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REAL_CLAUDE, runClaudeAsClient } from '../support/claude-fixtures.ts';
import { startMessagesApiStub, type MessagesApiStub } from '../support/messages-api-stub.ts';
import { blockFollowingModel, strings } from '../support/scripted-model.ts';
import { ROOT, codeBlocks } from '../support/skill-blocks.ts';

const PLUGIN = 'distributed-task-orchestrator';
const BASH_LIMIT_MS = 20_000;
const SLICE_S = Math.floor((BASH_LIMIT_MS * 0.75) / 1000);
const MARKER = 'plans/e2e-review.yaml';
const PLAN = {
  request: 'Review the repository',
  tasks: [
    { id: 'scan', goal: 'List the source files', delay_ms: 8000 },
    { id: 'quality', goal: 'Review quality', depends_on: ['scan'], delay_ms: 12000 },
    { id: 'security', goal: 'Review security', depends_on: ['scan'], delay_ms: 12000 },
    { id: 'performance', goal: 'Review performance', depends_on: ['scan'], delay_ms: 10000 },
    { id: 'report', goal: 'Merge the reviews', depends_on: ['quality', 'security', 'performance'], delay_ms: 6000 },
  ],
};

let home: string;
let stub: MessagesApiStub | undefined;

beforeAll(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'dto-plugin-e2e-home-'));
  const repo = path.join(home, 'src', PLUGIN);
  await mkdir(repo, { recursive: true });
  for (const entry of await readdir(ROOT)) {
    if (['node_modules', '.git', '.agent', 'dist'].includes(entry)) continue;
    await cp(path.join(ROOT, entry), path.join(repo, entry), { recursive: true });
  }
  const env = {
    HOME: home,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
  };
  for (const args of [
    ['plugin', 'marketplace', 'add', repo],
    ['plugin', 'install', `${PLUGIN}@${PLUGIN}`],
  ]) {
    const result = await execa(REAL_CLAUDE, args, { cwd: home, env, extendEnv: false, reject: false });
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
  }
  // Stands in for the one-time `npm ci --omit=dev` in the plugin folder (no network in tests), wherever the CLI put it.
  const installed = JSON.parse(await readFile(path.join(home, '.claude/plugins/installed_plugins.json'), 'utf8')) as {
    plugins: Record<string, Array<{ installPath: string }>>;
  };
  for (const dir of [repo, ...installed.plugins[`${PLUGIN}@${PLUGIN}`]!.map((p) => p.installPath)]) {
    await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir').catch(() => {});
  }
  // The set-up's scripts/build (prebuilt bundles), in the folder the command's S points at (the local marketplace source).
  await execa(path.join(repo, 'scripts', 'build'), [], { cwd: repo });
}, 120_000);
afterAll(async () => {
  await stub?.close();
  await rm(home, { recursive: true, force: true });
});

describe('/orchestrate followed by a model in the real CLI (plugin from a local marketplace, Bash limit 20 s)', () => {
  it("runs the plan given as argument detached, waits in slices and verifies, using only the command's own blocks", async () => {
    const project = await mkdtemp(path.join(os.tmpdir(), 'dto-plugin-e2e-project-'));
    try {
      await execa('git', ['init', '-q'], { cwd: project });
      await mkdir(path.join(project, 'plans'));
      await writeFile(path.join(project, MARKER), YAML.stringify(PLAN));
      let received = '';
      const model = blockFollowingModel(MARKER, (body) => {
        // The command's text as the model received it: its sh blocks, with the placeholders the text names filled in.
        received = strings(body.messages).find((text) => text.includes('# /orchestrate')) ?? '';
        const blocks = codeBlocks(received)
          .filter((b) => b.lang === 'sh')
          .map((b) => b.body);
        const pick = (needle: string) => blocks.find((b) => b.includes(needle))!;
        return {
          start: pick('orchestrate PLAN').replace('PLAN', MARKER).replace('--workers N', '--workers 3'),
          wait: pick('poll-session --timeout 90').replace('--timeout 90', `--timeout ${SLICE_S}`),
          verify: pick('scripts/run" aggregate'),
        };
      });
      stub = await startMessagesApiStub(model.reply);
      const { result, lines } = await runClaudeAsClient({
        cwd: project,
        input: `/${PLUGIN}:orchestrate ${MARKER} --workers 3 --rehearse`,
        stub,
        home,
        maxTurns: 40,
        allowedTools: 'Bash',
        bashLimitMs: BASH_LIMIT_MS,
      });
      const final = lines.at(-1);
      expect(final, `stderr: ${result.stderr}`).toMatchObject({ type: 'result', is_error: false, result: 'Done: the rehearsal finished.' });
      expect(received).toContain(`Arguments: \`${MARKER} --workers 3 --rehearse\``);

      const kinds = model.calls.map((c) => c.kind);
      expect(kinds[0]).toBe('start');
      expect(kinds.at(-1)).toBe('verify');
      const start = model.results.get(model.calls[0]!.id)!;
      expect(start.text).toMatch(/^Started session \S+ in the background \(pid \d+\): 5 tasks, mock agents\.$/m);
      const waits = model.calls.filter((c) => c.kind === 'wait').map((c) => model.results.get(c.id)!);
      for (const w of waits) expect(w.text).toMatch(/^\[poll\] .*\(exit [03]\)\.?$/m);
      expect(waits.length).toBeGreaterThanOrEqual(2);
      expect(waits.slice(0, -1).every((w) => /Exit code 3\b/.test(w.text))).toBe(true);
      expect(waits.at(-1)!.isError).toBe(false);
      expect(Math.max(...waits.map((w) => Buffer.byteLength(w.text)))).toBeLessThanOrEqual(3 * 1024);
      const verify = model.results.get(model.calls.at(-1)!.id)!;
      expect(verify.text).toContain('Completed: 5 of 5 tasks');
      expect(verify.text).toMatch(/REHEARSAL WITH SIMULATED AGENTS/);
      const report = await readFile(path.join(project, '.agent/final_output.md'), 'utf8');
      expect(report).toMatch(/Completed: \*\*5 of 5\*\*/);
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  }, 180_000);
});
