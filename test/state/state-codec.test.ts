import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { isPlainString, parseFastYaml, stringifyFastYaml } from '../../scripts/lib/state/state-codec.ts';
import { createSessionState } from '../../scripts/lib/state/state-store.ts';
import { registerTask, setStatus } from '../../scripts/lib/scheduling/transitions.ts';
import type { StateTransaction } from '../../scripts/lib/state/state-store.ts';
import { seededRandom } from '../../bench/lib/dag.ts';

/** mulberry32 (seeded), so a failure names a seed that reproduces it. */
const seeded = seededRandom;

const TOKENS = [
  'a',
  'Z',
  'task',
  '0',
  '7',
  '12',
  '-',
  '--',
  '---',
  '...',
  '.',
  ' ',
  '  ',
  ':',
  ': ',
  ' :',
  '#',
  ' #',
  '?',
  '? ',
  ',',
  '[',
  ']',
  '{',
  '}',
  '&',
  '*',
  '!',
  '|',
  '|-',
  '>',
  "'",
  '"',
  '%',
  '@',
  '`',
  '~',
  '\\',
  '/',
  '\n',
  '\n\n',
  '\t',
  '\r',
  'null',
  'Null',
  'true',
  'False',
  '0x1F',
  '0o17',
  '1e3',
  '-1.5',
  '.5',
  '.inf',
  '.NaN',
  '+12',
  'é',
  'Ж',
  '中',
  '😀',
  '\u00a0',
  '\u0085',
  '\u2028',
  '\ufeff',
  '\u0000',
  '\u0007',
  '\u001b',
  '\u007f',
  '\ud800',
  '\udc00',
  'http://x.y/z?q=1',
  '2026-11-22T20:35:10.013Z',
  'file:///tmp/a b',
  '<<',
  '=',
];

function randomString(random: () => number): string {
  const n = Math.floor(random() * 6);
  let s = '';
  for (let i = 0; i < n; i++) s += TOKENS[Math.floor(random() * TOKENS.length)]!;
  return s;
}

function randomValue(random: () => number, depth: number): unknown {
  const r = random();
  if (r < 0.45) return randomString(random);
  if (r < 0.55) return [null, true, false][Math.floor(random() * 3)];
  if (r < 0.65) return [0, -0, 1, 42, 3.5, -7.25, 1e21, 5e-7, 123456789, 0.1 + 0.2][Math.floor(random() * 10)];
  if (r < 0.8) return Array.from({ length: Math.floor(random() * 4) }, () => (random() < 0.8 ? randomString(random) : 17));
  if (depth > 2) return randomString(random);
  const out: Record<string, unknown> = {};
  const n = Math.floor(random() * 4);
  for (let i = 0; i < n; i++) out[random() < 0.7 ? `k${i}` : randomString(random) || `e${i}`] = randomValue(random, depth + 1);
  return out;
}

function tx(now: Date): StateTransaction {
  return { state: null, archiveCurrent: () => {}, emit: () => {}, now };
}

