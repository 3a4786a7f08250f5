// sqlLiteral / quoteIdent: shapes, rejections, and a property test against a
// real PostgreSQL — random hostile strings must read back exactly, under
// standard_conforming_strings on and off, over the simple query protocol.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type pg from 'pg';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/demo/embedded-postgres.js';
import { dollarQuote, LiteralError, qualifiedName, quoteIdent, quoteRelationKey, sqlLiteral } from '../../src/policy/literals.js';

let server: RunningPostgres;
let db: pg.Client;

test.before(async () => {
  server = await startEmbeddedPostgres();
  db = await server.connect();
});

test.after(async () => {
  await db?.end();
  await server?.stop();
});

/** A small seeded PRNG so a failure can be replayed (the seed is in the message). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pieces = ["'", "''", '"', '\\', "\\'", '$', '$$', '$pgv$', '$pgv', 'pgv$', '$pgv1$', '$pgv2$', '$pgv$$pgv$', '--', '/*', '*/', ';',
  '\n', '\r\n', '\t', ' ', 'a', 'Z', '0', 'é', '漢字', '😀', '\u2028', '\u00a0', "E'", 'U&', '\\x41', "O'Neill", ')', '(', '::text', '%', '_'];

function randomString(next: () => number): string {
  const n = Math.floor(next() * 14);
  let s = '';
  for (let i = 0; i < n; i++) s += pieces[Math.floor(next() * pieces.length)];
  return s;
}

async function readBack(literals: string[], scs: 'on' | 'off'): Promise<Array<{ v: unknown; t: string }>> {
  await db.query(`SET standard_conforming_strings = ${scs}`);
  await db.query('SET escape_string_warning = off');
  // One column per literal (VALUES would coerce them all to one type).
  const cols = literals.map((l, i) => `${l} AS v${i}, pg_catalog.pg_typeof(${l})::pg_catalog.text AS t${i}`).join(',\n');
  const r = await db.query<Record<string, unknown>>(`SELECT ${cols}`);
  return literals.map((_, i) => ({ v: r.rows[0][`v${i}`], t: String(r.rows[0][`t${i}`]) }));
}

test('strings: dollar-quoted with a tag that is not in the value, typed pg_catalog.text', () => {
  assert.is(sqlLiteral("O'Neill"), "$pgv$O'Neill$pgv$::pg_catalog.text");
  assert.is(sqlLiteral(''), '$pgv$$pgv$::pg_catalog.text');
  assert.is(sqlLiteral('a$pgv$b'), '$pgv1$a$pgv$b$pgv1$::pg_catalog.text');
  // The value ends in "$pgv": with tag $pgv$ the closing tag would start inside the value.
  assert.is(dollarQuote('x$pgv'), '$pgv1$x$pgv$pgv1$');
  assert.is(dollarQuote('$pgv$ $pgv1$'), '$pgv2$$pgv$ $pgv1$$pgv2$');
});

test('numbers, booleans, null, dates', () => {
  assert.is(sqlLiteral(17), '17::pg_catalog.int8');
  assert.is(sqlLiteral(0), '0::pg_catalog.int8');
  assert.is(sqlLiteral(-3), "'-3'::pg_catalog.int8", 'a negative number never follows an operator as "-"');
  assert.is(sqlLiteral(1.5), "'1.5'::pg_catalog.numeric");
  assert.is(sqlLiteral(1e21), "'1e+21'::pg_catalog.numeric");
  assert.is(sqlLiteral(2n ** 70n), '1180591620717411303424::pg_catalog.numeric');
  assert.is(sqlLiteral(true), 'true');
  assert.is(sqlLiteral(false), 'false');
  assert.is(sqlLiteral(null), 'NULL::pg_catalog.text');
  assert.is(sqlLiteral(new Date('2026-01-02T03:04:05.006Z')), "'2026-01-02T03:04:05.006Z'::pg_catalog.timestamptz");
});

test('arrays: one element type, empty is text[], mixed scalars read as text', () => {
  assert.is(sqlLiteral([]), "'{}'::pg_catalog.text[]");
  assert.is(sqlLiteral(['EU', "O'N"]), "ARRAY[$pgv$EU$pgv$::pg_catalog.text, $pgv$O'N$pgv$::pg_catalog.text]::pg_catalog.text[]");
  assert.is(sqlLiteral([1, -2]), "ARRAY[1::pg_catalog.int8, '-2'::pg_catalog.int8]::pg_catalog.int8[]");
  assert.is(sqlLiteral([1, 2.5]), "ARRAY[1::pg_catalog.numeric, '2.5'::pg_catalog.numeric]::pg_catalog.numeric[]");
  assert.is(sqlLiteral([true]), 'ARRAY[true]::pg_catalog.bool[]');
  assert.is(sqlLiteral(['EU', 17, true]), 'ARRAY[$pgv$EU$pgv$::pg_catalog.text, $pgv$17$pgv$::pg_catalog.text, $pgv$true$pgv$::pg_catalog.text]::pg_catalog.text[]');
});

