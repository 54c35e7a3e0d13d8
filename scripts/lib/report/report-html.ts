// The report as one self-contained HTML page: the Markdown rendered with marked, the diagrams drawn in the page by an inlined Mermaid bundle.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Marked, type Tokens } from 'marked';

/** Where the browser build of Mermaid comes from: the `mermaid` package's single-file bundle (no network at view time). */
export function mermaidBundlePath(): string {
  return createRequire(import.meta.url).resolve('mermaid/dist/mermaid.min.js');
}

/**
 * The script that draws the diagrams once the page loads. It marks `<body data-diagrams>` with
 * `rendered` or `error` (and `data-diagram-error` with the message), which the browser test reads.
 */
const RENDER_SCRIPT = `mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: 'default' });
mermaid.run({ querySelector: 'pre.mermaid' }).then(
  function () { document.body.dataset.diagrams = 'rendered'; },
  function (error) { document.body.dataset.diagrams = 'error'; document.body.dataset.diagramError = String((error && error.message) || error); }
);`;

const STYLE = `
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1.5rem; color: #1f2328; }
h1 { border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
h2 { border-bottom: 1px solid #eaeef2; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; border-radius: 6px; }
pre.mermaid { background: #fff; text-align: center; border: 1px solid #eaeef2; }
blockquote { color: #59636e; border-left: .25em solid #d0d7de; margin: 0; padding: 0 1em; }
`;

/**
 * Renders the report's Markdown as a single HTML page that needs nothing from the network.
 *
 * Mermaid code blocks become `<pre class="mermaid">` drawn by the Mermaid bundle inlined in the
 * page (about 3.5 MB). Agent text is not trusted: raw HTML in it is shown as text, links other
 * than http(s), mailto, relative or `#` ones are dropped, and a Content-Security-Policy lets only
 * the page's own two scripts run (by hash) and forbids every network fetch.
 *
 * @param markdown - the report (see `renderReport`).
 * @param title - the page title.
 * @param bundle - the Mermaid bundle's source; default read from {@link mermaidBundlePath}.
 * @returns the HTML text.
 * @throws when the `mermaid` package is not installed (run `npm ci` in the skill folder).
 */
export async function renderReportHtml(markdown: string, title: string, bundle?: string): Promise<string> {
  const mermaidSource = safeInlineScript(bundle ?? (await readFile(mermaidBundlePath(), 'utf8')));
  const body = markdownToHtml(markdown);
  const hashes = [mermaidSource, RENDER_SCRIPT].map((script) => `'sha256-${createHash('sha256').update(script, 'utf8').digest('base64')}'`);
  const csp = `default-src 'none'; script-src ${hashes.join(' ')}; style-src 'unsafe-inline'; img-src data:; font-src data:`;
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${csp}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body data-diagrams="pending">',
    body,
    `<script>${mermaidSource}</script>`,
    `<script>${RENDER_SCRIPT}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** Markdown to HTML with the report's rules: mermaid blocks for the bundle, raw HTML escaped, unsafe links dropped. */
export function markdownToHtml(markdown: string): string {
  const marked = new Marked({ gfm: true, async: false });
  marked.use({
    renderer: {
      code({ text, lang }: Tokens.Code) {
        if (lang?.trim() === 'mermaid') return `<pre class="mermaid">${escapeHtml(text)}</pre>\n`;
        return false;
      },
      html({ text }: Tokens.HTML | Tokens.Tag) {
        return escapeHtml(text);
      },
      link({ href, title, tokens }: Tokens.Link) {
        const inner = this.parser.parseInline(tokens);
        if (!isSafeUrl(href)) return inner;
        return `<a href="${escapeHtml(href)}"${title ? ` title="${escapeHtml(title)}"` : ''}>${inner}</a>`;
      },
      image({ text }: Tokens.Image) {
        return escapeHtml(text);
      },
    },
  });
  return marked.parse(markdown, { async: false });
}

/** Links the page keeps: http(s), mailto, fragment and relative ones (result files). */
function isSafeUrl(href: string): boolean {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(href.trim());
  return scheme === null || ['http', 'https', 'mailto'].includes(scheme[1]!.toLowerCase());
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/**
 * Makes a script safe to put between `<script>` tags: `<!--`, `<script` and `</script` (which only
 * occur inside string and regex literals of a bundle) are written with `\x3C`, which means the same
 * to JavaScript but cannot end or confuse the HTML script element.
 */
function safeInlineScript(source: string): string {
  return source.replace(/<(!--|\/?script)/gi, '\\x3C$1');
}
