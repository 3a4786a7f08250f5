// Ownership filters and custom masks are DBA-written SQL with `${…}`
// placeholders. They are scanned once at compile time (a small lexer that
// follows PostgreSQL's rules for strings, quoted names, dollar quotes and
// comments) so that binding later is plain concatenation, and so that a
// filter cannot change meaning depending on what a user's session sets:
//  - a placeholder must stand where an expression may (not inside a string,
//    quoted name or comment, where a bound literal would end the quote);
//  - comments are dropped (a trailing `--` would swallow the `)` pgveil adds);
//  - parentheses must balance and no `;` may appear (`x) OR (true` would
//    escape the parentheses around each filter);
//  - a backslash inside a plain '…' string is refused: its meaning depends on
//    standard_conforming_strings, which the user controls. E'…' and $$…$$ are fine.
import { userPlaceholder } from '../config/placeholders.js';

export interface Template {
  /** Source pieces around the placeholders, comments removed; `parts.length === slots.length + 1`. */
  parts: string[];
  /** Placeholder names in order: `user.org`, `user.attributes.region`, `column` … */
  slots: string[];
}

const identChar = /[A-Za-z0-9_$\u0080-\uFFFF]/;
const dollarTag = /^\$(?:[A-Za-z_\u0080-\uFFFF][A-Za-z0-9_\u0080-\uFFFF]*)?\$/;

/** Scans `text`; `column` admits `${column}` (custom masks). Returns the template or the problems found. */
export function parseTemplate(text: string, opts: { column: boolean }): { template?: Template; problems: string[] } {
  const problems: string[] = [];
  const parts: string[] = [];
  const slots: string[] = [];
  let piece = '';
  let depth = 0;
  let i = 0;
  const at = (n: number) => `at character ${n + 1}`;
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1] ?? '';
    const prevIdent = i > 0 && identChar.test(text[i - 1]);
    if (c === '-' && next === '-') {
      // PostgreSQL ends a `--` comment at \r as at \n: what follows a \r is live SQL.
      let end = i + 2;
      while (end < text.length && text[end] !== '\n' && text[end] !== '\r') end++;
      i = end;
      piece += ' ';
    } else if (c === '/' && next === '*') {
      const end = blockCommentEnd(text, i);
      if (end === -1) { problems.push(`unterminated /* comment ${at(i)}`); break; }
      i = end;
      piece += ' ';
    } else if (c === "'") {
      // E'…' escape strings take backslashes in every setting; U&'…' fails closed when they are off.
      const prefix = stringPrefix(text, i);
      const end = quoteEnd(text, i, "'", prefix === 'E');
      if (end === -1) { problems.push(`unterminated string ${at(i)}`); break; }
      const body = text.slice(i, end);
      if (prefix === '' && body.includes('\\')) {
        problems.push(`backslash in the string ${at(i)}: its meaning depends on standard_conforming_strings; write E'…' or $$…$$`);
      }
      if (body.includes('${')) problems.push(`placeholder inside a string ${at(i)}: write it bare, it is inserted as a quoted literal`);
      piece += body;
      i = end;
    } else if (c === '"') {
      const end = quoteEnd(text, i, '"', false);
      if (end === -1) { problems.push(`unterminated quoted name ${at(i)}`); break; }
      const body = text.slice(i, end);
      if (body.includes('${')) problems.push(`placeholder inside a quoted name ${at(i)}`);
      piece += body;
      i = end;
    } else if (c === '$' && next === '{') {
      const end = text.indexOf('}', i);
      if (end === -1) { problems.push(`unclosed placeholder ${at(i)}`); break; }
      const name = text.slice(i + 2, end);
      if (!(userPlaceholder.test(name) || (opts.column && name === 'column'))) problems.push(`unknown placeholder \${${name}} ${at(i)}`);
      if (prevIdent) problems.push(`placeholder \${${name}} ${at(i)} follows a name directly: put a space or an operator before it`);
      parts.push(piece);
      slots.push(name);
      piece = '';
      i = end + 1;
    } else if (c === '$' && !prevIdent && dollarTag.test(text.slice(i))) {
      const tag = dollarTag.exec(text.slice(i))![0];
      const close = text.indexOf(tag, i + tag.length);
      if (close === -1) { problems.push(`unterminated ${tag} quote ${at(i)}`); break; }
      const body = text.slice(i, close + tag.length);
      if (body.slice(tag.length, -tag.length).includes('${')) problems.push(`placeholder inside a ${tag} quote ${at(i)}`);
      piece += body;
      i = close + tag.length;
    } else {
      if (c === ';') problems.push(`";" ${at(i)}: a filter or mask is one expression`);
      if (c === '(') depth++;
      if (c === ')' && --depth < 0) { problems.push(`unbalanced ")" ${at(i)}`); depth = 0; }
      piece += c;
      i++;
    }
  }
  if (depth > 0) problems.push(`${depth} unclosed "("`);
  parts.push(piece);
  if (parts.join('').trim() === '' && slots.length === 0) problems.push('empty expression');
  return problems.length ? { problems } : { template: { parts, slots }, problems };
}

/** `E`, `U&`, or '' for a plain string (B'…', X'…' and N'…' read like plain ones). */
function stringPrefix(text: string, quote: number): 'E' | 'U&' | '' {
  const before = (n: number) => (quote - n - 1 < 0 || !identChar.test(text[quote - n - 1]));
  if ((text[quote - 1] === 'E' || text[quote - 1] === 'e') && before(1)) return 'E';
  if (text[quote - 1] === '&' && (text[quote - 2] === 'U' || text[quote - 2] === 'u') && before(2)) return 'U&';
  return '';
}

/** Index just past the closing quote (doubled quotes stay inside; with `backslash`, `\x` too), or -1. */
function quoteEnd(text: string, open: number, q: string, backslash: boolean): number {
  for (let i = open + 1; i < text.length; i++) {
    if (backslash && text[i] === '\\') { i++; continue; }
    if (text[i] !== q) continue;
    if (text[i + 1] === q) { i++; continue; }
    return i + 1;
  }
  return -1;
}

/** Block comments nest in PostgreSQL. */
function blockCommentEnd(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length - 1; i++) {
    if (text[i] === '/' && text[i + 1] === '*') { depth++; i++; } else if (text[i] === '*' && text[i + 1] === '/') {
      depth--;
      i++;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/**
 * Fills the slots: `value(slot)` returns the SQL text of a bound slot, or
 * undefined when it cannot be bound. `${column}` slots are kept as cut points,
 * so the result is the list of pieces between them (one piece when there are none).
 */
export function bindTemplate(t: Template, value: (slot: string) => string | undefined): string[] | undefined {
  const pieces: string[] = [];
  let current = t.parts[0];
  for (let k = 0; k < t.slots.length; k++) {
    if (t.slots[k] === 'column') {
      pieces.push(current);
      current = t.parts[k + 1];
      continue;
    }
    const bound = value(t.slots[k]);
    if (bound === undefined) return undefined;
    current += bound + t.parts[k + 1];
  }
  pieces.push(current);
  return pieces;
}
