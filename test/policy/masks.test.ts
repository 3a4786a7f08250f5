// maskExpression on a real PostgreSQL: for every mask kind and every column
// type it fits, the value comes out as documented and of exactly the column's
// type (pg_typeof, and RowDescription type OID and typmod equal to selecting
// the raw column). checkMaskFits refuses what does not fit. Expressions keep
// their meaning under a hostile search_path and standard_conforming_strings=off (C5).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import type pg from 'pg';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/demo/embedded-postgres.js';
import type { CatalogColumn } from '../../src/catalog/types.js';
import { checkMaskFits, maskExpression } from '../../src/policy/masks.js';
import { maskKinds } from '../../src/policy/mask-kinds.js';
import { scrambleInstallSql, scrambleKeyFromSecret } from '../../src/policy/scramble-sql.js';
import { quoteIdent } from '../../src/policy/literals.js';
import type { MaskKind, MaskSpec } from '../../src/policy/types.js';

let server: RunningPostgres;
let db: pg.Client;
let columns: CatalogColumn[];
const key = scrambleKeyFromSecret('masks test key');

const schemaSql = `
  CREATE SCHEMA crm;
  CREATE DOMAIN crm.ssn_t AS varchar(11);
  CREATE TYPE crm.mood AS ENUM ('sad', 'ok', 'happy');
  CREATE TABLE crm.m (
    id int PRIMARY KEY,
    t text, vc varchar(12), bp char(6), nm name,
    i2 int2, i4 int4, i8 int8, num numeric, num102 numeric(10,2), f4 float4, f8 float8, mon money,
    d date, ts timestamp(3), tstz timestamptz, tstz0 timestamptz(0), tm time(2), tmtz timetz,
    iv interval, ivym interval year to month, iv3 interval(3),
    b bool, u uuid, j json, jb jsonb, by bytea, ip inet, cd cidr, mac macaddr,
    bt bit(5), vb varbit(8), arr int4[], tarr varchar(5)[], ssn crm.ssn_t, mood crm.mood, rng int4range, pt point
  );
  INSERT INTO crm.m VALUES
   (1, 'alice@example.com', 'ABCDEFGHIJKL', 'ab', 'some_name',
    -7, 123456, 9007199254740993, 1234.5678, 12345.67, 151.25, 1234.5, 12.34,
    '2024-05-17', '2024-05-17 13:14:15.123', '2024-05-31 23:30:00+00', '2024-05-17 13:14:15+00', '13:14:15.12', '13:14:15+02',
    '1 day 2 hours', '1 year 2 months', '3 seconds',
    true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a":1}', '{"a":1}', '\\xdeadbeef', '10.1.2.3', '10.1.0.0/16', '08:00:2b:01:02:03',
    B'10101', B'1101', '{1,2,3}', '{ab,cd}', '123-45-6789', 'happy', '[1,5)', '(1,2)'),
   (2, NULL, NULL, NULL, NULL,  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,  NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL,  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
   (3, 'no-at-sign', 'x', 'abcdef', 'n',  32767, -2147483648, -1, 42, -0.01, -0.5, 1e300, 0,
    '1999-12-31', '1999-12-31 23:59:59.999', '1999-12-31 23:59:59+00', '1999-12-31 23:59:59+00', '23:59:59', '00:00:00+00',
    '-1 day', '-1 month', '0',  false, '00000000-0000-0000-0000-000000000001', '[]', '[]', '\\x', '::1', '::/0', 'ff:ff:ff:ff:ff:ff',
    B'00000', B'', '{}', '{}', '000-00-0000', 'sad', 'empty', '(0,0)');
`;

/** Catalog-shaped columns, read the way the catalog loader does: format_type under search_path = pg_catalog. */
async function readColumns(): Promise<CatalogColumn[]> {
  await db.query('BEGIN');
  await db.query("SELECT pg_catalog.set_config('search_path', 'pg_catalog', true)");
  const r = await db.query<{ name: string; attnum: number; type_oid: number; typmod: number; sql_type: string; base_type: string; category: string; not_null: boolean }>(`
    SELECT a.attname AS name, a.attnum, a.atttypid::int AS type_oid, a.atttypmod AS typmod,
           format_type(a.atttypid, a.atttypmod) AS sql_type, bt.typname AS base_type, bt.typcategory AS category, a.attnotnull AS not_null
      FROM pg_attribute a
      JOIN pg_type t ON t.oid = a.atttypid
      JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
     WHERE a.attrelid = 'crm.m'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`);
  await db.query('COMMIT');
  return r.rows.map((c) => ({ name: c.name, attnum: c.attnum, typeOid: c.type_oid, typmod: c.typmod, sqlType: c.sql_type, baseType: c.base_type, category: c.category, notNull: c.not_null }));
}

