// SASLprep (RFC 4013) of a SCRAM password, with PostgreSQL's deviations
// (src/common/saslprep.c) so that a verifier made here and one made by
// PostgreSQL agree byte for byte:
//  - a pure-ASCII password is used exactly as given (no mapping, no checks);
//  - otherwise: map C.1.2 spaces to U+0020 and drop B.1 characters, NFKC;
//  - the prohibited (C.*), unassigned (A.1) and bidi (D.1/D.2) checks are run
//    on the mapped text before normalisation, as PostgreSQL does;
//  - an empty result, a prohibited character or invalid UTF-8 does not fail
//    the password: the raw UTF-8 bytes of the input are used instead.
import { L_CAT, MAPPED_TO_NOTHING, NON_ASCII_SPACE, PROHIBITED, RAND_AL_CAT, UNASSIGNED } from './saslprep-tables.js';

type Ranges = Uint32Array;

function parseRanges(text: string): Ranges {
  const parts = text.trim().split(/\s+/);
  const out = new Uint32Array(parts.length * 2);
  parts.forEach((part, i) => {
    const [lo, hi = lo] = part.split('-');
    out[2 * i] = parseInt(lo, 16);
    out[2 * i + 1] = parseInt(hi, 16);
  });
  return out;
}

const nonAsciiSpace = parseRanges(NON_ASCII_SPACE);
const mappedToNothing = parseRanges(MAPPED_TO_NOTHING);
const prohibited = parseRanges(PROHIBITED);
const unassigned = parseRanges(UNASSIGNED);
const randALCat = parseRanges(RAND_AL_CAT);
const lCat = parseRanges(L_CAT);

function inRanges(cp: number, table: Ranges): boolean {
  let lo = 0;
  let hi = table.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < table[2 * mid]) hi = mid - 1;
    else if (cp > table[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

// Lone surrogates cannot come from valid UTF-8 input; PostgreSQL would see
// invalid UTF-8 and fall back to raw bytes, so do the same.
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The SASLprep'd form of `input`, or null when PostgreSQL would reject it as
 * prohibited (or invalid UTF-8), in which case callers use the raw bytes.
 */
export function saslprep(input: string): string | null {
  if (/^[\x00-\x7F]*$/.test(input)) return input;
  if (loneSurrogate.test(input)) return null;

  const mapped: number[] = [];
  for (const ch of input) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(cp, nonAsciiSpace)) mapped.push(0x20);
    else if (!inRanges(cp, mappedToNothing)) mapped.push(cp);
  }
  if (mapped.length === 0) return null;

  for (const cp of mapped) {
    if (inRanges(cp, prohibited) || inRanges(cp, unassigned)) return null;
  }
  if (mapped.some((cp) => inRanges(cp, randALCat))) {
    if (mapped.some((cp) => inRanges(cp, lCat))) return null;
    if (!inRanges(mapped[0], randALCat) || !inRanges(mapped[mapped.length - 1], randALCat)) return null;
  }
  return mapped.map((cp) => String.fromCodePoint(cp)).join('').normalize('NFKC');
}

/** The bytes SCRAM hashes for `password`: SASLprep'd when allowed, else the raw UTF-8. */
export function scramPasswordBytes(password: string): Buffer {
  return Buffer.from(saslprep(password) ?? password, 'utf8');
}