describe('state codec (fast block-YAML subset)', () => {
  it('writes a real state as the yaml package does, and reads it back identically', () => {
    const now = new Date('2026-11-22T20:35:10.013Z');
    const state = createSessionState({ sessionId: 's1', maxWorkers: 4, now });
    const t = tx(now);
    registerTask(t, state, {
      name: 'scan',
      goal: 'List the files',
      runner: 'mock',
      pid: 42,
      dependsOn: [],
      launch: { script: 'spawn-agent-mock', args: ['--task_name', 'scan', '--delay_ms', '200'], cwd: '/tmp/p' },
    });
    registerTask(t, state, {
      name: '123',
      goal: 'Fix issue #12: "quotes", colons: yes',
      runner: 'mock',
      pid: 43,
      dependsOn: ['scan'],
      files: ['src/a.ts'],
    });
    registerTask(t, state, { name: 'multi', goal: 'line one\n\n  indented line\nlast', runner: 'claude', pid: 44 });
    setStatus(t, state, 'scan', 'running');
    setStatus(t, state, 'scan', 'completed');
    const text = stringifyFastYaml(state)!;
    expect(text).toBeDefined();
    expect(YAML.parse(text)).toEqual(state);
    expect(parseFastYaml(text)).toEqual(state);
    // Single-line plain values look exactly as the yaml package writes them.
    const simple = { ...state, tasks: { scan: state.tasks.scan } };
    expect(stringifyFastYaml(simple)).toBe(YAML.stringify(simple));
  });

  it('round-trips random data through both its reader and the yaml package (2000 seeded cases)', () => {
    const random = seeded(1);
    for (let i = 0; i < 2000; i++) {
      const data = {
        id: i,
        value: randomValue(random, 0),
        list: [randomString(random), randomString(random)],
        nested: { s: randomString(random) },
      };
      const text = stringifyFastYaml(data);
      expect(text, `case ${i}`).toBeDefined();
      expect(YAML.parse(text!), `case ${i}: ${JSON.stringify(text)}`).toEqual(data);
      expect(parseFastYaml(text!), `case ${i}: ${JSON.stringify(text)}`).toEqual(data);
    }
  });

  it('calls a string plain only when YAML reads the plain scalar back as that string', () => {
    const random = seeded(2);
    for (let i = 0; i < 5000; i++) {
      const s = randomString(random);
      if (!isPlainString(s)) continue;
      expect(YAML.parse(`k: ${s}\n`), JSON.stringify(s)).toEqual({ k: s });
      expect(YAML.parse(`- ${s}\n`), JSON.stringify(s)).toEqual([s]);
    }
  });

  it('never reads edited text differently from the yaml package: it reads it the same or declines (4000 mutations)', () => {
    const random = seeded(3);
    const base = stringifyFastYaml({
      version: 1,
      name: 'x',
      goal: 'a goal: with "quotes"',
      multi: 'one\ntwo',
      tasks: { a: { status: 'running', list: ['p', 'q'], n: 3, none: null, empty: [], obj: {} } },
    })!;
    const pieces = [
      ' ',
      '  ',
      '\n',
      '#',
      ': ',
      '-',
      '- ',
      '"',
      "'",
      '|',
      '>',
      '&a',
      '*a',
      '!!str ',
      '[',
      ']',
      '{',
      '}',
      ',',
      '?',
      '~',
      '0',
      'x',
      '\\',
      '\t',
      '---\n',
      '...',
      '%YAML 1.1\n',
    ];
    for (let i = 0; i < 4000; i++) {
      let text = base;
      for (let k = 0; k < 1 + Math.floor(random() * 2); k++) {
        const at = Math.floor(random() * text.length);
        const cut = Math.floor(random() * 3);
        text = text.slice(0, at) + pieces[Math.floor(random() * pieces.length)]! + text.slice(at + cut);
      }
      const fast = parseFastYaml(text);
      if (fast === undefined) continue;
      let expected: unknown;
      try {
        expected = YAML.parse(text);
      } catch (error) {
        throw new Error(`fast reader accepted text the yaml package rejects (${(error as Error).message}): ${JSON.stringify(text)}`);
      }
      expect(fast, JSON.stringify(text)).toEqual(expected);
    }
  });

  it('declines what it does not write: comments, flow maps, anchors, folded lines, other quoting', () => {
    for (const text of [
      'a: 1 # note\n',
      'a: {b: 1}\n',
      'a: &x 1\nb: *x\n',
      'a: long\n  folded\n',
      "a: 'single'\n",
      'a: >-\n  folded\n  text\n',
      'a:\n- x\n',
      'a: ~\n',
      'a: True\n',
      '---\na: 1\n',
      'a: 1',
      'a: 1\r\n',
      'a: 1\na: 2\n',
      '__proto__: 1\n',
    ]) {
      expect(parseFastYaml(text), JSON.stringify(text)).toBeUndefined();
    }
    expect(stringifyFastYaml({ a: [{ b: 1 }] })).toBeUndefined();
    expect(stringifyFastYaml({ a: Number.NaN })).toBeUndefined();
    expect(stringifyFastYaml([1])).toBeUndefined();
  });
});