test('anything else is refused', () => {
  for (const bad of [{}, { a: 1 }, undefined, NaN, Infinity, [[1]], [null], [{}], 'nul\0byte', 'lone \uD800 surrogate', () => 1, Symbol('s'), new Date('x')]) {
    assert.throws(() => sqlLiteral(bad), (e: unknown) => e instanceof LiteralError, String(typeof bad));
  }
});

test('identifiers are always double-quoted', () => {
  assert.is(quoteIdent('employees'), '"employees"');
  assert.is(quoteIdent('Emp"loyees'), '"Emp""loyees"');
  assert.is(quoteIdent('select'), '"select"');
  assert.is(qualifiedName('crm', 'employees'), '"crm"."employees"');
  assert.is(quoteRelationKey('crm.employees'), '"crm"."employees"');
  assert.is(quoteRelationKey('"Sales"."Big Orders"'), '"Sales"."Big Orders"');
  assert.throws(() => quoteIdent(''));
  assert.throws(() => quoteIdent('a\0b'));
  assert.throws(() => quoteRelationKey('justone'));
});

test('quoted identifiers read back as the same name in PostgreSQL', async () => {
  for (const name of ['employees', 'Mixed Case', 'we"ird', 'select', "o'neill", '$pgv$', 'é漢']) {
    const r = await db.query<{ n: string }>(`SELECT n FROM (SELECT 1 AS ${quoteIdent(name)}) s(n)`);
    assert.is(r.rows.length, 1);
    const c = await db.query(`SELECT 1 AS ${quoteIdent(name)}`);
    assert.is(c.fields[0].name, name);
  }
});

for (const scs of ['on', 'off'] as const) {
  test(`property: 400 random hostile strings read back exactly with standard_conforming_strings=${scs}`, async () => {
    const seed = 20260 + (scs === 'on' ? 1 : 2);
    const next = rng(seed);
    const values = Array.from({ length: 400 }, () => randomString(next));
    values.push("o'; drop table x; --", '\\', "\\'", '$pgv$', 'x$pgv', '$pgv1$$pgv$');
    const got = await readBack(values.map(sqlLiteral), scs);
    values.forEach((v, i) => {
      assert.is(got[i].v, v, `seed ${seed}, case ${i}: ${JSON.stringify(v)}`);
      assert.is(got[i].t, 'text');
    });
  });

  test(`property: numbers, arrays and booleans read back exactly with standard_conforming_strings=${scs}`, async () => {
    const next = rng(99 + (scs === 'on' ? 0 : 1));
    const ints = Array.from({ length: 50 }, () => Math.floor((next() - 0.5) * 2 * Number.MAX_SAFE_INTEGER));
    const reals = Array.from({ length: 50 }, () => (next() - 0.5) * 10 ** Math.floor(next() * 30 - 10));
    const lits = [...ints, ...reals].map(sqlLiteral);
    const got = await readBack(lits, scs);
    ints.forEach((n, i) => { assert.is(got[i].v, String(n)); assert.is(got[i].t, 'bigint'); });
    reals.forEach((x, i) => { assert.is(Number(got[50 + i].v), x, `${x}`); assert.is(got[50 + i].t, Number.isSafeInteger(x) ? 'bigint' : 'numeric'); });
    const arrays: unknown[][] = [[], ["a'b", '$pgv$', '\\'], [1, -2, 3], [true, false], ['EU', 17]];
    const r = await readBack(arrays.map(sqlLiteral), scs);
    assert.equal(r.map((x) => x.t), ['text[]', 'text[]', 'bigint[]', 'boolean[]', 'text[]']);
    assert.equal(r[0].v, []);
    assert.equal(r[1].v, ["a'b", '$pgv$', '\\']);
    assert.equal(r[2].v, ['1', '-2', '3']);
    assert.equal(r[3].v, [true, false]);
    assert.equal(r[4].v, ['EU', '17']);
    const misc = await readBack([sqlLiteral(null), sqlLiteral(true), sqlLiteral(2n ** 70n)], scs);
    assert.equal(misc.map((x) => x.t), ['text', 'boolean', 'numeric']);
    assert.is(misc[0].v, null);
    assert.is(misc[2].v, (2n ** 70n).toString());
  });
}

test('a literal is one operand wherever a placeholder stands (after "-", after a name, inside ANY)', async () => {
  await db.query('SET standard_conforming_strings = on');
  // compile.ts wraps every bound literal in parentheses: `x-` + `(-3)` can never become a `--` comment.
  const r = await db.query<{ a: string; b: boolean }>(`SELECT 5-(${sqlLiteral(-3)}) AS a, 'EU' = ANY((${sqlLiteral(['EU', 'US'])})) AS b`);
  assert.is(r.rows[0].a, '8');
  assert.is(r.rows[0].b, true);
});

test.run();
