// The one hand lexer (src/cache/lex-token.ts) against PostgreSQL's own
// (libpg-query's scanSync): on a generated corpus and on hand-picked texts,
// every token — comments, literals, names, numbers, parameters, operators —
// must span exactly what the oracle's does and be of the same class, and
// texts the oracle rejects must fail.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModule, scanSync } from 'libpg-query';
import { FAIL } from '../../src/cache/lex.js';
import { Token, isSpace, tokenEnd, tokenKind } from '../../src/cache/lex-token.js';
import { SqlText } from '../../src/rewrite/sql-text.js';
import { sqlCorpus } from '../helpers/sql-corpus.js';

await loadModule();

// ── the oracle ──────────────────────────────────────────────────────────────

/** Token type numbers of this libpg-query build, read from a probe. */
const CLASS_OF_TYPE = (() => {
  const probe = "select x, U&\"a\", 'b', U&'c', B'1', X'f', 1, 1.5, $1, @@ -- c\n/* d */";
  const tokens = scanSync(probe).tokens;
  const at = (text: string) => {
    const tok = tokens.find((t) => probe.slice(t.start, t.end) === text);
    if (!tok) throw new Error(`probe token ${text} missing`);
    return tok.tokenType;
  };
  return new Map<number, string>([
    [at('x'), 'name'], [at('U&"a"'), 'uname'], [at("'b'"), 'S'], [at("U&'c'"), 'U'], [at("B'1'"), 'B'], [at("X'f'"), 'X'],
    [at('1'), 'I'], [at('1.5'), 'F'], [at('$1'), 'param'], [at('-- c'), '--'], [at('/* d */'), '/*'],
  ]);
})();
const PARAM = [...CLASS_OF_TYPE].find(([, c]) => c === 'param')![0];
const QUOTED_CLASSES = new Set(['S', 'U', 'B', 'X']);

interface Tok { start: number; end: number; cls: string }

const CONTINUATION_GAP = /^(?:[ \t\f\v\r\n]|--[^\r\n]*)*$/;
/** The oracle cannot tell how PostgreSQL lexes this text (see oracle()). */
const UNJUDGED = Symbol('unjudged');

/**
 * The tokens PostgreSQL's lexer sees, or undefined if it rejects the text.
 * Two known differences of libpg-query's scanner from the server, as in
 * test/cache/shape.test.ts: it ends a literal at a `--` comment where scan.l
 * continues it ('a'\n-- c\n'b' is one literal: merged here, UNJUDGED where
 * the merged piece would lex differently), and it reads `$1abc` as `$1`,
 * `abc` where PostgreSQL 18 rejects it ({param_junk}).
 */
function oracle(sql: string): Tok[] | undefined | typeof UNJUDGED {
  let tokens;
  try {
    tokens = scanSync(sql).tokens;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // libpg-query's JSON breaks on some texts with \f or \v: no verdict, counted as unjudged.
    if (/control character/.test(message)) return UNJUDGED;
    return undefined;
  }
  const text = new SqlText(sql); // the scanner's UTF-8 byte offsets as string indices
  if (tokens.some((t) => t.tokenType === PARAM && /^[A-Za-z_\u0080-\uffff]/.test(sql.slice(text.index(t.end))))) return undefined;
  const out: Tok[] = [];
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    const start = text.index(t.start);
    let end = text.index(t.end);
    const cls = CLASS_OF_TYPE.get(t.tokenType) ?? (t.keywordKind > 0 ? 'name' : 'op');
    while (QUOTED_CLASSES.has(cls) && sql[start] !== '$') {
      let j = k + 1;
      while (j < tokens.length && CLASS_OF_TYPE.get(tokens[j].tokenType) === '--') j++;
      if (j === k + 1 || j >= tokens.length || CLASS_OF_TYPE.get(tokens[j].tokenType) !== 'S') break;
      const next = text.index(tokens[j].start);
      const gap = sql.slice(end, next);
      if (sql[next] !== "'" || !/[\r\n]/.test(gap) || !CONTINUATION_GAP.test(gap)) break;
      end = text.index(tokens[j].end);
      const piece = sql.slice(next + 1, end - 1);
      if (((cls === 'B' || cls === 'X') && piece.includes("''")) || (/^[eE]/.test(sql[start]) && piece.includes('\\'))) return UNJUDGED;
      k = j;
    }
    out.push({ start, end, cls });
  }
  return out;
}

