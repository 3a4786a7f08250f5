// Templates: for random statements rewritten by a stand-in rewriter (which
// splices subqueries in place of table names and keeps everything else, as
// src/rewrite/splice.ts does), filling the template of one statement with the
// constants of another of the same shape gives exactly the rewrite of that
// other statement.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { scanShape } from '../../src/cache/shape.js';
import { fillTemplate, makeTemplate, slotsFromMap } from '../../src/cache/template.js';
import { mulberry32 } from '../helpers/random.js';

type Kind = 'I' | 'N' | 'F' | 'S' | 'B' | 'X' | 'U';
type Token = { text: string; kind: Kind | 'table' | 'other' };

function generator(seed: number) {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const word = () => Array.from({ length: int(6) }, () => pick(['a', 'b', ' ', 'é', '😀', "''", '-', '$', '\\'])).join('');

  const constant: Record<Kind, () => string> = {
    I: () => pick([String(int(100000)), '2147483647']),
    // Spelled the 16+ way: a shape of their own (threat A11, PostgreSQL 14 splits them).
    N: () => pick(['0x' + int(4096).toString(16), '1_000', '0b101', '0o17']),
    F: () => pick([`${int(1000)}.${int(100)}`, `.${int(99) + 1}`, `${int(9)}e${int(20)}`, '3000000000', `${int(50)}.`, '1.5E-3']),
    S: () => pick([
      () => `'${word()}'`,
      () => `E'${word().replace(/\\/g, '\\\\').replace(/''/g, "\\'")}\\n'`,
      () => `$$${word().replace(/\$/g, '')}$$`,
      () => `$q$${word()}$q$`,
      () => `'${word()}'\n'${word()}'`,
    ])(),
    B: () => `B'${int(64).toString(2)}'`,
    X: () => `X'${int(4096).toString(16)}'`,
    U: () => pick(["U&'d\\0061t'", `U&'${word().replace(/\\/g, '')}'`]),
  };
  const kinds: Kind[] = ['I', 'I', 'N', 'F', 'S', 'S', 'S', 'B', 'X', 'U'];
  const others = ['select', 'x', '"Col ""q"""', '=', '<>', '(', ')', ',', 'and', '::int', '-', 'date', 'in', '||', '$1', 'ü'];
  const tables = ['t', 'public.accounts', '"Orders"', 'crm.deals'];
  const seps = [' ', ' ', '  ', '\t', ' /* c */ ', '\n', ' -- note\n'];

  /** A statement as tokens; the kinds of its constants fixed, their texts random. */
  const statement = (): Token[] => {
    const out: Token[] = [];
    const n = 3 + int(25);
    for (let i = 0; i < n; i++) {
      const r = rnd();
      if (r < 0.4) out.push({ text: '', kind: pick(kinds) });
      else if (r < 0.55) out.push({ text: pick(tables), kind: 'table' });
      else out.push({ text: pick(others), kind: 'other' });
    }
    return out;
  };
  /** The same statement with fresh constants of the same kinds. */
  const fill = (tokens: Token[]): Token[] => tokens.map((t) => (t.kind in constant ? { text: constant[t.kind as Kind](), kind: t.kind } : t));
  /** Separators, fixed per statement so two fillings share the text around constants. */
  const separators = (tokens: Token[]): string[] => tokens.map((t, i) => {
    const next = tokens[i + 1];
    // a newline before a quote would continue the previous string literal
    return next && /^[SBXU]$/.test(next.kind) ? ' ' : pick(seps);
  });
  return { statement, fill, separators, int };
}

const SUBQUERY = (t: string) => `(SELECT a, b, CASE WHEN k = 'secret' THEN 'x' ELSE b END FROM ONLY ${t} WHERE org_id = 42) AS t`;

/** The stand-in rewriter: the text, its rewrite, and where the constants sit in each. */
function render(tokens: Token[], seps: string[]) {
  let sql = '';
  let rewritten = '';
  const inSql: number[] = [];
  const inRewritten: number[] = [];
  tokens.forEach((t, i) => {
    const isConstant = t.kind !== 'table' && t.kind !== 'other';
    if (isConstant) {
      inSql.push(sql.length, sql.length + t.text.length);
      inRewritten.push(rewritten.length, rewritten.length + t.text.length);
    }
    sql += t.text + seps[i];
    rewritten += (t.kind === 'table' ? SUBQUERY(t.text) : t.text) + seps[i];
  });
  return { sql, rewritten, inSql, inRewritten };
}

