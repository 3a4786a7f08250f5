// Numeric literals as PostgreSQL 16+ lexes them (scan.l): decimal, 0x/0o/0b,
// '_' separators, fractions, exponents, and "trailing junk" as an error.
import { FAIL, INT32_MAX, hexValue, identCont, identStart, isDigit } from './lex.js';

function digitValue(c: number, base: number): number {
  const v = base === 16 ? hexValue(c) : c >= 48 && c <= 57 ? c - 48 : -1;
  return v < base ? v : -1;
}

/** Set by numberEnd: whether the parser reads the number as FCONST (not an int32 ICONST). */
export let numberIsFloat = false;
/** Set by decDigitsEnd: the value read, exact up to 2^53 (only compared to INT32_MAX). */
let digitsValue = 0;
/** Set by decDigitsEnd: whether the digits had a '_' separator. */
let digitsUnderscore = false;

/** {decinteger}: digits with single '_' between digits. */
function decDigitsEnd(sql: string, i: number, n: number): number {
  let value = 0;
  let underscore = false;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isDigit(c)) {
      value = value * 10 + c - 48;
      i++;
    } else if (c === 95 && isDigit(sql.charCodeAt(i + 1))) {
      underscore = true;
      i++;
    } else break;
  }
  digitsValue = value;
  digitsUnderscore = underscore;
  return i;
}

/**
 * A numeric literal from its first digit or from '.' before a digit. Mirrors
 * the PG 16+ rules: 0x/0o/0b prefixes, '_' separators, and "trailing junk"
 * (an identifier glued to a number) as an error.
 *
 * Junk is subtle because flex takes the longest match: {integer_junk} is
 * {decinteger}{identifier}, and an identifier may start at a '_' inside the
 * number's last digit group ('1_0$' is '1' + '_0$', longer than '1_0') or at
 * an unsigned exponent's 'e' ('1e5$' is '1' + 'e5$'). In those cases any
 * identifier character after the number makes it junk; otherwise only an
 * identifier start does ('1$' is 1 then '$').
 */
export function numberEnd(sql: string, i: number, n: number): number {
  const first = sql.charCodeAt(i);
  if (first === 48) {
    const p = sql.charCodeAt(i + 1) | 0x20;
    const base = p === 120 ? 16 : p === 111 ? 8 : p === 98 ? 2 : 0;
    if (base !== 0) return prefixedEnd(sql, i + 2, n, base);
  }
  let j: number;
  let fraction = first === 46;
  let glued = false; // may an identifier start inside the last digit group?
  if (fraction) {
    j = decDigitsEnd(sql, i + 1, n);
    glued = digitsUnderscore;
  } else {
    j = decDigitsEnd(sql, i, n);
    glued = digitsUnderscore;
    if (sql.charCodeAt(j) === 46) {
      // '1..2' is 1, '..', 2 ({numericfail})
      if (sql.charCodeAt(j + 1) === 46) return integerEnd(sql, j, glued);
      fraction = true;
      j++;
      glued = false;
      if (isDigit(sql.charCodeAt(j))) {
        j = decDigitsEnd(sql, j, n);
        glued = digitsUnderscore;
      }
    }
  }
  if ((sql.charCodeAt(j) | 0x20) === 101) { // e, E
    let k = j + 1;
    const sign = sql.charCodeAt(k) === 43 || sql.charCodeAt(k) === 45;
    if (sign) k++;
    if (!isDigit(sql.charCodeAt(k))) return FAIL; // {realfail} or junk ('1e', '1e+')
    k = decDigitsEnd(sql, k, n);
    if (junkAfter(sql, k, !sign || digitsUnderscore)) return FAIL;
    numberIsFloat = true;
    return k;
  }
  if (fraction) {
    if (junkAfter(sql, j, glued)) return FAIL;
    numberIsFloat = true;
    return j;
  }
  return integerEnd(sql, j, glued);
}

function junkAfter(sql: string, j: number, glued: boolean): boolean {
  const c = sql.charCodeAt(j); // NaN past the end: no class
  return glued ? identCont(c) : identStart(c);
}

/** An integer ending at `j` (value in digitsValue): ICONST if it fits int32. */
function integerEnd(sql: string, j: number, glued: boolean): number {
  if (junkAfter(sql, j, glued)) return FAIL;
  numberIsFloat = digitsValue > INT32_MAX;
  return j;
}

/** 0x…, 0o…, 0b… from just past the prefix. */
function prefixedEnd(sql: string, i: number, n: number, base: number): number {
  let digits = 0;
  let value = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const d = digitValue(c, base);
    if (d >= 0) {
      value = value * base + d;
      digits++;
      i++;
    } else if (c === 95 && digitValue(sql.charCodeAt(i + 1), base) >= 0) i++;
    else break;
  }
  // No digits: {hexfail} etc. Glued identifier characters: {integer_junk},
  // which reads '0' + 'x1F…' as a longer identifier match.
  if (digits === 0 || (i < n && identCont(sql.charCodeAt(i)))) return FAIL;
  numberIsFloat = value > INT32_MAX;
  return i;
}