const CLASS_OF_TOKEN: Record<Token, string> = {
  [Token.Ident]: 'name', [Token.Quoted]: 'name', [Token.UnicodeIdent]: 'uname',
  [Token.String]: 'S', [Token.EString]: 'S', [Token.Dollar]: 'S', [Token.UnicodeString]: 'U', [Token.Bits]: 'B', [Token.Hex]: 'X',
  [Token.Integer]: 'I', [Token.Float]: 'F', [Token.Param]: 'param',
  [Token.Operator]: 'op', [Token.Char]: 'op', [Token.LineComment]: '--', [Token.BlockComment]: '/*',
};

/** The hand lexer's tokens, or undefined on a lexical error. */
function mine(sql: string): Tok[] | undefined {
  const out: Tok[] = [];
  const n = sql.length;
  for (let i = 0; i < n;) {
    if (isSpace(sql.charCodeAt(i))) {
      i++;
      continue;
    }
    const end = tokenEnd(sql, i, n);
    if (end === FAIL) return undefined;
    assert.ok(end > i, `no progress at ${i} of ${JSON.stringify(sql)}`);
    out.push({ start: i, end, cls: CLASS_OF_TOKEN[tokenKind] });
    i = end;
  }
  return out;
}

const show = (sql: string, ts: Tok[] | undefined) => (ts ? ts.map((t) => `${t.cls}:${JSON.stringify(sql.slice(t.start, t.end))}`).join(' ') : 'lexical error');

/** Compares with the oracle; false if the oracle cannot judge the text. */
function agree(sql: string): boolean {
  const expected = oracle(sql);
  if (expected === UNJUDGED) return false;
  assert.is(show(sql, mine(sql)), show(sql, expected), `tokens of ${JSON.stringify(sql)}`);
  return true;
}

// ── the generated corpus ────────────────────────────────────────────────────

// Beyond the shape corpus: operators scan.l cuts or keeps whole, and \r line ends.
const extras = {
  operators: ['+-', '=-', '@-', '-+-', '*/', '<=>', '!!', '~~*', '?|', '#-', '`', '=>', '>=', '<=', '|/', '%-', '+/*c*/-', '=--c\n', '&&-', '^', '~', '!', '?', '::=', ':', '{', '}', '\\', '$'],
  comments: ['-- c\r', '-- c\r\n', '--\r', '/* \r */', '/* a /* b /* c */ */ */'],
  seps: ['\r', '\r\n', '\f', '\v', ' \r '],
};

// Bounded and seeded for CI; LEX_FUZZ_CASES / LEX_FUZZ_SEED widen a local run.
const CASES = Number(process.env.LEX_FUZZ_CASES ?? 3000);
const SEED = Number(process.env.LEX_FUZZ_SEED ?? 20261202);

test(`tokens match PostgreSQL's lexer on ${CASES} generated statements (seed ${SEED})`, () => {
  const next = sqlCorpus(SEED, extras);
  let lexed = 0;
  let tokens = 0;
  let unjudged = 0;
  for (let i = 0; i < CASES; i++) {
    const sql = next();
    if (!agree(sql)) unjudged++;
    const t = mine(sql);
    if (t) {
      lexed++;
      tokens += t.length;
    }
  }
  // The corpus must exercise both outcomes, not only lexical errors.
  assert.ok(lexed > CASES / 3, `only ${lexed} generated statements lexed`);
  assert.ok(tokens > CASES * 3, `only ${tokens} tokens in the corpus`);
  assert.ok(unjudged < CASES / 100, `${unjudged} statements the oracle could not judge`);
});

// ── hand-picked texts, each also checked against the oracle ─────────────────