test('fill(makeTemplate(rewrite(x))) with the constants of y equals rewrite(y), 2,000 random pairs (seed 7)', () => {
  const g = generator(7);
  for (let round = 0; round < 2000; round++) {
    const tokens = g.statement();
    const seps = g.separators(tokens);
    const x = render(g.fill(tokens), seps);
    const y = render(g.fill(tokens), seps);
    const sx = scanShape(x.sql);
    const sy = scanShape(y.sql);
    assert.ok(sx && sy, `no shape: ${JSON.stringify(x.sql)}`);
    assert.equal(Array.from(sx.constants), x.inSql, `constants of ${JSON.stringify(x.sql)}`);
    assert.is(sy.key, sx.key, `${JSON.stringify(x.sql)} and ${JSON.stringify(y.sql)} have one shape`);
    const template = makeTemplate(x.rewritten, Int32Array.from(x.inRewritten), { sql: x.sql, shape: sx });
    assert.is(fillTemplate(template, y.sql, sy), y.rewritten);
    assert.is(fillTemplate(template, x.sql, sx), x.rewritten);
  }
});

test('slotsFromMap maps constants through the rewriter\'s index map', () => {
  const sql = "SELECT * FROM t WHERE a = 5 AND b = 'x'";
  const shape = scanShape(sql);
  assert.ok(shape);
  const edit = { start: 14, end: 15, text: SUBQUERY('t') };
  const rewritten = sql.slice(0, edit.start) + edit.text + sql.slice(edit.end);
  const shift = edit.text.length - 1;
  const slots = slotsFromMap(shape, (i) => (i > edit.start ? i + shift : i));
  const t = makeTemplate(rewritten, slots, { sql, shape });
  const other = "SELECT * FROM t WHERE a = 123456 AND b = E'it\\'s'";
  const otherShape = scanShape(other);
  assert.ok(otherShape);
  assert.is(fillTemplate(t, other, otherShape), other.slice(0, edit.start) + edit.text + other.slice(edit.end));
});

test('the pgbench statement: one template serves every aid', () => {
  const sql = 'SELECT abalance FROM pgbench_accounts WHERE aid = 48213;';
  const shape = scanShape(sql);
  assert.ok(shape);
  const sub = '(SELECT aid, bid, abalance, filler FROM ONLY public.pgbench_accounts WHERE bid = 1) AS pgbench_accounts';
  const rewritten = sql.replace('pgbench_accounts', sub);
  const at = rewritten.indexOf('48213');
  const t = makeTemplate(rewritten, Int32Array.of(at, at + 5), { sql, shape });
  for (const aid of ['1', '99999', '0x10', '2147483647']) {
    const next = `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`;
    const s = scanShape(next);
    assert.ok(s);
    assert.is(fillTemplate(t, next, s), rewritten.replace('48213', aid));
  }
});

test('the contract check refuses templates that would misplace constants', () => {
  const sql = "SELECT * FROM t WHERE a = 5 AND b = 'x'";
  const shape = scanShape(sql);
  assert.ok(shape);
  const a = sql.indexOf('5');
  const b = sql.indexOf("'x'");
  const ok = Int32Array.of(a, a + 1, b, b + 3);
  makeTemplate(sql, ok, { sql, shape }); // the identity rewrite is fine
  assert.throws(() => makeTemplate(sql, Int32Array.of(a, a + 1), { sql, shape }), /1 slots, the statement 2/);
  assert.throws(() => makeTemplate(sql, Int32Array.of(a - 1, a + 1, b, b + 3), { sql, shape }), /does not hold/);
  // an edit glued to a constant: 'x' would become part of an identifier's neighbourhood
  const glued = sql.slice(0, b) + "E'x'";
  assert.throws(() => makeTemplate(glued, Int32Array.of(a, a + 1, b + 1, b + 4), { sql, shape }), /surrounded/);
  // the slot text matches but the rewritten text lexes it differently ('5' inside a string)
  const inside = sql.slice(0, a) + "'5" + sql.slice(a + 1, b) + "'";
  assert.throws(() => makeTemplate(inside, Int32Array.of(a + 1, a + 2, inside.length - 1, inside.length), { sql, shape }));
  assert.throws(() => makeTemplate(sql, Int32Array.of(a, a + 1, a, a + 1)), /overlap/);
  assert.throws(() => makeTemplate(sql, Int32Array.of(a)), /pairs/);
});

test('constants the rewriter moved ahead of others are filled from the right source constant', () => {
  const sql = "SELECT * FROM t WHERE a = 5 AND b = 'x'";
  const shape = scanShape(sql);
  assert.ok(shape);
  const moved = "SELECT * FROM (SELECT * FROM t WHERE (b = 'x')) s WHERE a = 5 AND true";
  const t = makeTemplate(moved, Int32Array.of(moved.indexOf('5'), moved.indexOf('5') + 1, moved.indexOf("'x'"), moved.indexOf("'x'") + 3), { sql, shape });
  assert.ok(t.order);
  const next = "SELECT * FROM t WHERE a = 77 AND b = 'yy'";
  assert.is(fillTemplate(t, next, scanShape(next)!), "SELECT * FROM (SELECT * FROM t WHERE (b = 'yy')) s WHERE a = 77 AND true");
});

test('fill refuses a statement of another shape', () => {
  const t = makeTemplate('select 1', Int32Array.of(7, 8));
  const s = scanShape('select 1, 2');
  assert.ok(s);
  assert.throws(() => fillTemplate(t, 'select 1, 2', s), /shape/);
});

test.run();
