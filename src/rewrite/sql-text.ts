// The statement text as the splicer sees it: libpg-query reports node
// locations as UTF-8 byte offsets, JavaScript strings index UTF-16 code
// units. Most SQL is ASCII, where both agree and no table is built.
// Also the few lexical helpers the splicer needs to find where a name ends,
// built on the shape scanner's lexer (cache/lex-token.ts), which follows
// PostgreSQL's scan.l: both read a comment, a literal or a name alike.
import { FAIL, blockCommentEnd, identCont, lineEnd } from '../cache/lex.js';
import { Token, isSpace, tokenEnd, tokenKind } from '../cache/lex-token.js';

export class SqlText {
  private byteToChar?: Uint32Array;

  constructor(readonly text: string) {
    if (Buffer.byteLength(text, 'utf8') !== text.length) this.byteToChar = buildByteMap(text);
  }

  /** String index of a parser byte offset. */
  index(byteOffset: number): number {
    return this.byteToChar ? this.byteToChar[byteOffset] : byteOffset;
  }
}

function buildByteMap(text: string): Uint32Array {
  const map = new Uint32Array(Buffer.byteLength(text, 'utf8') + 1);
  let b = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.codePointAt(i) as number;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    for (let k = 0; k < size; k++) map[b + k] = i;
    b += size;
    if (code >= 0x10000) i++; // surrogate pair: one code point, two code units
  }
  map[b] = text.length;
  return map;
}

/** Skips whitespace and comments (`--` up to \n or \r, nested `/* *\/`) from `i`; an unterminated block comment runs to the end. */
export function skipSpace(sql: string, i: number): number {
  const n = sql.length;
  for (;;) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) { i++; continue; }
    const next = sql.charCodeAt(i + 1);
    if (c === 45 && next === 45) { i = lineEnd(sql, i + 2, n); continue; } // --
    if (c === 47 && next === 42) { // /*
      const end = blockCommentEnd(sql, i + 2, n);
      if (end === FAIL) return n;
      i = end;
      continue;
    }
    return i;
  }
}

/** End of one identifier (quoted or not, including U&"…" and its UESCAPE clause) starting at `i`; -1 if none starts there. */
export function identifierEnd(sql: string, i: number): number {
  const n = sql.length;
  if (!(i >= 0 && i < n) || isSpace(sql.charCodeAt(i))) return -1;
  const end = tokenEnd(sql, i, n);
  if (end === FAIL) return -1;
  if (tokenKind === Token.Ident || tokenKind === Token.Quoted) return end;
  if (tokenKind !== Token.UnicodeIdent) return -1;
  // A UESCAPE clause belongs to the identifier.
  const after = skipSpace(sql, end);
  if (after >= n || tokenEnd(sql, after, n) !== after + 7 || (tokenKind as Token) !== Token.Ident || sql.slice(after, after + 7).toLowerCase() !== 'uescape') return end;
  const q = skipSpace(sql, after + 7);
  if (q >= n) return end;
  const escapeEnd = tokenEnd(sql, q, n);
  return escapeEnd !== FAIL && (tokenKind as Token) === Token.String ? escapeEnd : end;
}

/** End of a dotted name of exactly `parts` identifiers starting at `i` (comments allowed around dots); -1 if the text does not match. */
export function qualifiedNameEnd(sql: string, i: number, parts: number): number {
  let end = identifierEnd(sql, i);
  for (let p = 1; p < parts && end !== -1; p++) {
    const dot = skipSpace(sql, end);
    if (sql.charCodeAt(dot) !== 46) return -1;
    end = identifierEnd(sql, skipSpace(sql, dot + 1));
  }
  return end;
}

/** Start of the keyword `word` that ends right before `i` (skipping whitespace and `(`), or -1. */
export function keywordBefore(sql: string, i: number, word: string): { start: number; parens: number } | undefined {
  let j = i - 1;
  let parens = 0;
  for (; j >= 0; j--) {
    const c = sql.charCodeAt(j);
    if (c === 40) { parens++; continue; }
    if (isSpace(c)) continue;
    break;
  }
  const start = j - word.length + 1;
  if (start < 0 || sql.slice(start, j + 1).toLowerCase() !== word) return undefined;
  if (start > 0 && identCont(sql.charCodeAt(start - 1))) return undefined;
  return { start, parens };
}

/** Index just past `count` closing parentheses after `i` (whitespace and comments skipped); -1 if they are not there. */
export function closeParens(sql: string, i: number, count: number): number {
  let j = i;
  for (let k = 0; k < count; k++) {
    j = skipSpace(sql, j);
    if (sql.charCodeAt(j) !== 41) return -1;
    j++;
  }
  return j;
}

/**
 * End of the constant or parameter token starting at `i`: a '…' or E'…'
 * string, a number, or `$n`; -1 for anything else (the caller then leaves the
 * predicate where it is).
 */
export function constantEnd(sql: string, i: number): number {
  const n = sql.length;
  if (!(i >= 0 && i < n) || isSpace(sql.charCodeAt(i))) return -1;
  const end = tokenEnd(sql, i, n);
  if (end === FAIL) return -1;
  switch (tokenKind) {
    case Token.String: case Token.EString: case Token.Integer: case Token.Float: case Token.Param:
      return end;
    default:
      return -1;
  }
}

/** Index just past the `)` matching the `(` at `open` (literals, quoted names and comments skipped); -1 if none. */
export function matchingParen(sql: string, open: number): number {
  const n = sql.length;
  let depth = 0;
  let i = open;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) { i++; continue; }
    const end = tokenEnd(sql, i, n);
    if (end === FAIL) return -1;
    // Parentheses are always tokens of their own.
    if (c === 40) depth++;
    else if (c === 41 && --depth === 0) return i + 1;
    i = end;
  }
  return -1;
}
