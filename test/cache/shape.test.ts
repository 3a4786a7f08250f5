// scanShape against PostgreSQL's own lexer (libpg-query's scanSync): on a
// generated corpus and on hand-picked tricky texts, the constants found must
// be exactly the lexer's constant tokens, and texts the lexer rejects must
// get no shape.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModule, scanSync } from 'libpg-query';
import { scanShape } from '../../src/cache/shape.js';
import { SqlText } from '../../src/rewrite/sql-text.js';
import { sqlCorpus as generator } from '../helpers/sql-corpus.js';

await loadModule();

// ── the oracle ──────────────────────────────────────────────────────────────

/** Token type numbers of this libpg-query build, read from a probe. */
const TYPE = (() => {
  const probe = "select 'a', U&'b', B'1', X'2', 3, 4.5 -- c\n";
  const t = scanSync(probe).tokens;
  const at = (text: string) => {
    const tok = t.find((x) => probe.slice(x.start, x.end) === text);
    if (!tok) throw new Error(`probe token ${text} missing`);
    return tok.tokenType;
  };
  return { S: at("'a'"), U: at("U&'b'"), B: at("B'1'"), X: at("X'2'"), I: at('3'), F: at('4.5'), comment: at('-- c'), param: scanSync('$1').tokens[0].tokenType };
})();
const KIND_OF = new Map<number, string>([[TYPE.S, 'S'], [TYPE.U, 'U'], [TYPE.B, 'B'], [TYPE.X, 'X'], [TYPE.I, 'I'], [TYPE.F, 'F']]);

interface Constant { start: number; end: number; kind: string }

const CONTINUATION_GAP = /^(?:[ \t\f\v\r\n]|--[^\r\n]*)*$/;

/** The oracle cannot tell how PostgreSQL lexes this text (see oracle()). */
const UNJUDGED = Symbol('unjudged');

/**
 * The constants PostgreSQL's lexer sees, or undefined if it rejects the text.
 * libpg-query emits `--` comments as tokens and so stops a literal at them;
 * PostgreSQL continues 'a'\n-- c\n'b' as one literal. Such pieces are merged
 * here by scan.l's {quotecontinue} rule. libpg-query lexed the merged piece
 * as a plain '…' string, while PostgreSQL lexes it in the first piece's state:
 * when that differs in effect (a '' in a continued B'…'/X'…', which ends those;
 * a backslash in a continued E'…') the text is UNJUDGED.
 * And PostgreSQL 18 rejects a parameter glued to an identifier ({param_junk}:
 * `$1abc`), which this libpg-query still reads as `$1` then `abc`.
 */
function oracle(sql: string): Constant[] | undefined | typeof UNJUDGED {
  let tokens;
  try {
    tokens = scanSync(sql).tokens;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/control character/.test(message)) throw new Error(`oracle cannot report ${JSON.stringify(sql)}: ${message}`);
    return undefined;
  }
  const text = new SqlText(sql); // the parser's UTF-8 byte offsets as string indices
  if (tokens.some((t) => t.tokenType === TYPE.param && /^[A-Za-z_\u0080-\uffff]/.test(sql.slice(text.index(t.end))))) return undefined;
  const out: Constant[] = [];
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    const kind = KIND_OF.get(t.tokenType);
    if (!kind) continue;
    let end = text.index(t.end);
    const start = text.index(t.start);
    const quoted = kind !== 'I' && kind !== 'F' && sql[start] !== '$';
    while (quoted) {
      let j = k + 1;
      while (j < tokens.length && tokens[j].tokenType === TYPE.comment) j++;
      if (j === k + 1 || j >= tokens.length || tokens[j].tokenType !== TYPE.S) break;
      const next = text.index(tokens[j].start);
      const gap = sql.slice(end, next);
      if (sql[next] !== "'" || !/[\r\n]/.test(gap) || !CONTINUATION_GAP.test(gap)) break;
      end = text.index(tokens[j].end);
      const piece = sql.slice(next + 1, end - 1);
      if (((kind === 'B' || kind === 'X') && piece.includes("''")) || (/^[eE]/.test(sql[start]) && piece.includes('\\'))) return UNJUDGED;
      k = j;
    }
    // Numbers only PostgreSQL 16+ reads as one token (0x/0o/0b, _) get their own kind (threat A11).
    const modern = (kind === 'I' || kind === 'F') && /^0[xXoObB]|_/.test(sql.slice(start, end));
    out.push({ start, end, kind: modern ? 'N' : kind });
  }
  return out;
}

