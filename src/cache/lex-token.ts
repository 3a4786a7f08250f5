// One token of PostgreSQL's lexer (scan.l, PG 16–18 rules): where it ends and
// what it is. The shape scanner and the splicer's helpers (rewrite/sql-text.ts)
// both read SQL through this, so they cannot disagree with each other about a
// comment's end or a literal's span; test/cache/lex.test.ts holds it to
// libpg-query's scanner.
import {
  NOT_STRING, blockCommentEnd, dollarEnd, identEnd, identQuotedEnd, identStart, isDigit, lineEnd, quotedEnd, resumeAt,
} from './lex.js';
import { eStringEnd } from './lex-e-string.js';
import { numberEnd, numberIsFloat } from './lex-number.js';

export const enum Token {
  /** Unquoted identifier or keyword (also the N of N'…'). */
  Ident = 1,
  Quoted, // "…"
  UnicodeIdent, // U&"…" (a UESCAPE after it is separate tokens, as in scan.l)
  String, // '…'
  EString, // E'…'
  UnicodeString, // U&'…'
  Bits, // B'…'
  Hex, // X'…'
  Dollar, // $tag$…$tag$
  Integer, // fits int32: ICONST
  Float, // FCONST: decimal point, exponent, or too big for int32
  Param, // $n
  /** Multi-character operators, including :: .. := => <= >= <> != */
  Operator,
  /** One character: punctuation, a one-character operator, or one scan.l has no rule for. */
  Char,
  LineComment,
  BlockComment,
}

/** Set by tokenEnd: the kind of the token it ended. */
export let tokenKind: Token = Token.Char;

/** scan.l's {space}: ' ', \t, \n, \v, \f, \r. */
export const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);

// scan.l's op_chars, and those of them SQL's own operators lack (which let a
// multi-character operator end in + or -).
const OP_CHAR = new Uint8Array(128);
for (const ch of '~!@#^&|`?+-*/%<>=') OP_CHAR[ch.charCodeAt(0)] = 1;
const NON_SQL_OP = new Uint8Array(128);
for (const ch of '~!@#^&|`?%') NON_SQL_OP[ch.charCodeAt(0)] = 1;

// What a character at the start of a token begins: a table, so the dispatch
// is one indexed load and a dense switch of calls, small enough to inline.
const enum Start { Char, Word, Digit, Quote, DQuote, Dollar, Minus, Slash, Operator, Dot, Colon }
const START = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  if (identStart(c)) START[c] = Start.Word;
  else if (isDigit(c)) START[c] = Start.Digit;
  else if (OP_CHAR[c] === 1) START[c] = Start.Operator;
}
START[39] = Start.Quote;
START[34] = Start.DQuote;
START[36] = Start.Dollar;
START[45] = Start.Minus;
START[47] = Start.Slash;
START[46] = Start.Dot;
START[58] = Start.Colon;

/**
 * For hot loops that look only for literals, names and comments (the shape
 * scanner): Skip when the character starts none of them — whitespace,
 * punctuation, and operator characters but '-' and '/' (scan.l cuts every
 * operator before an embedded -- or /*, so stepping over operators one
 * character at a time finds the same comments) — Word when it starts an
 * identifier that is no literal's prefix (it ends at identEnd(sql, i + 1,
 * n)), Other when only tokenEnd can tell. Characters ≥ 128 are Word.
 */
export const enum Quick { Other, Skip, Word }
export const QUICK = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const start = START[c];
  if (isSpace(c) || start === Start.Char || start === Start.Operator || start === Start.Colon) QUICK[c] = Quick.Skip;
  else if (start === Start.Word && !/[bBxXeEuU]/.test(String.fromCharCode(c))) QUICK[c] = Quick.Word;
}

/**
 * The end of the token starting at `i` (which must not be whitespace), or
 * FAIL on a lexical error PostgreSQL raises (unterminated literal or
 * comment, junk after a number, a bad escape in E'…', …). Sets tokenKind.
 */
