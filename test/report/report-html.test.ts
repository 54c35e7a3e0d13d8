import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { at, finishedEvents, finishedState, writeFinishedResults, writeSession } from '../support/fixed-session.ts';
import { run, tempProject } from '../support/project.ts';

/** Debian's chromium (installed by .ci/run), or the one CHROMIUM_PATH names. Playwright never downloads a browser here. */
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((file) => file && existsSync(file));

describe('aggregate --html in a headless browser', () => {
  it('draws both diagrams offline: SVG nodes and bars present, no error text, no network request', async (ctx) => {
    if (!CHROMIUM) {
      const why =
        'SKIPPED the HTML browser check: no chromium found (/usr/bin/chromium or CHROMIUM_PATH). Install it with `apt-get install -y chromium`, as .ci/run does.';
      console.warn(why);
      ctx.skip(why);
    }
    const project = await tempProject('dto-html-');
    const state = finishedState(path.join(project.dir, '.agent/results'));
    await writeFinishedResults(state);
    await writeSession(project.paths.dir, state, finishedEvents());
    const result = await run('aggregate', ['--html'], project.dir);
    expect(result.exitCode, result.all).toBe(0);
    const htmlFile = path.join(project.dir, '.agent/final_output.html');
    const html = await readFile(htmlFile, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/cdn/i);

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const requests: string[] = [];
      const problems: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console: ${message.text()}`);
      });
      await page.goto(pathToFileURL(htmlFile).href);
      await page.waitForFunction(() => document.body.dataset.diagrams !== 'pending', null, { timeout: 30_000 });
      const facts = await page.evaluate(() => ({
        status: document.body.dataset.diagrams,
        error: document.body.dataset.diagramError ?? null,
        svgs: document.querySelectorAll('pre.mermaid svg').length,
        flowNodes: document.querySelectorAll('pre.mermaid svg g.node').length,
        flowEdges: document.querySelectorAll('pre.mermaid svg .edgePaths path, pre.mermaid svg path.flowchart-link').length,
        ganttBars: document.querySelectorAll('pre.mermaid svg rect.task').length,
        text: document.body.innerText,
        rawBoldTags: document.querySelectorAll('b').length,
        title: document.title,
      }));
      expect(facts.status, facts.error ?? '').toBe('rendered');
      expect(facts.svgs).toBe(2);
      expect(facts.flowNodes).toBe(5);
      expect(facts.flowEdges).toBeGreaterThanOrEqual(6);
      expect(facts.ganttBars).toBe(5);
      expect(facts.text).not.toMatch(/Syntax error|Parse error/i);
      expect(facts.text).toContain('Completed: 3 of 5 tasks');
      expect(facts.text).toContain('see <b>details</b>');
      expect(facts.rawBoldTags).toBe(0);
      expect(facts.title).toBe('Final output: session done-fixture');
      expect(problems).toEqual([]);
      expect(requests.filter((url) => !url.startsWith('file:') && !url.startsWith('data:'))).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('refers only to itself: one file, scripts allowed by hash, no fetch allowed', async () => {
    const project = await tempProject('dto-html-');
    const state = finishedState(path.join(project.dir, '.agent/results'));
    await writeSession(project.paths.dir, state, finishedEvents());
    expect((await run('aggregate', ['--html', '--out', 'out/report.md'], project.dir)).exitCode).toBe(0);
    const html = await readFile(path.join(project.dir, 'out/report.html'), 'utf8');
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
    expect(csp).toMatch(
      /^default-src 'none'; script-src 'sha256-[^']+' 'sha256-[^']+'; style-src 'unsafe-inline'; img-src data:; font-src data:$/,
    );
    expect(html.match(/<script>/g)).toHaveLength(2);
    expect(at(0)).toBe('2026-01-15T10:00:00.000Z');
  });
});