function mine(sql: string): Constant[] | undefined {
  const shape = scanShape(sql);
  if (!shape) return undefined;
  const out: Constant[] = [];
  const kinds = [...shape.key.matchAll(/\u0000(.)/g)].map((m) => m[1]);
  for (let k = 0; k < shape.constants.length; k += 2) out.push({ start: shape.constants[k], end: shape.constants[k + 1], kind: kinds[k / 2] });
  // The key is the text with each constant replaced by its marker.
  let key = '';
  let last = 0;
  for (const c of out) {
    key += sql.slice(last, c.start) + '\u0000' + c.kind;
    last = c.end;
  }
  assert.is(shape.key, key + sql.slice(last), `key of ${JSON.stringify(sql)}`);
  return out;
}

const show = (sql: string, cs: Constant[] | undefined) => (cs ? cs.map((c) => `${c.kind}:${JSON.stringify(sql.slice(c.start, c.end))}`).join(' ') : 'no shape');

/** Compares with the oracle; false if the oracle cannot judge the text. */
function agree(sql: string): boolean {
  const expected = oracle(sql);
  const actual = mine(sql);
  if (expected === UNJUDGED) return false;
  assert.is(show(sql, actual), show(sql, expected), `constants of ${JSON.stringify(sql)}`);
  assert.equal(actual, expected, `spans of ${JSON.stringify(sql)}`);
  return true;
}

// ── the generated corpus (test/helpers/sql-corpus.ts) ───────────────────────

// Bounded and seeded for CI; SHAPE_FUZZ_CASES / SHAPE_FUZZ_SEED widen a local run.
const CASES = Number(process.env.SHAPE_FUZZ_CASES ?? 3000);
const SEED = Number(process.env.SHAPE_FUZZ_SEED ?? 20240611);

test(`constants match PostgreSQL's lexer on ${CASES} generated statements (seed ${SEED})`, () => {
  const next = generator(SEED);
  let shaped = 0;
  let constants = 0;
  let unjudged = 0;
  for (let i = 0; i < CASES; i++) {
    const sql = next();
    if (!agree(sql)) unjudged++;
    const s = scanShape(sql);
    if (s) {
      shaped++;
      constants += s.constants.length / 2;
    }
  }
  // The corpus must exercise both outcomes, not only lexical errors.
  assert.ok(shaped > CASES / 3, `only ${shaped} generated statements had a shape`);
  assert.ok(constants > CASES, `only ${constants} constants in the corpus`);
  assert.ok(unjudged < CASES / 100, `${unjudged} statements the oracle could not judge`);
});

// ── tricky cases, each also checked against the oracle ─────────────────────

