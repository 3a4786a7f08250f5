// The pieces of PostgreSQL's lexer (scan.l) that lex-token.ts assembles into
// tokens: character classes, comments, quoted identifiers, quoted and
// dollar-quoted strings.
// Each token function takes the index just past the opening delimiter and
// returns the index just past the token, or FAIL on a lexical error.

// ASCII classes; every code unit ≥ 0x80 is an identifier character, as every
// byte ≥ 0x80 is in scan.l.
const IDENT_START = 1;
const IDENT_CONT = 2;
const CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z_]/.test(ch)) CLASS[c] = IDENT_START | IDENT_CONT;
  if (/[0-9]/.test(ch)) CLASS[c] = IDENT_CONT;
}
CLASS[36] |= IDENT_CONT; // '$' continues identifiers (a$b) but starts none

// CLASS[NaN] is undefined and undefined & x is 0, so NaN (charCodeAt past
// the end) is in no class: callers need no bounds checks.
export const identStart = (c: number): boolean => (c >= 128 ? true : (CLASS[c] & IDENT_START) !== 0);
export const identCont = (c: number): boolean => (c >= 128 ? true : (CLASS[c] & IDENT_CONT) !== 0);
export const isDigit = (c: number): boolean => c >= 48 && c <= 57;
/** Dollar-quote tags are identifiers without '$'. */
const dolqCont = (c: number): boolean => c !== 36 && identCont(c);

export function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

export const INT32_MAX = 2147483647;
export const FAIL = -1;

/** The rest of an identifier, from its second character. */
export function identEnd(sql: string, i: number, n: number): number {
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c < 128 && (CLASS[c] & IDENT_CONT) === 0) break;
    i++;
  }
  return i;
}

/** `--` comments run to the next \n or \r (exclusive) or the end. */
export function lineEnd(sql: string, i: number, n: number): number {
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 10 || c === 13) return i;
    i++;
  }
  return n;
}

/** Block comments nest. */
export function blockCommentEnd(sql: string, i: number, n: number): number {
  let depth = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 42 && sql.charCodeAt(i + 1) === 47) {
      if (depth === 0) return i + 2;
      depth--;
      i += 2;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      depth++;
      i += 2;
    } else i++;
  }
  return FAIL;
}

// Quoted tokens are searched char by char: most are short, and indexOf's
// per-call setup costs more than the scan.

/** "ident" and U&"ident": "" is a quote; a zero-length name is an error. */
export function identQuotedEnd(sql: string, i: number, n: number): number {
  const first = i;
  for (; i < n; i++) {
    if (sql.charCodeAt(i) !== 34) continue;
    if (sql.charCodeAt(i + 1) !== 34) return i === first ? FAIL : i + 1;
    i++;
  }
  return FAIL;
}

/**
 * '…', U&'…' (doubled quotes allowed) and B'…', X'…' (not: their first
 * quote ends them). Every form continues after whitespace containing a
 * newline (and `--` comments) followed by another quote.
 */
export function quotedEnd(sql: string, i: number, n: number, doubling: boolean): number {
  for (; i < n; i++) {
    if (sql.charCodeAt(i) !== 39) continue;
    if (doubling && sql.charCodeAt(i + 1) === 39) {
      i++;
      continue;
    }
    const next = continuation(sql, i + 1, n);
    if (next === FAIL) return i + 1;
    i = next - 1;
  }
  return FAIL;
}

/**
 * After a closing quote: the index just past the opening quote of a
 * continuation ({quotecontinue} in scan.l), or FAIL when the literal ends.
 */
export function continuation(sql: string, i: number, n: number): number {
  let newline = false;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 10 || c === 13) {
      newline = true;
      i++;
    } else if (c === 32 || c === 9 || c === 12 || c === 11) i++;
    else if (c === 45 && sql.charCodeAt(i + 1) === 45) i = lineEnd(sql, i + 2, n);
    else return c === 39 && newline ? i + 1 : FAIL;
  }
  return FAIL;
}

export const NOT_STRING = -2;
/** Set by dollarEnd when it returns NOT_STRING: where scanning resumes. */
export let resumeAt = 0;

/**
 * `$n` parameters and `$tag$…$tag$` strings, from the '$'. Returns the end of
 * a dollar-quoted string, FAIL on an error, or NOT_STRING (a parameter or a
 * lone '$'; see resumeAt). The first occurrence of the opening tag closes
 * the string: scan.l tries a delimiter at every '$' of the body, and a tag
 * cannot contain '$', so no earlier candidate can hide one.
 * `$1abc` is an error ({param_junk}, PostgreSQL 18), though libpg-query's
 * lexer reads `$1` then `abc`: otherwise `$1E'x'` would hold a constant for
 * us and none for the server.
 */
export function dollarEnd(sql: string, i: number, n: number): number {
  const c = sql.charCodeAt(i + 1);
  let j = i + 1;
  if (isDigit(c)) {
    let value = 0;
    while (j < n && isDigit(sql.charCodeAt(j))) value = value * 10 + sql.charCodeAt(j++) - 48;
    if (value > INT32_MAX || identStart(sql.charCodeAt(j))) return FAIL; // too large, or {param_junk}
    resumeAt = j;
    return NOT_STRING;
  }
  if (c !== 36) {
    if (!identStart(c)) j = 0; // also NaN past the end
    else while (j < n && dolqCont(sql.charCodeAt(j))) j++;
    if (j === 0 || sql.charCodeAt(j) !== 36) { // {dolqfailed}: '$' alone, then an identifier
      resumeAt = i + 1;
      return NOT_STRING;
    }
  }
  const tag = sql.slice(i, j + 1);
  const close = sql.indexOf(tag, j + 1);
  return close === -1 ? FAIL : close + tag.length;
}