function col(name: string): CatalogColumn {
  const c = columns.find((x) => x.name === name);
  if (!c) throw new Error(`no column ${name}`);
  return c;
}

const spec = (kind: MaskKind, options: Record<string, unknown> = {}): MaskSpec => ({ kind, options });

/** One representative spec per kind (options chosen to show their effect). */
const specs: MaskSpec[] = [
  spec('full'),
  spec('partial', { keepFirst: 1, keepLast: 2, fill: '*' }),
  spec('email'),
  spec('scramble'),
  spec('hash'),
  spec('null'),
  spec('truncate', { to: 'month' }),
  spec('round', { step: 100 }),
  spec('custom', { expr: '(${column})', parts: ['(', ')'] }),
];

interface Masked { values: unknown[]; typeOid: number; typmod: number; types: string[]; rawTypeOid: number; rawTypmod: number; rawTypes: string[] }

/** The mask over every sample row (ordered by id), with its RowDescription type next to the raw column's. */
async function run(s: MaskSpec, column: CatalogColumn, client: pg.Client = db): Promise<Masked> {
  const ref = `${quoteIdent('t')}.${quoteIdent(column.name)}`;
  const expr = maskExpression(s, column, ref);
  const r = await client.query({
    text: `SELECT ${expr} AS masked, ${ref} AS raw, pg_catalog.pg_typeof(${expr})::pg_catalog.text AS mt, pg_catalog.pg_typeof(${ref})::pg_catalog.text AS rt
             FROM crm.m t ORDER BY t.id`,
    rowMode: 'array',
  });
  return {
    values: r.rows.map((row: unknown[]) => row[0]),
    typeOid: r.fields[0].dataTypeID,
    typmod: r.fields[0].dataTypeModifier,
    types: r.rows.map((row: unknown[]) => String(row[2])),
    rawTypeOid: r.fields[1].dataTypeID,
    rawTypmod: r.fields[1].dataTypeModifier,
    rawTypes: r.rows.map((row: unknown[]) => String(row[3])),
  };
}

async function values(s: MaskSpec, name: string): Promise<unknown[]> {
  return (await run(s, col(name))).values;
}

const hmacHex = (tag: string, value: string) => createHmac('sha256', key).update(tag + value, 'utf8').digest('hex');

test.before(async () => {
  server = await startEmbeddedPostgres();
  db = await server.connect();
  await db.query(schemaSql);
  await db.query('CREATE ROLE svc LOGIN');
  await db.query(scrambleInstallSql(key, { serviceRole: 'svc' }));
  columns = await readColumns();
});

test.after(async () => {
  await db?.end();
  await server?.stop();
});

test('the representative specs cover every mask kind (a new kind is tested on every type here)', () => {
  assert.equal(specs.map((s) => s.kind).sort(), Object.keys(maskKinds).sort());
});

test('every kind on every column it fits: the type OID, typmod and pg_typeof equal the column\'s; NULL stays NULL except for full', async () => {
  let checked = 0;
  for (const column of columns.filter((c) => c.name !== 'id')) {
    for (const s of specs) {
      if (checkMaskFits(s, column)) continue;
      const m = await run(s, column);
      const what = `${s.kind} on ${column.name} ${column.sqlType}`;
      assert.is(m.typeOid, m.rawTypeOid, `${what}: type OID`);
      assert.is(m.typmod, m.rawTypmod, `${what}: typmod`);
      assert.equal(m.types, m.rawTypes, `${what}: pg_typeof`);
      if (s.kind === 'full') assert.ok(m.values[1] !== null, `${what}: NULL becomes the constant`);
      else assert.is(m.values[1], null, `${what}: NULL stays NULL`);
      checked++;
    }
  }
  assert.ok(checked > 100, `checked ${checked} combinations`);
});

