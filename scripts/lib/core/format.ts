// Small text formatters shared by poll-session and aggregate: durations, counts, money, tokens, plain tables.
import stringWidth from 'string-width';

/** `1 task`, `3 tasks`, `2 batches`: a count and its noun, plural (default: the noun and `s`) unless the count is 1. */
export function countOf(count: number, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : plural}`;
}

/** Formats milliseconds as `850 ms`, `3.2 s`, `4 m 05 s` or `1 h 02 m`; null as `-`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 3600) return `${Math.floor(totalSeconds / 60)} m ${String(totalSeconds % 60).padStart(2, '0')} s`;
  return `${Math.floor(totalSeconds / 3600)} h ${String(Math.floor((totalSeconds % 3600) / 60)).padStart(2, '0')} m`;
}

/** Renders rows as a plain-text table with a header rule, columns padded to their widest cell. */
export function renderTextTable(header: string[], rows: string[][]): string {
  const widths = header.map((cell, i) => Math.max(displayWidth(cell), ...rows.map((row) => displayWidth(row[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell + ' '.repeat(widths[i]! - displayWidth(cell)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Renders rows as a Markdown table; `|` in cells is escaped. */
export function renderMarkdownTable(header: string[], rows: string[][]): string {
  const esc = (cell: string) => cell.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(esc).join(' | ')} |`),
  ].join('\n');
}

/** Terminal width of a string (string-width: East Asian wide characters and emoji count as two columns, ANSI codes as none). */
export function displayWidth(text: string): number {
  return stringWidth(text);
}

let graphemes: Intl.Segmenter | undefined;
/** The grapheme segmenter, made when first needed: making one costs about 6 ms of CPU (ICU's data), which every agent start would pay. */
function segmenter(): Intl.Segmenter {
  graphemes ??= new Intl.Segmenter('en', { granularity: 'grapheme' });
  return graphemes;
}

/**
 * Cuts text to at most `width` terminal columns, ending with `…` when something was cut.
 * @param width - columns (see {@link displayWidth}); 0 or less gives ''.
 */
export function truncateToWidth(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  if (width <= 0) return '';
  let out = '';
  let used = 0;
  for (const { segment: char } of segmenter().segment(text)) {
    const w = displayWidth(char);
    if (used + w > width - 1) break;
    out += char;
    used += w;
  }
  return `${out}…`;
}

/**
 * Puts text on one line (each run of whitespace, newlines included, becomes one space) and cuts it
 * to at most `maxBytes` bytes of UTF-8, ending with `…` (3 bytes) when something was cut; never
 * splits a character.
 */
export function oneLineBytes(text: string, maxBytes: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (Buffer.byteLength(flat) <= maxBytes) return flat;
  let out = '';
  let used = 0;
  for (const char of flat) {
    const size = Buffer.byteLength(char);
    if (used + size > maxBytes - 3) break;
    out += char;
    used += size;
  }
  return maxBytes >= 3 ? `${out}…` : '';
}

/** Pads text with spaces to `width` columns (left-aligned, or right-aligned with `align: 'right'`). */
export function padToWidth(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const pad = ' '.repeat(Math.max(0, width - displayWidth(text)));
  return align === 'left' ? text + pad : pad + text;
}

/** Formats milliseconds as a clock, `mm:ss` or `h:mm:ss` (the seeds' "Time elapsed: 00:42"); null as `--:--`. */
export function formatClock(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '--:--';
  const total = Math.max(0, Math.floor(ms / 1000));
  const s = String(total % 60).padStart(2, '0');
  const m = Math.floor(total / 60) % 60;
  const h = Math.floor(total / 3600);
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${String(m).padStart(2, '0')}:${s}`;
}

/** Formats US dollars: `$0.0123` below one dollar, `$1.23` above; null as `-`. */
export function formatUsd(usd: number | null | undefined): string {
  if (usd === null || usd === undefined || !Number.isFinite(usd)) return '-';
  return usd < 1 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

/** Formats a token count: `950`, `12.3k`, `4.56M`; null as `-`. */
export function formatTokens(count: number | null | undefined): string {
  if (count === null || count === undefined || !Number.isFinite(count)) return '-';
  if (count < 1000) return String(Math.round(count));
  if (count < 1_000_000) return `${(count / 1000).toFixed(1)}k`;
  return `${(count / 1_000_000).toFixed(2)}M`;
}