const cases: Array<[string, string[] | undefined]> = [
  // `--` comments end at \r as at \n
  ['select * from crm --c\r.employees', ['select', '*', 'from', 'crm', '--c', '.', 'employees']],
  ['select 1 --x\r\n+ 2', ['select', '1', '--x', '+', '2']],
  ['a/* /* */ */b /**/ /*/ x */ c', ['a', '/* /* */ */', 'b', '/**/', '/*/ x */', 'c']],
  // quoted names, U& forms and UESCAPE (separate tokens, as scan.l leaves it to the grammar)
  ['select "a""b", "--", U&"d\\0061t", u&"x" UESCAPE \'!\'', ['select', '"a""b"', ',', '"--"', ',', 'U&"d\\0061t"', ',', 'u&"x"', 'UESCAPE', "'!'"]],
  ["select U&'d!0061t' uescape '!', U&'a'\n'b'", ['select', "U&'d!0061t'", 'uescape', "'!'", ',', "U&'a'\n'b'"]],
  ['select U& x, U&1', ['select', 'U', '&', 'x', ',', 'U', '&', '1']],
  // strings
  ["select E'a\\'b\\\\', e'\\x41\\u00e9', N'x', nx'y', B'01', X'ff'", ['select', "E'a\\'b\\\\'", ',', "e'\\x41\\u00e9'", ',', 'N', "'x'", ',', 'nx', "'y'", ',', "B'01'", ',', "X'ff'"]],
  ["select 'a'\r'b', 'c'\n-- d\r'e', 'f' 'g'", ['select', "'a'\r'b'", ',', "'c'\n-- d\r'e'", ',', "'f'", "'g'"]],
  // dollar quotes and parameters
  ['select $1, $23::int, $a$ $b$ $$ $a$, $$x$$, a$b, $é$y$é$', ['select', '$1', ',', '$23', '::', 'int', ',', '$a$ $b$ $$ $a$', ',', '$$x$$', ',', 'a$b', ',', '$é$y$é$']],
  ['select $ab $1', ['select', '$', 'ab', '$1']],
  // numbers
  ['select 1e5, .5, 1., 1.e3, 0x1F, 0o17, 0b101, 0x_ff, 1_000, 1_000.5e-1_0', ['select', '1e5', ',', '.5', ',', '1.', ',', '1.e3', ',', '0x1F', ',', '0o17', ',', '0b101', ',', '0x_ff', ',', '1_000', ',', '1_000.5e-1_0']],
  ['select 1..2, ..5, 1.5.3, 2147483648', ['select', '1', '..', '2', ',', '..', '5', ',', '1.5', '.3', ',', '2147483648']],
  // operators: cut before comments, trailing + and - dropped unless a non-SQL operator character is in them
  ['select a::int, b+-c, x=-1, y@-1, z<=>w, p*/q, r+/*c*/-s, t=--c\n1', ['select', 'a', '::', 'int', ',', 'b', '+', '-', 'c', ',', 'x', '=', '-', '1', ',', 'y', '@-', '1', ',', 'z', '<=>', 'w', ',', 'p', '*/', 'q', ',', 'r', '+', '/*c*/', '-', 's', ',', 't', '=', '--c', '1']],
  ['a -+- b ?- c %- d := e => f :: g !=h <>i', ['a', '-', '+', '-', 'b', '?-', 'c', '%-', 'd', ':=', 'e', '=>', 'f', '::', 'g', '!=', 'h', '<>', 'i']],
  ['select \\ { } `', ['select', '\\', '{', '}', '`']],
  // lexical errors
  ['select 123abc', undefined],
  ['select 0x', undefined],
  ['select 1e', undefined],
  ["select 'abc", undefined],
  ['select /* a /* b */', undefined],
  ['select "x', undefined],
  ['select ""', undefined],
  ['select $a$ x', undefined],
  ['select $1abc', undefined],
  ["select E'\\xff'", undefined],
];

for (const [sql, expected] of cases) {
  test(`tokens of ${JSON.stringify(sql)}`, () => {
    const got = mine(sql)?.map((t) => sql.slice(t.start, t.end));
    assert.equal(got, expected);
    assert.ok(agree(sql), 'the oracle must be able to judge every hand-picked case');
  });
}

test('tokenEnd makes progress on every character, even one no rule matches', () => {
  for (let c = 1; c < 0x3000; c++) {
    const s = String.fromCharCode(c) + ' ';
    if (isSpace(c)) continue;
    const end = tokenEnd(s, 0, s.length);
    assert.ok(end === FAIL || end > 0, `stuck at U+${c.toString(16)}`);
  }
});

test.run();
