// GitHub-flavoured Markdown tables: found with marked's lexer, split into cells as GFM does, and edited one cell at a time, byte for byte elsewhere.
import { Lexer, type Token, type Tokens } from 'marked';

/** A line of a document: its text without the line break, and the break itself (`\n`, `\r\n`, `\r` or `''` at the end). */
export interface DocumentLine {
  text: string;
  eol: string;
}

/** Splits a document into lines, keeping each line break so that joining them gives the text back. */
export function splitLines(text: string): DocumentLine[] {
  const lines: DocumentLine[] = [];
  const re = /\r\n|\r|\n/g;
  let start = 0;
  for (let match = re.exec(text); match; match = re.exec(text)) {
    lines.push({ text: text.slice(start, match.index), eol: match[0] });
    start = match.index + match[0].length;
  }
  lines.push({ text: text.slice(start), eol: '' });
  return lines;
}

/** Joins lines made by {@link splitLines}. */
export function joinLines(lines: readonly DocumentLine[]): string {
  return lines.map((line) => line.text + line.eol).join('');
}

/** A GFM table of a document. Line numbers are 0-based indexes into {@link splitLines}. */
export interface MarkdownTable {
  /** The header line. */
  start: number;
  /** The delimiter line (`|---|:--:|`), always `start + 1`. */
  delimiter: number;
  /** Header cell texts (trimmed, `\|` unescaped). */
  header: string[];
  /** Data rows: their line and the cells actually written on it (not padded or cut to the header's count). */
  rows: Array<{ line: number; cells: string[] }>;
}

/**
 * Where each cell of a table row sits in the line: `[start, end)` of the text between its pipes
 * (spaces included). A pipe counts unless preceded by an odd number of backslashes, inside code
 * spans too, as in GFM (spec 0.29, "Tables (extension)") and marked's `splitCells`. A leading and a
 * trailing pipe are optional.
 */
export function cellSpans(line: string): Array<{ start: number; end: number }> {
  const pipes: number[] = [];
  for (let i = 0; i < line.length; i++) {
    if (line[i] !== '|') continue;
    let slashes = 0;
    for (let j = i - 1; j >= 0 && line[j] === '\\'; j--) slashes++;
    if (slashes % 2 === 0) pipes.push(i);
  }
  const bounds = [-1, ...pipes, line.length];
  const spans: Array<{ start: number; end: number }> = [];
  for (let k = 0; k + 1 < bounds.length; k++) spans.push({ start: bounds[k]! + 1, end: bounds[k + 1]! });
  // GFM drops an empty first cell (a leading pipe) and an empty last cell (a trailing pipe).
  if (spans.length > 1 && line.slice(spans[0]!.start, spans[0]!.end).trim() === '' && pipes.length > 0) spans.shift();
  const last = spans[spans.length - 1];
  if (spans.length > 1 && last && line.slice(last.start, last.end).trim() === '' && pipes.includes(last.start - 1)) spans.pop();
  return spans;
}

/** The cells of a table row as GFM reads them: trimmed, `\|` unescaped, as many as the line has. */
export function splitCells(line: string): string[] {
  return cellSpans(line).map(({ start, end }) => line.slice(start, end).trim().replace(/\\\|/g, '|'));
}

/** Escapes a cell's text for a table: pipes as `\|`, line breaks as spaces. */
export function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
}

/**
 * Replaces the text of one cell, keeping everything else of the line byte for byte, including
 * the spaces around the cell's text. Returns the line unchanged when the cell does not exist or
 * already holds `text`.
 */
export function replaceCell(line: string, index: number, text: string): string {
  const span = cellSpans(line)[index];
  if (!span) return line;
  const inner = line.slice(span.start, span.end);
  if (inner.trim().replace(/\\\|/g, '|') === text) return line;
  const lead = /^\s*/.exec(inner)![0];
  const trail = inner.trim() === '' ? ' ' : /\s*$/.exec(inner)![0];
  return `${line.slice(0, span.start)}${lead || ' '}${escapeCell(text)}${trail || ' '}${line.slice(span.end)}`;
}

/** Adds a cell at the end of a row, keeping the row's style (closing pipe or not) and its trailing spaces. */
export function appendCell(line: string, text: string): string {
  const body = line.trimEnd();
  const rest = line.slice(body.length);
  const closed = body.endsWith('|') && !/(^|[^\\])(\\\\)*\\\|$/.test(body);
  return closed ? `${body} ${escapeCell(text)} |${rest}` : `${body} | ${escapeCell(text)}${rest}`;
}

/**
 * Finds the GFM tables at the top level of a document with marked's lexer (so a table in a fenced
 * code block is not one, and rows without a leading pipe belong to their table, as on GitHub).
 * Each row keeps the cells written on its line: marked pads or cuts rows to the header's width,
 * so a row with a missing or extra cell is told apart here.
 */
export function findTables(text: string): MarkdownTable[] {
  const normalised = text.replace(/\r\n|\r/g, '\n');
  // Block tokens only: the cells' inline tokens (emphasis, code spans...) are not needed here, and
  // lexing them is most of the work for a 5,000-row table.
  const tokens: Token[] = new Lexer({ gfm: true }).blockTokens(normalised);
  const tables: MarkdownTable[] = [];
  let offset = 0;
  let line = 0;
  for (const token of tokens) {
    let at = normalised.startsWith(token.raw, offset) ? offset : normalised.indexOf(token.raw, offset);
    if (at === -1) at = offset;
    line += countLines(normalised, offset, at);
    if (token.type === 'table') tables.push(tableAt(normalised, token as Tokens.Table, at, line));
    line += countLines(normalised, at, at + token.raw.length);
    offset = at + token.raw.length;
  }
  return tables;
}

function countLines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function tableAt(text: string, token: Tokens.Table, at: number, start: number): MarkdownTable {
  const rawLines = text.slice(at, at + token.raw.length).split('\n');
  const rows: MarkdownTable['rows'] = [];
  // marked's rows are the lines after the delimiter up to the first blank one, one row per line.
  for (let i = 0; i < token.rows.length; i++) {
    const raw = rawLines[2 + i] ?? '';
    rows.push({ line: start + 2 + i, cells: splitCells(raw) });
  }
  return { start, delimiter: start + 1, header: splitCells(rawLines[0] ?? ''), rows };
}