test('which kinds fit which types (checkMaskFits)', () => {
  const fits = (kind: MaskKind, name: string, options: Record<string, unknown> = {}) => checkMaskFits(spec(kind, options), col(name)) === undefined;
  for (const c of columns) {
    assert.ok(fits('null', c.name), c.name);
    assert.ok(fits('custom', c.name), c.name);
  }
  for (const name of ['t', 'vc', 'bp', 'nm', 'ssn']) {
    for (const k of ['partial', 'email', 'hash', 'scramble', 'full'] as const) assert.ok(fits(k, name, { step: 1 }), `${k} ${name}`);
  }
  for (const name of ['i2', 'i4', 'i8', 'num', 'u']) assert.ok(fits('scramble', name), name);
  for (const name of ['i2', 'i4', 'i8', 'num', 'num102', 'f4', 'f8']) assert.ok(fits('round', name, { step: 10 }), name);
  for (const name of ['d', 'ts', 'tstz', 'tstz0']) assert.ok(fits('truncate', name, { to: 'day' }), name);
  const refused: Array<[MaskKind, string, RegExp, Record<string, unknown>?]> = [
    ['email', 'i4', /text types only/],
    ['partial', 'i4', /text types only/],
    ['hash', 'd', /text types only/],
    ['truncate', 't', /date, timestamp/],
    ['truncate', 'tm', /date, timestamp/],
    ['round', 't', /numbers/, { step: 1 }],
    ['round', 'mon', /numbers/, { step: 1 }],
    ['round', 'i4', /whole-number step/, { step: 0.5 }],
    ['scramble', 'd', /scramble works on/],
    ['scramble', 'num102', /full numeric range/],
    ['scramble', 'f8', /scramble works on/],
    ['full', 'pt', /no neutral constant/],
    ['email', 'by', /text types only/],
  ];
  for (const [kind, name, re, options] of refused) {
    const why = checkMaskFits(spec(kind, options), col(name));
    assert.ok(why, `${kind} on ${name} should not fit`);
    assert.match(why!, re);
    assert.match(why!, new RegExp(`column ${name} of type`));
    assert.throws(() => maskExpression(spec(kind, options), col(name), '"t"."x"'));
  }
});

test('full: a constant of the type, cut or padded to its typmod', async () => {
  const full = spec('full');
  assert.equal(await values(full, 't'), ['XXXX', 'XXXX', 'XXXX']);
  assert.equal(await values(full, 'bp'), ['XXXX  ', 'XXXX  ', 'XXXX  ']);
  assert.equal((await values(full, 'i4'))[0], 0);
  assert.equal((await values(full, 'num102'))[0], '0.00');
  assert.equal((await values(full, 'mon'))[0], '$0.00');
  assert.equal((await values(full, 'b'))[0], false);
  assert.equal((await values(full, 'u'))[0], '00000000-0000-0000-0000-000000000000');
  assert.equal((await values(full, 'jb'))[0], 'XXXX');
  assert.equal((await values(full, 'bt'))[0], '00000');
  assert.equal((await values(full, 'vb'))[0], '0');
  assert.equal((await values(full, 'arr'))[0], []);
  assert.equal((await values(full, 'mood'))[0], 'sad');
  assert.equal((await values(full, 'rng'))[0], 'empty');
  assert.equal((await values(full, 'ip'))[0], '0.0.0.0');
  assert.equal((await values(full, 'ssn'))[0], 'XXXX');
  const d = (await values(full, 'd'))[0] as Date;
  assert.is(d.getFullYear(), 1970);
  const tz = (await values(full, 'tstz'))[0] as Date;
  assert.is(tz.toISOString(), '1970-01-01T00:00:00.000Z');
});

test('partial: keeps first/last characters, fill repeated to the length; short values are all fill', async () => {
  assert.equal(await values(spec('partial', { keepFirst: 1, keepLast: 2, fill: '*' }), 't'), ['a**************om', null, 'n*******gn']);
  assert.equal(await values(spec('partial', { keepFirst: 0, keepLast: 4, fill: 'X' }), 'ssn'), ['XXXXXXX6789', null, 'XXXXXXX0000']);
  assert.equal(await values(spec('partial', { keepFirst: 1, keepLast: 2, fill: '*' }), 'bp'), ['**    ', null, 'a***ef']);
  assert.equal(await values(spec('partial', { keepFirst: 2, keepLast: 0, fill: "'" }), 'vc'), ["AB''''''''''", null, "'"]);
});

test('email: first letter, ***@, the domain; no @ gives ***', async () => {
  assert.equal(await values(spec('email'), 't'), ['a***@example.com', null, '***']);
  assert.equal(await values(spec('email'), 'vc'), ['***', null, '***']);
});

