// Docs as tests: every `# example:` block of references/examples.md runs against mock agents and prints what the text says.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { fillSkillDir } from '../support/skill-blocks.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface Example {
  name: string;
  script: string;
  expected: string[];
}

/** Reads each `# example: NAME` sh block and the text block that follows it. */
async function readExamples(): Promise<Example[]> {
  const text = await readFile(path.join(ROOT, 'references/examples.md'), 'utf8');
  const examples: Example[] = [];
  const blocks = [...text.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, body: m[2]! }));
  blocks.forEach((block, i) => {
    const name = /^# example: (\S+)/.exec(block.body)?.[1];
    if (block.lang !== 'sh' || !name) return;
    const next = blocks[i + 1];
    if (next?.lang !== 'text') throw new Error(`example ${name} has no text block after it`);
    examples.push({ name, script: block.body, expected: next.body.split('\n').filter((line) => line.trim() !== '') });
  });
  return examples;
}

/** A line of the doc as a pattern: `…` matches anything; the line may stand anywhere within an output line. */
function linePattern(line: string): RegExp {
  return new RegExp(
    line
      .split('…')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*'),
  );
}

const examples = await readExamples();

describe('references/examples.md', () => {
  it('has the four scenarios', () => {
    expect(examples.map((e) => e.name)).toEqual([
      'codebase-analysis',
      'translate-five-documents',
      'api-endpoint-checks',
      'full-stack-feature',
    ]);
  });

  it.each(examples.map((e) => [e.name, e] as const))('%s runs and prints what the text says, in order', async (_name, example) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), `dto-example-${example.name}-`));
    try {
      // Only the placeholder a model fills in (SKILL.md defines <skill-dir>); S is empty in the environment.
      const script = fillSkillDir(example.script, ROOT);
      const result = await execa('bash', ['-c', `${script}\nwait`], {
        cwd: dir,
        env: { S: '' },
        reject: false,
        all: true,
        timeout: 180_000,
      });
      const lines = result.all.split('\n');
      let at = 0;
      for (const expected of example.expected) {
        const pattern = linePattern(expected);
        const found = lines.findIndex((line, i) => i >= at && pattern.test(line));
        expect(found, `"${expected}" not found (in order) in:\n${result.all}`).toBeGreaterThanOrEqual(0);
        at = found + 1;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