const tricky: Array<[string, string[] | undefined]> = [
  ['select 1e5, e1, t1', ['1e5']],
  ['select t1.x1 from t1 where e1 = 2', ['2']],
  ['select 1::int, x::text', ['1']],
  ["select date '2020-01-01', interval '1 day'", ["'2020-01-01'", "'1 day'"]],
  ['select -5, - 6, 3-4, 3--4\n', ['5', '6', '3', '4', '3']],
  ['select $1, $2::int, $1$a$x$a$, $1\'x\'', ["$a$x$a$", "'x'"]],
  ['select $$a$b$$, $tag$ $x$ $$ $tag$, $é$x$é$', ['$$a$b$$', '$tag$ $x$ $$ $tag$', '$é$x$é$']],
  ["select $ab$c$ab$d$ab$", ['$ab$c$ab$']],
  ["select a$1, abc$$x$$", []],
  ["select E'a\\'b', e'\\\\', E'\\u00e9\\U0001F600\\uD83D\\uDE00'", ["E'a\\'b'", "e'\\\\'", "E'\\u00e9\\U0001F600\\uD83D\\uDE00'"]],
  ["select E'\\xc3\\xa9', E'\\x', E'\\é'", ["E'\\xc3\\xa9'", "E'\\x'", "E'\\é'"]],
  ["select B'101', b'', X'1F', x'ab'", ["B'101'", "b''", "X'1F'", "x'ab'"]],
  ["select B'10''01'", ["B'10'", "'01'"]],
  ["select U&'d\\0061t', U&'d!0061t' UESCAPE '!'", ["U&'d\\0061t'", "U&'d!0061t'", "'!'"]],
  ['select U&"d\\0061t", u&"x" from t', []],
  ["select N'abc', n'x', nx'y'", ["'abc'", "'x'", "'y'"]],
  ['select 0x1F, 0X_ff, 0o17, 0b101, 1_000, 1_000.000_1e1_0', ['0x1F', '0X_ff', '0o17', '0b101', '1_000', '1_000.000_1e1_0']],
  ['select .5, 1., 1.e3, .5e-3, 1e+5$', ['.5', '1.', '1.e3', '.5e-3', '1e+5']],
  ['select 1..2, 1...3, ..5', ['1', '2', '1', '.3', '5']],
  ['select 1$, 1_0 $1, 1_0.$, 1_0.5$, 1e+5$, .5$', ['1', '1_0', '1_0.', '1_0.5', '1e+5', '.5']],
  ['select 0x1F.5, 1e5.5, 1.5.3', ['0x1F', '.5', '1e5', '.5', '1.5', '.3']],
  ['select 2147483647, 2147483648, 0x7FFFFFFF, 0x80000000, 99999999999999999999', ['2147483647', '2147483648', '0x7FFFFFFF', '0x80000000', '99999999999999999999']],
  ["select 'a' 'b', 'it''s', '''', ''", ["'a'", "'b'", "'it''s'", "''''", "''"]],
  ["select 'a'\n'b', 'c'  \r  'd'", ["'a'\n'b'", "'c'  \r  'd'"]],
  ["select 'a'\n-- note\n'b', 'c' -- x\n 'd'", ["'a'\n-- note\n'b'", "'c' -- x\n 'd'"]],
  ["select 'a'\n/* no */'b'", ["'a'", "'b'"]],
  ["select b'1'\n'0', x'f'\n'0', E'\\n'\n'\\t'", ["b'1'\n'0'", "x'f'\n'0'", "E'\\n'\n'\\t'"]],
  ['select "x""y", "\'", "a--b", "/*"', []],
  ['select 1 /* a /* b */ c */ + 2 /**/ -- 3\n', ['1', '2']],
  ["select 1 /* ' */, '/*', '--', 2 --'\n", ['1', "'/*'", "'--'", '2']],
  ['select 1+--2\n3', ['1', '3']],
  ["select 'é😀', '語' || 3 as \"ü\", 'x' from \"😀\"", ["'é😀'", "'語'", '3', "'x'"]],
  ['select 1\f,2\v,3', ['1', '2', '3']],
  ["select set_config('search_path', 'crm', false)", ["'search_path'", "'crm'"]],
  ["select t.5, tee'x', é'y', $😀$z$😀$, U&'a'\n'b'", ['.5', "'x'", "'y'", '$😀$z$😀$', "U&'a'\n'b'"]],
  // rejected by the lexer: no shape
  ['select 0x', undefined],
  ['select 0xg1', undefined],
  ['select 1e', undefined],
  ['select 1e+', undefined],
  ['select 1e5$', undefined],
  ['select 1_', undefined],
  ['select 1__0', undefined],
  ['select 1_0$', undefined],
  ['select 1_0.5_5$', undefined],
  ['select .5_5$', undefined],
  ['select 1e+5_5$', undefined],
  ['select 1e5_5$', undefined],
  ['select 0x1_F$', undefined],
  ['select 1.x', undefined],
  ['select 123abc', undefined],
  ['select 0b102', undefined],
  ['select $99999999999', undefined],
  ['select $1abc', undefined],
  ["select $1E'x'", undefined],
  ["select 'abc", undefined],
  ["select 'a''", undefined],
  ['select /* a /* b */', undefined],
  ['select "x', undefined],
  ['select ""', undefined],
  ['select U&""', undefined],
  ['select $a$ x $b$', undefined],
  ["select E'\\'", undefined],
  ["select E'\\xff'", undefined],
  ["select E'\\u12'", undefined],
  ["select E'\\uD800'", undefined],
  ["select E'\\uDC00'", undefined],
  ["select E'\\0'", undefined],
  ["select E'\\U00110000'", undefined],
  ["select B'1", undefined],
];