test('hash: keyed HMAC-SHA256 in hex (not a plain sha256 anyone can recompute), cut to the typmod', async () => {
  const h = await values(spec('hash'), 't');
  assert.is(h[0], hmacHex('H:', 'alice@example.com'));
  assert.is.not(h[0], createHmac('sha256', '').update('alice@example.com').digest('hex'));
  assert.is(h[2], hmacHex('H:', 'no-at-sign'));
  assert.equal(await values(spec('hash'), 'vc'), [hmacHex('H:', 'ABCDEFGHIJKL').slice(0, 12), null, hmacHex('H:', 'x').slice(0, 12)]);
  assert.equal((await values(spec('hash'), 'bp'))[0], hmacHex('H:', 'ab').slice(0, 6));
});

test('scramble: text is 16 hex of the keyed HMAC; integers stay integers in range; numeric and uuid keep their type', async () => {
  assert.equal(await values(spec('scramble'), 't'), [hmacHex('S:', 'alice@example.com').slice(0, 16), null, hmacHex('S:', 'no-at-sign').slice(0, 16)]);
  const i4 = await values(spec('scramble'), 'i4');
  assert.ok(Number.isInteger(i4[0]) && i4[0] !== 123456 && Math.abs(i4[0] as number) <= 2 ** 31);
  const i2 = await values(spec('scramble'), 'i2');
  assert.ok(Number.isInteger(i2[0]) && Math.abs(i2[0] as number) <= 32768);
  const num = await values(spec('scramble'), 'num');
  const i8of42 = await db.query("SELECT pgveil.scramble(42::int8)::text AS v");
  assert.is(num[2], i8of42.rows[0].v, 'a whole numeric is scrambled like the bigint');
  assert.match(String(num[0]), /^-?\d+\.\d{4}$/, 'a fraction keeps its scale');
  assert.match(String((await values(spec('scramble'), 'u'))[0]), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
});

test('truncate: to year/month/day keeping the type; timestamptz is cut in UTC whatever the session TimeZone', async () => {
  assert.equal(((await values(spec('truncate', { to: 'month' }), 'd'))[0] as Date).getDate(), 1);
  const ts = await db.query(`SELECT (${maskExpression(spec('truncate', { to: 'year' }), col('ts'), 't.ts')})::text AS v FROM crm.m t WHERE id = 1`);
  assert.is(ts.rows[0].v, '2024-01-01 00:00:00');
  for (const zone of ['UTC', 'Asia/Tokyo', 'America/Los_Angeles', '+03:17']) {
    await db.query(`SET TimeZone = '${zone}'`);
    const r = await db.query(`SELECT pg_catalog.date_part('epoch', ${maskExpression(spec('truncate', { to: 'month' }), col('tstz'), 't.tstz')})::int8::text AS v FROM crm.m t WHERE id = 1`);
    assert.is(r.rows[0].v, String(Date.UTC(2024, 4, 1) / 1000), zone);
  }
  await db.query('RESET TimeZone');
  const day = await db.query(`SELECT (${maskExpression(spec('truncate', { to: 'day' }), col('tstz0'), 't.tstz0')} AT TIME ZONE 'UTC')::text AS v FROM crm.m t WHERE id = 1`);
  assert.is(day.rows[0].v, '2024-05-17 00:00:00');
});

test('round: to a multiple of step, in the column type', async () => {
  assert.equal(await values(spec('round', { step: 100 }), 'i4'), [123500, null, -2147483600]);
  assert.equal(await values(spec('round', { step: 100 }), 'num102'), ['12300.00', null, '0.00']);
  assert.equal((await values(spec('round', { step: 0.5 }), 'f8'))[0], 1234.5);
  assert.equal(await values(spec('round', { step: 10 }), 'i2'), [-10, null, 32760], '32767 would round to 32770: the last multiple in range');
  assert.equal((await values(spec('round', { step: 1000 }), 'i4'))[2], -2147483000);
  await db.query('CREATE TABLE crm.small (n numeric(4,1))');
  await db.query("INSERT INTO crm.small VALUES (999.9), (-999.9), (12.3)");
  const small: CatalogColumn = { ...col('num102'), name: 'n', typmod: ((4 << 16) | 1) + 4, sqlType: 'numeric(4,1)' };
  const r = await db.query(`SELECT (${maskExpression(spec('round', { step: 20 }), small, 't.n')})::text AS v FROM crm.small t`);
  assert.equal(r.rows.map((x) => x.v), ['980.0', '-980.0', '20.0']);
});

test('custom: ${column} becomes the reference; result cast to the column type', async () => {
  assert.equal(await values(spec('custom', { expr: 'pg_catalog.upper(${column})', parts: ['pg_catalog.upper(', ')'] }), 't'), ['ALICE@EXAMPLE.COM', null, 'NO-AT-SIGN']);
  // Without `parts` (a spec built by hand), ${column} in expr is replaced.
  assert.equal(await values(spec('custom', { expr: '${column} OPERATOR(pg_catalog.+) 1' }), 'i4'), [123457, null, -2147483647]);
  const r = await run(spec('custom', { expr: "'x' || ${column}", parts: ["'x' || ", ''] }), col('vc'));
  assert.equal(r.values, ['xABCDEFGHIJK', null, 'xx'], 'cut to varchar(12)');
});

test('null: NULL of the type', async () => {
  assert.equal(await values(spec('null'), 'ssn'), [null, null, null]);
  assert.equal(await values(spec('null'), 'pt'), [null, null, null]);
});

test('SELECT * through masks keeps the RowDescription of SELECT * (names, types, typmods)', async () => {
  const prefer: MaskKind[] = ['scramble', 'partial', 'truncate', 'round', 'full', 'null'];
  const list = columns.map((c) => {
    if (c.name === 'id') return `t.id AS id`;
    const s = prefer.map((k) => specs.find((x) => x.kind === k)!).find((x) => !checkMaskFits(x, c))!;
    return `${maskExpression(s, c, `t.${quoteIdent(c.name)}`)} AS ${quoteIdent(c.name)}`;
  });
  const masked = await db.query(`SELECT ${list.join(', ')} FROM crm.m t`);
  const raw = await db.query('SELECT * FROM crm.m');
  assert.equal(masked.fields.map((f) => [f.name, f.dataTypeID, f.dataTypeModifier]), raw.fields.map((f) => [f.name, f.dataTypeID, f.dataTypeModifier]));
});

test('C5: the same results under a hostile search_path (shadowing functions, operators, types) and standard_conforming_strings=off', async () => {
  await db.query(`
    CREATE SCHEMA evil;
    CREATE FUNCTION evil.left(text, int) RETURNS text LANGUAGE sql AS $$ SELECT 'PWNED' $$;
    CREATE FUNCTION evil.repeat(text, int) RETURNS text LANGUAGE sql AS $$ SELECT 'PWNED' $$;
    CREATE FUNCTION evil.char_length(text) RETURNS int LANGUAGE sql AS $$ SELECT 0 $$;
    CREATE FUNCTION evil.date_trunc(text, timestamp) RETURNS timestamp LANGUAGE sql AS $$ SELECT $2 $$;
    CREATE FUNCTION evil.round(numeric) RETURNS numeric LANGUAGE sql AS $$ SELECT $1 $$;
    CREATE FUNCTION evil.cat(text, text) RETURNS text LANGUAGE sql AS $$ SELECT 'PWNED' $$;
    CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.cat);
    CREATE DOMAIN evil.text AS pg_catalog.varchar(1);
    CREATE DOMAIN evil.date AS pg_catalog.int4;
    CREATE SCHEMA pgveil_shadow;
  `);
  const combos: Array<[MaskSpec, string]> = [];
  for (const c of columns.filter((x) => x.name !== 'id')) for (const s of specs) if (!checkMaskFits(s, c)) combos.push([s, c.name]);
  const baseline = await Promise.all(combos.map(([s, n]) => run(s, col(n))));
  const hostile = await server.connect();
  try {
    await hostile.query('SET search_path = evil, pg_catalog, public');
    await hostile.query('SET standard_conforming_strings = off');
    await hostile.query('CREATE DOMAIN pg_temp.text AS pg_catalog.varchar(2)');
    for (let i = 0; i < combos.length; i++) {
      const [s, n] = combos[i];
      const got = await run(s, col(n), hostile);
      assert.equal(got.values, baseline[i].values, `${s.kind} on ${n}`);
      assert.is(got.typeOid, baseline[i].typeOid, `${s.kind} on ${n}`);
    }
  } finally {
    await hostile.end();
  }
});

test.run();