export function tokenEnd(sql: string, i: number, n: number): number {
  const c = sql.charCodeAt(i);
  switch (c < 128 ? START[c] : Start.Word) {
    case Start.Word: return wordEnd(sql, i, n, c | 0x20);
    case Start.Digit: return numericEnd(sql, i, n);
    case Start.Char: return single(Token.Char, i + 1);
    case Start.Quote: return single(Token.String, quotedEnd(sql, i + 1, n, true));
    case Start.DQuote: return single(Token.Quoted, identQuotedEnd(sql, i + 1, n));
    case Start.Dollar: return dollarTokenEnd(sql, i, n);
    case Start.Minus: return sql.charCodeAt(i + 1) === 45 ? single(Token.LineComment, lineEnd(sql, i + 2, n)) : operatorEnd(sql, i, n);
    case Start.Slash: return sql.charCodeAt(i + 1) === 42 ? single(Token.BlockComment, blockCommentEnd(sql, i + 2, n)) : operatorEnd(sql, i, n);
    case Start.Operator: return operatorEnd(sql, i, n);
    case Start.Dot: return dotEnd(sql, i, n);
    default: return colonEnd(sql, i);
  }
}

function single(kind: Token, end: number): number {
  tokenKind = kind;
  return end;
}

function numericEnd(sql: string, i: number, n: number): number {
  const end = numberEnd(sql, i, n);
  tokenKind = numberIsFloat ? Token.Float : Token.Integer;
  return end;
}

/** `$n`, `$tag$…$tag$`, or a lone '$' ({dolqfailed}). */
function dollarTokenEnd(sql: string, i: number, n: number): number {
  const end = dollarEnd(sql, i, n);
  if (end !== NOT_STRING) return single(Token.Dollar, end);
  return single(resumeAt > i + 1 ? Token.Param : Token.Char, resumeAt);
}

/** `.5` is a number and `..` one token, so `..5` is `..` then 5. */
function dotEnd(sql: string, i: number, n: number): number {
  const next = sql.charCodeAt(i + 1);
  if (isDigit(next)) return numericEnd(sql, i, n);
  return next === 46 ? single(Token.Operator, i + 2) : single(Token.Char, i + 1);
}

/** `::`, `:=` or ':'. */
function colonEnd(sql: string, i: number): number {
  const next = sql.charCodeAt(i + 1);
  return next === 58 || next === 61 ? single(Token.Operator, i + 2) : single(Token.Char, i + 1);
}

/** Identifiers, and the literals whose prefix letter would start one: B'…', X'…', E'…', U&'…', U&"…". */
function wordEnd(sql: string, i: number, n: number, lower: number): number {
  const next = sql.charCodeAt(i + 1);
  if (next === 39) {
    if (lower === 98) return single(Token.Bits, quotedEnd(sql, i + 2, n, false)); // b
    if (lower === 120) return single(Token.Hex, quotedEnd(sql, i + 2, n, false)); // x
    if (lower === 101) return single(Token.EString, eStringEnd(sql, i + 2, n)); // e
  } else if (lower === 117 && next === 38) { // u&
    const q = sql.charCodeAt(i + 2);
    if (q === 39) return single(Token.UnicodeString, quotedEnd(sql, i + 3, n, true));
    if (q === 34) return single(Token.UnicodeIdent, identQuotedEnd(sql, i + 3, n));
  }
  // N'…' needs no case: the identifier stops at the quote, which then starts
  // an ordinary string, exactly as scan.l's {xnstart} does.
  return single(Token.Ident, identEnd(sql, i + 1, n));
}

/**
 * scan.l's {operator}: a run of operator characters, cut before an embedded
 * comment start, and without trailing + or - unless the operator holds a
 * character SQL's own operators lack ('=-' is '=' then '-'; '@-' is one).
 */
function operatorEnd(sql: string, i: number, n: number): number {
  let j = i + 1;
  while (j < n) {
    const c = sql.charCodeAt(j);
    if (c >= 128 || OP_CHAR[c] !== 1) break;
    const d = sql.charCodeAt(j + 1);
    if ((c === 47 && d === 42) || (c === 45 && d === 45)) break; // /* or --
    j++;
  }
  const last = sql.charCodeAt(j - 1);
  if (j - i > 1 && (last === 43 || last === 45)) {
    let k = j - 2;
    while (k >= i && NON_SQL_OP[sql.charCodeAt(k)] !== 1) k--;
    if (k < i) {
      do j--;
      while (j - i > 1 && (sql.charCodeAt(j - 1) === 43 || sql.charCodeAt(j - 1) === 45));
    }
  }
  return single(j - i > 1 ? Token.Operator : Token.Char, j);
}

