// A seeded generator of SQL-ish texts for testing the lexer against
// PostgreSQL's (libpg-query's scanSync): identifiers, every literal and
// number form, operators, comments and separators, glued at random, a few
// with a lexical error at the end.
import { mulberry32 } from './random.js';

/** Extra fragments a caller mixes in (none keeps the shape corpus as it was). */
export interface CorpusExtras {
  operators?: readonly string[];
  comments?: readonly string[];
  seps?: readonly string[];
}

/** A function returning the next statement of the corpus for `seed`. */
export function sqlCorpus(seed: number, extras: CorpusExtras = {}): () => string {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const repeat = (n: number, f: () => string) => Array.from({ length: n }, f).join('');

  const idents = ['select', 'from', 'where', 'and', 'x', 't1', 'e1', 'b', 'x1f', 'e', 'E', 'B', 'X', 'U', 'u', 'N', 'n', 'date', 'interval',
    'é', 'ñame', '日本', 'a$b', '_x', 'uescape', 'UESCAPE', 'abc$$', 'ü1'];
  const quotedIdents = ['"a"', '"x""y"', '"é 1"', 'U&"d\\0061t"', '"\'"', '"--"', '"/*"', '"$$"', '"😀"', 'u&"x"'];
  const operators = [...(extras.operators ?? []), '::', '-', '+', '||', '<>', '->>', '*', '/', '(', ')', ',', ';', '..', ':=', '=', '$', '&', '.', '[', ']', '%', '@', '!=', '#'];
  const comments = [...(extras.comments ?? []), '-- c\n', '--\n', '-- \'x\' 1\n', '/* x */', '/* a /* b */ c */', '/**/', '/*/ x */', '/* \'q */', '/***/', '/* 1 */'];
  const seps = [...(extras.seps ?? []), '', '', ' ', ' ', ' ', '\n', '\t', '  ', '\r\n'];
  const chars = ['a', 'b', 'Z', '0', '7', ' ', '"', '$', '-', '/', '*', 'é', '😀', '語', '\n', '\t', '\\', 'x', 'u', '_'];

  const digits = (min: number, max: number, alphabet = '0123456789', underscores = true) => {
    const n = min + int(max - min + 1);
    let s = '';
    for (let i = 0; i < n; i++) {
      if (i > 0 && underscores && rnd() < 0.1) s += '_';
      s += alphabet[int(alphabet.length)];
    }
    return s;
  };
  const exponent = () => pick(['e', 'E']) + pick(['', '+', '-']) + digits(1, 3);
  const number = (): string => {
    switch (int(12)) {
      case 0: return digits(1, 4);
      case 1: return digits(8, 13, '0123456789', false); // around the int32 limit
      case 2: return pick(['2147483647', '2147483648', '0x7FFFFFFF', '0x80000000', '0b' + '1'.repeat(31), '0o17777777777', '0o20000000000']);
      case 3: return '0' + pick(['x', 'X']) + (rnd() < 0.2 ? '_' : '') + digits(1, 6, '0123456789abcdefABCDEF');
      case 4: return '0' + pick(['o', 'O']) + digits(1, 6, '01234567');
      case 5: return '0' + pick(['b', 'B']) + digits(1, 8, '01');
      case 6: return digits(1, 4) + '.' + digits(1, 4);
      case 7: return '.' + digits(1, 4);
      case 8: return digits(1, 3) + '.';
      case 9: return pick([digits(1, 3), digits(1, 2) + '.' + digits(0, 2), '.' + digits(1, 2)]) + exponent();
      case 10: return digits(1, 3) + '..' + digits(1, 3);
      default: return pick(['0', '1', '42', '1_000', '00012', '0.0', '1e5', '1.e3']);
    }
  };
  const text = (n: number, avoid: string[]) => {
    let s = '';
    while (s.length < n) {
      const c = pick(chars);
      s += c;
    }
    for (const a of avoid) s = s.split(a).join('');
    return s;
  };
  const plain = () => "'" + text(int(8), ["'"]) + (rnd() < 0.3 ? "''" : '') + text(int(4), ["'"]) + "'";
  const simplePart = () => "'" + repeat(int(4), () => pick(['a', 'b', '1', ' ', 'é'])) + "'";
  const continuation = () => pick(['\n', '  \n  ', '\r', ' -- c\n', '\n-- c\n  ', '\t--\n\n']) + simplePart();
  const eEscapes = ["\\'", '\\\\', '\\n', '\\t', '\\x41', '\\x4', '\\101', '\\7', '\\u00e9', '\\U0001F600', '\\uD83D\\uDE00', '\\x', '\\q', '\\é', "''", '\\"'];
  const eBad = ['\\xff', '\\u12', '\\uDC00', '\\uD800', '\\U00110000', '\\0', '\\400', '\\u0000', '\\u', '\\xc3'];
  const eString = () => pick(['E', 'e']) + "'" + repeat(int(5), () => (rnd() < 0.5 ? text(int(3), ["'", '\\']) : rnd() < 0.9 ? pick(eEscapes) : pick(eBad))) + "'";
  const dollar = () => {
    const tag = pick(['', '', 'a', 'tag', '_x1', 'é', 'A9']);
    const body = text(int(10), [`$${tag}$`]) + (rnd() < 0.3 ? pick(['$', '$b$', '$1', '$$']) : '') + text(int(3), []);
    const d = `$${tag}$`;
    // keep the body free of the delimiter, including across the join
    return (d + body + d).indexOf(d, d.length) === d.length + body.length ? d + body + d : `$${tag}$$${tag}$`;
  };
  const stringLiteral = (): string => {
    switch (int(11)) {
      case 0: case 1: return plain();
      case 2: return eString();
      case 3: return pick(['B', 'b']) + "'" + digits(0, 6, '01', false) + (rnd() < 0.1 ? 'z' : '') + "'";
      case 4: return pick(['X', 'x']) + "'" + digits(0, 6, '0123456789abcdefABCDEF', false) + "'";
      case 5: return pick(['U&', 'u&']) + "'" + pick(['d\\0061t', 'x!0061', 'plain', 'é', "it''s", '']) + "'" + (rnd() < 0.3 ? " UESCAPE '!'" : '');
      case 6: return pick(['N', 'n']) + plain();
      case 7: case 8: return dollar();
      case 9: return pick([plain, eString, () => "B'1'", () => "X'f'", () => "U&'a'"])() + continuation() + (rnd() < 0.3 ? continuation() : '');
      default: return pick(["'date'", "'2020-01-01'", "''", "''''", "'a''b'", "'\\'"]);
    }
  };
  const fragment = (): string => {
    const r = rnd();
    if (r < 0.25) return pick(idents);
    if (r < 0.45) return number();
    if (r < 0.7) return stringLiteral();
    if (r < 0.8) return pick(operators);
    if (r < 0.87) return pick(comments);
    if (r < 0.93) return pick(quotedIdents);
    return pick(['$1', '$23', '$0']);
  };
  const broken = () => pick(["'abc", '/* x', '/* a /* b */', '"x', '$a$ x', "E'\\", "B'1", "U&'x", 'U&"x', '$$', "E'a\\'", '""', '"""']);

  return (): string => {
    let s = rnd() < 0.5 ? 'select ' : '';
    const n = 1 + int(12);
    for (let i = 0; i < n; i++) s += fragment() + pick(seps);
    if (rnd() < 0.04) s += broken();
    return s;
  };
}
