// The shape of a statement: its text with every constant cut out, found by a
// single-pass scanner that follows PostgreSQL's lexer (scan.l, PG 16–18 rules)
// without parsing. Statements that differ only in constants share a shape, so
// a simple-protocol client's `WHERE aid = 48213` hits one cache entry for
// every aid (DESIGN §3 step 6).
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
import {
  FAIL, NOT_STRING, blockCommentEnd, dollarEnd, identEnd, identQuotedEnd, isDigit, lineEnd, quotedEnd, resumeAt,
} from './lex.js';
import { eStringEnd } from './lex-e-string.js';
import { numberEnd, numberIsFloat } from './lex-number.js';

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
   * as `0 AS x10` (THREATS A11), so such a text must never share a cache
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

// What a character at the start of a token begins; a table so the main loop
// is one indexed load and a dense switch.
const enum Act { Skip, Ident, Digit, Quote, DQuote, Minus, Slash, Dollar, Dot, BitsHex, E, U }
const ACT = new Uint8Array(128);

for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z_]/.test(ch)) ACT[c] = /[bBxX]/.test(ch) ? Act.BitsHex : /[eE]/.test(ch) ? Act.E : /[uU]/.test(ch) ? Act.U : Act.Ident;
  if (/[0-9]/.test(ch)) ACT[c] = Act.Digit;
}
ACT[39] = Act.Quote;
ACT[34] = Act.DQuote;
ACT[45] = Act.Minus;
ACT[47] = Act.Slash;
ACT[36] = Act.Dollar;
ACT[46] = Act.Dot;

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
    const start = i;
    let end: number;
    let kind: Kind;
    switch (c < 128 ? ACT[c] : Act.Ident) {
      case Act.Skip: // whitespace, operators, punctuation
        i++;
        continue;
      case Act.Ident:
        // N'…' needs no case: the identifier stops at the quote, which then
        // starts an ordinary string, exactly as scan.l's {xnstart} does.
        i = identEnd(sql, i + 1, n);
        continue;
      case Act.Digit:
        end = numberEnd(sql, i, n);
        kind = numberIsFloat ? Kind.Float : Kind.Integer;
        if (end !== FAIL && modernNumber(sql, start, end)) kind = Kind.Modern;
        break;
      case Act.Quote:
        end = quotedEnd(sql, i + 1, n, true);
        kind = Kind.String;
        break;
      case Act.DQuote:
        end = identQuotedEnd(sql, i + 1, n);
        if (end === FAIL) return undefined;
        i = end;
        continue;
      case Act.Minus:
        i = sql.charCodeAt(i + 1) === 45 ? lineEnd(sql, i + 2, n) : i + 1;
        continue;
      case Act.Slash:
        if (sql.charCodeAt(i + 1) === 42) {
          i = blockCommentEnd(sql, i + 2, n);
          if (i === FAIL) return undefined;
        } else i++;
        continue;
      case Act.Dollar:
        end = dollarEnd(sql, i, n);
        if (end === FAIL) return undefined;
        if (end === NOT_STRING) { // a parameter or a lone '$'
          i = resumeAt;
          continue;
        }
        kind = Kind.String;
        break;
      case Act.Dot:
        if (isDigit(sql.charCodeAt(i + 1))) {
          end = numberEnd(sql, i, n);
          kind = numberIsFloat ? Kind.Float : Kind.Integer;
          if (end !== FAIL && modernNumber(sql, start, end)) kind = Kind.Modern;
          break;
        }
        i += sql.charCodeAt(i + 1) === 46 ? 2 : 1; // '..' is one token, so '..5' is '..' then 5
        continue;
      case Act.BitsHex:
        if (sql.charCodeAt(i + 1) === 39) {
          end = quotedEnd(sql, i + 2, n, false);
          kind = (c | 0x20) === 98 ? Kind.Bits : Kind.Hex;
          break;
        }
        i = identEnd(sql, i + 1, n);
        continue;
      case Act.E:
        if (sql.charCodeAt(i + 1) === 39) {
          end = eStringEnd(sql, i + 2, n);
          kind = Kind.String;
          break;
        }
        i = identEnd(sql, i + 1, n);
        continue;
      default: // U, u
        if (sql.charCodeAt(i + 1) === 38) { // U&
          const q = sql.charCodeAt(i + 2);
          if (q === 39) {
            end = quotedEnd(sql, i + 3, n, true);
            kind = Kind.Unicode;
            break;
          }
          if (q === 34) {
            end = identQuotedEnd(sql, i + 3, n);
            if (end === FAIL) return undefined;
            i = end;
            continue;
          }
        }
        i = identEnd(sql, i + 1, n);
        continue;
    }
    if (end === FAIL) return undefined;
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

