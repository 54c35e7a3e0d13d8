// A fast reader and writer for the block-YAML subset the state file is written in; anything else goes to the yaml package.
//
// Why: the yaml package takes ~0.6 ms per task to parse and ~0.3 ms to stringify (24 ms and 13 ms
// for a 40-task state on the benchmark machine), and every state change is a read and a write under
// the lock, while every waiting agent re-reads the file after each change. This codec does both in
// a few microseconds per task. It writes ordinary block YAML (the same text the yaml package writes
// for plain values), and reads back only lines of exactly the shapes it writes; a file with anything
// else (comments, anchors, flow collections, folded lines, other quoting: a hand edit) is parsed by
// the yaml package, so every valid YAML file is still read as YAML reads it.
import { isPlainObject } from './constants.ts';

/**
 * Scalars the core schema (YAML 1.2) reads as something other than a string, so they must be
 * quoted when they are strings. Regexes from yaml 2.x's core schema (null, bool, int, float).
 */
const CORE_NON_STRING = [
  /^(?:~|[Nn]ull|NULL)?$/,
  /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/,
  /^0o[0-7]+$/,
  /^[-+]?[0-9]+$/,
  /^0x[0-9a-fA-F]+$/,
  /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/,
];

/** Characters written as escapes, never raw: controls, DEL and C1, line/paragraph separators, BOM, non-characters. */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE_CHAR = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/;
const UNPRINTABLE_GLOBAL = /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g;
const SURROGATE = /[\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Also written as escapes: surrogates without their other half. */
function hasUnprintable(value: string): boolean {
  return UNPRINTABLE_CHAR.test(value) || (SURROGATE.test(value) && LONE_SURROGATE.test(value));
}
/** Characters that may not start a plain scalar (YAML indicators), '-' aside (see {@link isPlainString}). */
const INDICATOR_START = /^[?:,[\]{}#&*!|>'"%@`]/;
const PLAIN_KEY = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$/;
const QUOTED = /^"(?:[^"\\]|\\.)*"$/;
/** Shortcuts for the commonest values, each a subset of what the full rules call plain. */
const SIMPLE_PLAIN = /^[A-Za-z_/][\w./@+=-]*$/;
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/;
const RESERVED_WORDS = new Set(['null', 'Null', 'NULL', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE']);

/**
 * Tells whether a string can be written as a plain (unquoted) scalar and read back as the same
 * string: printable, no surrounding spaces, no indicator first, no `: ` or ` #`, not a document
 * marker, and not something the core schema reads as null, a boolean or a number.
 */
export function isPlainString(value: string): boolean {
  // A letter, "_" or "/" first and only word characters and ./@+=- after: plain unless a reserved word.
  if (SIMPLE_PLAIN.test(value)) return !RESERVED_WORDS.has(value);
  if (ISO_TIME.test(value)) return true;
  if (value === '' || value.trim() !== value || hasUnprintable(value)) return false;
  if (INDICATOR_START.test(value) || (value[0] === '-' && (value.length === 1 || value[1] === ' '))) return false;
  if (value.includes(': ') || value.endsWith(':') || value.includes(' #') || value.includes('\t')) return false;
  if (value.startsWith('---') || value.startsWith('...')) return false;
  return !CORE_NON_STRING.some((pattern) => pattern.test(value));
}

/** A double-quoted scalar: JSON's escapes, which YAML reads the same, plus \uXXXX for what YAML may not hold raw. */
function quote(value: string): string {
  return JSON.stringify(value).replace(UNPRINTABLE_GLOBAL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A literal block (`|-`) keeps multi-line text readable; only for text it round-trips exactly. */
function literalLines(value: string): string[] | null {
  if (!value.includes('\n') || value.endsWith('\n') || value.includes('\r') || /^[ \t]/.test(value)) return null;
  const lines = value.split('\n');
  if (lines.some((line) => hasUnprintable(line) || line.includes('\t') || (line !== '' && line.trim() === ''))) return null;
  if (lines[0] === '') return null;
  return lines;
}

function scalar(value: unknown): string | undefined {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return Number.isFinite(value) ? (Object.is(value, -0) ? '-0' : String(value)) : undefined;
  if (typeof value === 'string') return isPlainString(value) ? value : quote(value);
  return undefined;
}

/** Keys repeat (field names, task names): remember how each is written, for the few hundred seen last. */
const keyText = new Map<string, string>();
function key(name: string): string {
  let text = keyText.get(name);
  if (text === undefined) {
    text = PLAIN_KEY.test(name) && isPlainString(name) ? name : quote(name);
    if (keyText.size > 512) keyText.clear();
    keyText.set(name, text);
  }
  return text;
}

/** Writes a mapping's entries at `indent` spaces; false when a value is outside the subset. */
function writeMap(map: Record<string, unknown>, indent: number, out: string[]): boolean {
  const pad = ' '.repeat(indent);
  for (const [name, value] of Object.entries(map)) {
    if (value === undefined) continue;
    if (name === '__proto__') return false;
    const head = `${pad}${key(name)}:`;
    if (Array.isArray(value)) {
      if (value.length === 0) {
        out.push(`${head} []`);
        continue;
      }
      out.push(head);
      for (const item of value) {
        const text = scalar(item);
        if (text === undefined) return false;
        out.push(`${pad}  - ${text}`);
      }
    } else if (isPlainObject(value)) {
      if (Object.keys(value).every((k) => value[k] === undefined)) {
        out.push(`${head} {}`);
        continue;
      }
      out.push(head);
      if (!writeMap(value, indent + 2, out)) return false;
    } else if (typeof value === 'string' && !isPlainString(value) && literalLines(value)) {
      out.push(`${head} |-`);
      for (const line of literalLines(value)!) out.push(line === '' ? '' : `${pad}  ${line}`);
    } else {
      const text = scalar(value);
      if (text === undefined) return false;
      out.push(`${head} ${text}`);
    }
  }
  return true;
}

/**
 * Writes plain data (mappings, lists of scalars, strings, finite numbers, booleans, null) as block
 * YAML that {@link parseFastYaml} reads back.
 * @returns the text, or `undefined` when the data is outside that subset (use the yaml package).
 */
export function stringifyFastYaml(data: unknown): string | undefined {
  if (!isPlainObject(data)) return undefined;
  const out: string[] = [];
  if (!writeMap(data, 0, out)) return undefined;
  return out.length === 0 ? '{}\n' : `${out.join('\n')}\n`;
}

/** Thrown inside the parser when a line is not one {@link stringifyFastYaml} writes. */
class NotFast extends Error {}

function readScalar(text: string): unknown {
  const first = text.charCodeAt(0);
  if (first === 110 /* n */ && text === 'null') return null;
  if (first === 116 /* t */ && text === 'true') return true;
  if (first === 102 /* f */ && text === 'false') return false;
  if (((first >= 48 && first <= 57) || first === 45) /* digit, - */ && NUMBER.test(text)) return Number(text);
  if (first === 34 /* " */) {
    if (!QUOTED.test(text) || hasUnprintable(text.replace(/\\u[0-9a-fA-F]{4}/g, ''))) throw new NotFast();
    try {
      return JSON.parse(text) as string;
    } catch {
      throw new NotFast();
    }
  }
  if (isPlainString(text)) return text;
  throw new NotFast();
}

/** Plain keys already checked (field names, task names). */
const plainKeys = new Set<string>();
function readKey(text: string): string {
  if (text[0] === '"') {
    const name = readScalar(text);
    if (typeof name !== 'string') throw new NotFast();
    return name;
  }
  if (plainKeys.has(text)) return text;
  if (!PLAIN_KEY.test(text) || !isPlainString(text)) throw new NotFast();
  if (plainKeys.size > 512) plainKeys.clear();
  plainKeys.add(text);
  return text;
}

function indentOf(line: string): number {
  let n = 0;
  while (line.charCodeAt(n) === 32) n++;
  return n;
}

/** Splits `key: rest` (key plain or double-quoted). */
function splitEntry(body: string): [string, string | null] {
  let end: number;
  if (body[0] === '"') {
    const match = /^"(?:[^"\\]|\\.)*"/.exec(body);
    if (!match) throw new NotFast();
    end = match[0].length;
    if (body[end] !== ':') throw new NotFast();
  } else {
    end = body.indexOf(':');
    if (end <= 0) throw new NotFast();
  }
  const rest = body.slice(end + 1);
  if (rest === '') return [body.slice(0, end), null];
  if (rest[0] !== ' ' || rest.length < 2 || rest[1] === ' ') throw new NotFast();
  return [body.slice(0, end), rest.slice(1)];
}

class Reader {
  private i = 0;
  constructor(private readonly lines: string[]) {}

  document(): Record<string, unknown> {
    const map = this.map(0);
    if (this.i !== this.lines.length) throw new NotFast();
    return map;
  }

  private map(indent: number): Record<string, unknown> {
    const map: Record<string, unknown> = {};
    let entries = 0;
    while (this.i < this.lines.length) {
      const line = this.lines[this.i]!;
      const at = indentOf(line);
      if (at < indent) break;
      if (at > indent || line.length === at) throw new NotFast();
      const [rawKey, rest] = splitEntry(line.slice(at));
      const name = readKey(rawKey);
      if (name === '__proto__' || Object.prototype.hasOwnProperty.call(map, name)) throw new NotFast();
      this.i++;
      map[name] = rest === null ? this.nested(indent + 2) : rest === '|-' ? this.literal(indent + 2) : this.inline(rest);
      entries++;
    }
    if (entries === 0) throw new NotFast();
    return map;
  }

  private inline(text: string): unknown {
    if (text === '[]') return [];
    if (text === '{}') return {};
    return readScalar(text);
  }

  private nested(indent: number): unknown {
    const line = this.lines[this.i];
    if (line === undefined || indentOf(line) !== indent) throw new NotFast();
    return line.startsWith('- ', indent) ? this.list(indent) : this.map(indent);
  }

  private list(indent: number): unknown[] {
    const items: unknown[] = [];
    while (this.i < this.lines.length) {
      const line = this.lines[this.i]!;
      const at = indentOf(line);
      if (at < indent) break;
      if (at > indent || !line.startsWith('- ', at)) throw new NotFast();
      const text = line.slice(at + 2);
      if (text === '' || text[0] === ' ' || text === '[]' || text === '{}' || text === '|-') throw new NotFast();
      items.push(readScalar(text));
      this.i++;
    }
    return items;
  }

  private literal(indent: number): string {
    const out: string[] = [];
    while (this.i < this.lines.length) {
      const line = this.lines[this.i]!;
      if (line === '') {
        out.push('');
        this.i++;
        continue;
      }
      const at = indentOf(line);
      if (at < indent) break;
      if (at > indent && out.length === 0) throw new NotFast();
      const text = line.slice(indent);
      if (hasUnprintable(text) || text.includes('\t') || text.trim() === '') throw new NotFast();
      out.push(text);
      this.i++;
    }
    // Strip chomping drops trailing empty lines; the writer never ends a block with one.
    if (out.length < 2 || out[0] === '' || out[out.length - 1] === '') throw new NotFast();
    return out.join('\n');
  }
}

/**
 * Reads text written by {@link stringifyFastYaml}.
 * @returns the data, or `undefined` when any line is not in that exact subset (use the yaml package,
 *   which also reports real syntax errors).
 */
export function parseFastYaml(text: string): unknown {
  if (!text.endsWith('\n') || text.includes('\r') || text.includes('\t')) return undefined;
  try {
    return new Reader(text.slice(0, -1).split('\n')).document();
  } catch (error) {
    if (error instanceof NotFast) return undefined;
    throw error;
  }
}
