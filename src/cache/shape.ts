// The shape of a statement: its text with every constant cut out, found by a
// single-pass scanner that follows PostgreSQL's lexer (scan.l, PG 16–18 rules)
// without parsing. Statements that differ only in constants share a shape, so
// a simple-protocol client's `WHERE aid = 48213` hits one cache entry for
// every aid (docs/architecture.md: the cache step of the Query walk).
//
// Soundness rests on two properties:
// - the key keeps every character outside constants verbatim and puts a
//   marker (NUL + kind letter) where a constant was. NUL never occurs in SQL
//   text (the wire protocol's strings are NUL-terminated; texts holding one
//   are refused here), so two texts share a key only if they are identical
//   outside constants and have constants of the same kinds in the same places;
// - constant boundaries are PostgreSQL's, including its lexical errors: a text
//   the server's lexer would reject (unterminated quote or comment, junk after
//   a number, a bad escape in E'…') gets no shape and is keyed by full text.
//   Errors that cannot move a constant's boundaries (an operator longer than
//   63 characters) are left to the parser.
//
// Like libpg-query, it lexes with standard_conforming_strings on: a session
// that turns it off moves where '…' ends, so the proxy must not allow that.
// One deliberate difference from libpg-query: PostgreSQL continues a quoted
// literal across whitespace that contains a newline and `--` comments
// ('a'\n-- note\n'b' is the one literal 'ab'); libpg-query's scanner stops at
// the comment. The upstream server is what runs the text, so its rule wins.
import { FAIL, identEnd } from './lex.js';
import { Quick, QUICK, Token, tokenEnd, tokenKind } from './lex-token.js';

export interface Shape {
  /** The text with each constant replaced by `\u0000` + kind letter (see `Kind`). */
  readonly key: string;
  /** [start, end) pairs of the constants, as string indices into the text. */
  readonly constants: Int32Array;
}

/**
 * Kind letters in the key. Quoting styles that yield the same token share a
 * letter ('…', E'…', $$…$$ are all SCONST); integers that overflow int32 are
 * FCONST to the parser, so they get F, as decimals and exponents do.
 */
export const enum Kind {
  String = 83, // S: '…', E'…', N'…' (the string part), $tag$…$tag$
  Unicode = 85, // U: U&'…'
  Bits = 66, // B: B'…'
  Hex = 88, // X: X'…'
  Integer = 73, // I: fits int32 (decimal, 0x, 0o, 0b, with _ separators)
  Float = 70, // F: decimal point, exponent, or too big for int32
  /**
   * N: a number spelled the way only PostgreSQL 16+ reads it (0x, 0o, 0b
   * prefix or _ separators), whatever its value. PostgreSQL 14 lexes `0x10`
   * as `0 AS x10` (threat A11), so such a text must never share a cache
   * entry with `select 16`: on a miss, rewrite/grammar-drift.ts checks it
   * against the upstream's grammar.
   */
  Modern = 78,
}

const MARKER: Record<number, string> = {
  [Kind.String]: '\u0000S',
  [Kind.Unicode]: '\u0000U',
  [Kind.Bits]: '\u0000B',
  [Kind.Hex]: '\u0000X',
  [Kind.Integer]: '\u0000I',
  [Kind.Float]: '\u0000F',
  [Kind.Modern]: '\u0000N',
};

/** Whether the number in [start, end) uses a spelling older lexers split (0x/0o/0b prefix, _ separator). */
function modernNumber(sql: string, start: number, end: number): boolean {
  if (end - start > 1 && sql.charCodeAt(start) === 48) {
    const p = sql.charCodeAt(start + 1) | 0x20;
    if (p === 120 || p === 111 || p === 98) return true; // x o b
  }
  for (let i = start; i < end; i++) if (sql.charCodeAt(i) === 95) return true;
  return false;
}

// The shape kind of each token kind; 0 for tokens that are not constants.
const SHAPE_KIND = new Uint8Array(Token.BlockComment + 1);
SHAPE_KIND[Token.String] = Kind.String;
SHAPE_KIND[Token.EString] = Kind.String;
SHAPE_KIND[Token.Dollar] = Kind.String;
SHAPE_KIND[Token.UnicodeString] = Kind.Unicode;
SHAPE_KIND[Token.Bits] = Kind.Bits;
SHAPE_KIND[Token.Hex] = Kind.Hex;
SHAPE_KIND[Token.Integer] = Kind.Integer;
SHAPE_KIND[Token.Float] = Kind.Float;

// Scratch for (start, end, kind) triples, reused across calls so a scan
// allocates only its result.
let scratch = new Int32Array(96);

/**
 * The shape of `sql`, or undefined when it has no well-defined shape (a
 * lexical error, or a NUL character); the caller then keys by full text.
 */
export function scanShape(sql: string): Shape | undefined {
  if (sql.indexOf('\u0000') !== -1) return undefined;
  const n = sql.length;
  let count = 0;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const quick = c < 128 ? QUICK[c] : Quick.Word;
    if (quick === Quick.Skip) { // whitespace, punctuation, operators
      i++;
      continue;
    }
    if (quick === Quick.Word) {
      i = identEnd(sql, i + 1, n);
      continue;
    }
    const start = i;
    const end = tokenEnd(sql, i, n);
    if (end === FAIL) return undefined; // a lexical error
    let kind = SHAPE_KIND[tokenKind];
    if (kind === 0) { // not a constant
      i = end;
      continue;
    }
    if ((kind === Kind.Integer || kind === Kind.Float) && modernNumber(sql, start, end)) kind = Kind.Modern;
    const at = count * 3;
    if (at + 3 > scratch.length) {
      const grown = new Int32Array(scratch.length * 2);
      grown.set(scratch);
      scratch = grown;
    }
    scratch[at] = start;
    scratch[at + 1] = end;
    scratch[at + 2] = kind;
    count++;
    i = end;
  }
  return build(sql, count);
}

function build(sql: string, count: number): Shape {
  const constants = new Int32Array(count * 2);
  let key = '';
  let last = 0;
  for (let k = 0; k < count; k++) {
    const start = scratch[k * 3];
    const end = scratch[k * 3 + 1];
    constants[k * 2] = start;
    constants[k * 2 + 1] = end;
    key += sql.slice(last, start) + MARKER[scratch[k * 3 + 2]];
    last = end;
  }
  if (scratch.length > 3 * 1024) scratch = new Int32Array(96); // don't keep a huge statement's scratch alive
  return { key: count === 0 ? sql : key + sql.slice(last), constants };
}