for (const [sql, expected] of tricky) {
  test(`tricky: ${JSON.stringify(sql)}`, () => {
    const s = scanShape(sql);
    const got = s ? Array.from({ length: s.constants.length / 2 }, (_, k) => sql.slice(s.constants[2 * k], s.constants[2 * k + 1])) : undefined;
    assert.equal(got, expected);
    assert.ok(agree(sql), 'the oracle must be able to judge every tricky case');
  });
}

test('a NUL anywhere means no shape (the key markers must be unambiguous)', () => {
  assert.is(scanShape('select x\u0000I'), undefined);
  assert.is(scanShape("select '\u0000'"), undefined);
  assert.is(scanShape('select 1 -- \u0000'), undefined);
});

test('no constants: the key is the text itself', () => {
  const sql = 'select a, "b" from t -- note';
  assert.is(scanShape(sql)?.key, sql);
  assert.is(scanShape(sql)?.constants.length, 0);
  assert.is(scanShape('')?.key, ''); // (libpg-query's scanSync throws on empty input, so not an oracle case)
});

test('constants of different kinds give different keys', () => {
  const keys = ["x = 1", "x = 1.0", "x = '1'", "x = B'1'", "x = X'1'", "x = U&'1'"].map((s) => scanShape(s)?.key);
  assert.is(new Set(keys).size, keys.length);
  assert.is(scanShape('x = 3000000000')?.key, scanShape('x = 1.0')?.key); // both FCONST to the parser
  assert.is(scanShape("x = E'1'")?.key, scanShape("x = '1'")?.key);
  assert.is(scanShape('x = $$1$$')?.key, scanShape("x = '1'")?.key);
});

test('A11 a number spelled 0x10, 0o17, 0b101 or 1_000 never shares a shape with a decimal one (PostgreSQL 14 splits it)', () => {
  const decimal = scanShape('select 16 from t where a = 1000')!.key;
  for (const sql of ['select 0x10 from t where a = 1000', 'select 0o20 from t where a = 1000', 'select 0b10000 from t where a = 1000',
    'select 16 from t where a = 1_000', 'select 1_6 from t where a = 1000']) {
    assert.is.not(scanShape(sql)!.key, decimal, sql);
  }
  assert.is(scanShape('select 0x10')!.key, scanShape('select 0xFF')!.key, 'hex numbers share a shape among themselves');
  assert.is(scanShape('select 1.5e3')!.key, scanShape('select 2.5')!.key, 'ordinary floats are unaffected');
});

test('pgbench statements with different aids share one shape', () => {
  const a = scanShape('SELECT abalance FROM pgbench_accounts WHERE aid = 48213;');
  const b = scanShape('SELECT abalance FROM pgbench_accounts WHERE aid = 7;');
  assert.ok(a && b);
  assert.is(a.key, b.key);
  assert.is(a.key, 'SELECT abalance FROM pgbench_accounts WHERE aid = \u0000I;');
  // different comments, different keys: fine, just another entry
  assert.is.not(scanShape('SELECT 1 /* a */')?.key, scanShape('SELECT 1 /* b */')?.key);
});

// Evidence for the rewriter: a shape hides the values the analysis may have
// read. These statements set different search_paths (or different settings
// altogether) yet have one shape, so their outcomes must be cached by full
// text only (the analyzer's shapeSafe = false), never by shape.
test('set_config with different values has ONE shape key: such statements must be keyed by full text', () => {
  const crm = scanShape("SELECT set_config('search_path', 'crm', false)");
  const pub = scanShape("SELECT set_config('search_path', 'public', false)");
  const workMem = scanShape("SELECT set_config('work_mem', '64MB', false)");
  assert.ok(crm && pub && workMem);
  assert.is(crm.key, pub.key);
  assert.is(crm.key, workMem.key);
  assert.is(crm.key, 'SELECT set_config(\u0000S, \u0000S, false)');
  // SET's value is an identifier or a constant depending on how it is written
  assert.is(scanShape("SET search_path = 'crm'")?.key, scanShape("SET search_path = 'public'")?.key);
  assert.is.not(scanShape('SET search_path = crm')?.key, scanShape('SET search_path = public')?.key);
});

test.run();
