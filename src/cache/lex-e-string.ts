// E'…' strings as scan.l lexes them: backslash escapes, doubled quotes,
// continuation, and the escape errors PostgreSQL's lexer raises (bad Unicode
// escapes, and a decoded literal that is not valid UTF-8).
import { FAIL, continuation, hexValue } from './lex.js';

/** E'…' from just past the quote: the index past its end, or FAIL. */
export function eStringEnd(sql: string, i: number, n: number): number {
  const end = scan(sql, i, n, null);
  return end !== FAIL && needsCheck && !decodesToValidText(sql, i, n) ? FAIL : end;
}

/**
 * Set by scan when an octal or hex escape produced a NUL or a byte
 * ≥ 0x80: PostgreSQL then checks the decoded literal is valid UTF-8.
 */
let needsCheck = false;

/**
 * Backslash escapes, doubled quotes, continuation. Unicode escapes are
 * checked as scan.l does (exact digit counts, surrogate pairs, range). With
 * `out`, the decoded bytes are appended to it (only for the rare
 * decodesToValidText check).
 */
function scan(sql: string, i: number, n: number, out: number[] | null): number {
  needsCheck = false;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 39) {
      if (sql.charCodeAt(i + 1) === 39) {
        out?.push(39);
        i += 2;
        continue;
      }
      const next = continuation(sql, i + 1, n);
      if (next === FAIL) return i + 1;
      i = next;
      continue;
    }
    if (c !== 92) {
      if (out) i = pushUtf8(sql, i, out);
      else i++;
      continue;
    }
    // backslash
    if (i + 1 >= n) return FAIL;
    const d = sql.charCodeAt(i + 1);
    if (d >= 48 && d <= 55) { // \ooo
      let j = i + 1;
      let value = 0;
      while (j < n && j < i + 4 && sql.charCodeAt(j) >= 48 && sql.charCodeAt(j) <= 55) value = value * 8 + sql.charCodeAt(j++) - 48;
      noteByte(value & 0xff, out);
      i = j;
    } else if (d === 120 && hexValue(sql.charCodeAt(i + 2)) >= 0) { // \xh, \xhh
      let value = hexValue(sql.charCodeAt(i + 2));
      let j = i + 3;
      const h2 = hexValue(sql.charCodeAt(j));
      if (h2 >= 0) {
        value = value * 16 + h2;
        j++;
      }
      noteByte(value, out);
      i = j;
    } else if (d === 117 || d === 85) { // \uXXXX, \UXXXXXXXX
      let code = unicodeEscape(sql, i, n);
      if (code < 0) return FAIL;
      i += d === 117 ? 6 : 10;
      if (code >= 0xd800 && code <= 0xdbff) {
        if (sql.charCodeAt(i) !== 92) return FAIL;
        const e2 = sql.charCodeAt(i + 1);
        const low = e2 === 117 || e2 === 85 ? unicodeEscape(sql, i, n) : -1;
        if (low < 0xdc00 || low > 0xdfff) return FAIL;
        i += e2 === 117 ? 6 : 10;
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
      } else if ((code >= 0xdc00 && code <= 0xdfff) || code === 0 || code > 0x10ffff) return FAIL;
      if (out) pushCodePoint(code, out);
    } else { // \c is c; a non-ASCII c makes PostgreSQL re-check the literal (always valid here)
      if (out) i = pushUtf8(sql, i + 1, out);
      else i += 2;
    }
  }
  return FAIL;
}

/** The code point of a \u or \U escape at `i` (the backslash), or -1. */
function unicodeEscape(sql: string, i: number, n: number): number {
  const digits = sql.charCodeAt(i + 1) === 117 ? 4 : 8;
  if (i + 2 + digits > n) return -1;
  let code = 0;
  for (let k = 0; k < digits; k++) {
    const h = hexValue(sql.charCodeAt(i + 2 + k));
    if (h < 0) return -1;
    code = code * 16 + h;
  }
  return code;
}

function noteByte(b: number, out: number[] | null): void {
  if (b === 0 || b >= 0x80) needsCheck = true;
  out?.push(b);
}

function pushUtf8(sql: string, i: number, out: number[]): number {
  const code = sql.codePointAt(i) as number;
  pushCodePoint(code, out);
  return i + (code > 0xffff ? 2 : 1);
}

function pushCodePoint(code: number, out: number[]): void {
  if (code < 0x80) out.push(code);
  else if (code < 0x800) out.push(0xc0 | (code >> 6), 0x80 | (code & 63));
  else if (code < 0x10000) out.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
  else out.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** pg_verifymbstr on the decoded literal: valid UTF-8 and no NUL. */
function decodesToValidText(sql: string, i: number, n: number): boolean {
  const bytes: number[] = [];
  scan(sql, i, n, bytes);
  if (bytes.includes(0)) return false;
  try {
    strictUtf8.decode(Uint8Array.from(bytes));
    return true;
  } catch {
    return false;
  }
}
