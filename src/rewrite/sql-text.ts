// The statement text as the splicer sees it: libpg-query reports node
// locations as UTF-8 byte offsets, JavaScript strings index UTF-16 code
// units. Most SQL is ASCII, where both agree and no table is built.
// Also the few lexical helpers the splicer needs to find where a name ends.

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

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}

function isIdentChar(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
}

/** Skips whitespace and comments (`--`, nested `/* *\/`) from `i`. */
export function skipSpace(sql: string, i: number): number {
  for (;;) {
    const c = sql.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === 12) { i++; continue; }
    if (c === 45 && sql.charCodeAt(i + 1) === 45) { // --
      while (i < sql.length && sql.charCodeAt(i) !== 10) i++;
      continue;
    }
    if (c === 47 && sql.charCodeAt(i + 1) === 42) { // /*
      let depth = 1;
      i += 2;
      while (i < sql.length && depth > 0) {
        if (sql.charCodeAt(i) === 47 && sql.charCodeAt(i + 1) === 42) { depth++; i += 2; }
        else if (sql.charCodeAt(i) === 42 && sql.charCodeAt(i + 1) === 47) { depth--; i += 2; }
        else i++;
      }
      continue;
    }
    return i;
  }
}

/** End of one identifier (quoted or not, including U&"…") starting at `i`; -1 if none starts there. */
export function identifierEnd(sql: string, i: number): number {
  let c = sql.charCodeAt(i);
  if ((c === 85 || c === 117) && sql.charCodeAt(i + 1) === 38 && sql.charCodeAt(i + 2) === 34) { i += 2; c = 34; } // U&"
  if (c === 34) {
    for (let j = i + 1; j < sql.length; j++) {
      if (sql.charCodeAt(j) === 34) {
        if (sql.charCodeAt(j + 1) === 34) { j++; continue; }
        let end = j + 1;
        // A UESCAPE clause belongs to the identifier.
        const after = skipSpace(sql, end);
        if (/^uescape/i.test(sql.slice(after, after + 7))) {
          const q = skipSpace(sql, after + 7);
          if (sql.charCodeAt(q) === 39) end = sql.indexOf("'", q + 1) + 1;
        }
        return end;
      }
    }
    return -1;
  }
  if (!isIdentStart(c)) return -1;
  let j = i + 1;
  while (j < sql.length && isIdentChar(sql.charCodeAt(j))) j++;
  return j;
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
    if (c === 32 || c === 9 || c === 10 || c === 13) continue;
    break;
  }
  const start = j - word.length + 1;
  if (start < 0 || sql.slice(start, j + 1).toLowerCase() !== word) return undefined;
  if (start > 0 && isIdentChar(sql.charCodeAt(start - 1))) return undefined;
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
  const c = sql.charCodeAt(i);
  if (c === 39) return quotedEnd(sql, i, false);
  if ((c === 69 || c === 101) && sql.charCodeAt(i + 1) === 39) return quotedEnd(sql, i + 1, true);
  if (c === 36) {
    let j = i + 1;
    while (j < sql.length && sql.charCodeAt(j) >= 48 && sql.charCodeAt(j) <= 57) j++;
    return j > i + 1 && !isIdentChar(sql.charCodeAt(j)) ? j : -1;
  }
  const m = /^(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?/.exec(sql.slice(i, i + 64));
  if (!m) return -1;
  const end = i + m[0].length;
  return isIdentChar(sql.charCodeAt(end)) || sql.charCodeAt(end) === 46 ? -1 : end;
}

function quotedEnd(sql: string, open: number, escapes: boolean): number {
  for (let j = open + 1; j < sql.length; j++) {
    const c = sql.charCodeAt(j);
    if (escapes && c === 92) { j++; continue; }
    if (c === 39) {
      if (sql.charCodeAt(j + 1) === 39) { j++; continue; }
      return j + 1;
    }
  }
  return -1;
}

/** Index just past the `)` matching the `(` at `open` (strings, quoted names and comments skipped); -1 if none. */
export function matchingParen(sql: string, open: number): number {
  let depth = 0;
  for (let i = open; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c === 39) { const end = quotedEnd(sql, i, false); if (end === -1) return -1; i = end - 1; continue; }
    if (c === 34) { const end = identifierEnd(sql, i); if (end === -1) return -1; i = end - 1; continue; }
    if ((c === 45 && sql.charCodeAt(i + 1) === 45) || (c === 47 && sql.charCodeAt(i + 1) === 42)) { i = skipSpace(sql, i) - 1; continue; }
    if (c === 40) depth++;
    else if (c === 41 && --depth === 0) return i + 1;
  }
  return -1;
}
