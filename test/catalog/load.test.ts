// loadCatalog against a real PostgreSQL, through a non-superuser service
// role: every field of the catalog for the fixture schema (fixture.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type pg from 'pg';
import pgLib from 'pg';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/demo/embedded-postgres.js';
import { loadCatalog } from '../../src/catalog/load.js';
import { descendantsOf, rootOf } from '../../src/catalog/resolve.js';
import type { Catalog, CatalogColumn, CatalogRelation } from '../../src/catalog/types.js';
import { fixtureSql, PROTECTED, SERVICE_ROLE } from './fixture.js';

let server: RunningPostgres;
let admin: pg.Client;
let svc: pg.Client;
let catalog: Catalog;
const oids = new Map<string, number>();

/** The oid of a relation by its SQL name (as regclass reads it). */
function oid(name: string): number {
  const o = oids.get(name);
  if (o === undefined) throw new Error(`fixture oid not loaded: ${name}`);
  return o;
}

function rel(name: string): CatalogRelation {
  const r = catalog.byOid.get(oid(name));
  if (!r) throw new Error(`not in catalog: ${name}`);
  return r;
}

const names = [
  'app.people', 'app.people_archive', 'app.plain', 'app.multi', 'app.events', 'app.events_acme', 'app.events_globex',
  'app.events_globex_login', 'app.events_globex_other', 'app.logs', 'app.logs_acme', 'app.logs_acme_x', 'app.logs_globex',
  'app.people_v', 'app.people_vv', 'app.people_mv', 'app.acme_events_v', 'app.audit', 'app.fn_view', '"Sales"."Orders"',
  '"Sales"."Big Orders"', '"Sales"."Order View"', 'hidden.people_leak', 'hidden.people', 'other.people', 'app.lookup', 'app.lookup_v', 'app.free_seq',
  'app.shared_seq', 'app.people_id_seq', 'app.events_id_seq', 'app.people_pkey', 'app.pair', 'app.remote',
  'pg_catalog.pg_class', 'information_schema.tables',
];

test.before(async () => {
  server = await startEmbeddedPostgres();
  admin = await server.connect();
  const password = 'svc-' + Math.random().toString(36).slice(2);
  await admin.query(fixtureSql(password));
  for (const n of names) {
    const r = await admin.query<{ oid: number }>('SELECT $1::regclass::oid AS oid', [n]);
    oids.set(n, r.rows[0].oid);
  }
  svc = new pgLib.Client({ host: server.host, port: server.port, user: SERVICE_ROLE, password, database: 'postgres' });
  await svc.connect();
  catalog = await loadCatalog(svc, { protectedRelations: PROTECTED, serviceRole: SERVICE_ROLE });
});

test.after(async () => {
  await svc?.end();
  await admin?.end();
  await server?.stop();
});

test('schemas: those with USAGE for the service role, system ones included, hidden and temp ones not', () => {
  for (const s of ['app', 'other', 'Sales', 'public', 'pg_catalog', 'information_schema']) assert.ok(catalog.schemas.has(s), s);
  for (const s of ['hidden', 'pg_toast']) assert.not.ok(catalog.schemas.has(s), s);
  assert.not.ok([...catalog.schemas].some((s) => s.startsWith('pg_temp')));
  assert.is(catalog.serviceRole, SERVICE_ROLE);
  assert.ok(Math.abs(Date.now() - catalog.loadedAt) < 60_000);
});

test('every relation of every visible schema is in byOid and byName, with its kind', async () => {
  const r = await svc.query<{ oid: number; nspname: string; relname: string }>(`
    SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE has_schema_privilege(n.oid, 'USAGE') AND n.nspname !~ '^pg_(toast_)?temp_'`);
  assert.ok(r.rows.length > 300, 'pg_catalog and information_schema are there');
  for (const row of r.rows) {
    const got = catalog.byOid.get(row.oid);
    assert.ok(got, `${row.nspname}.${row.relname}`);
    assert.is(got!.schema, row.nspname);
    assert.is(got!.name, row.relname);
    assert.is(catalog.byName.get(row.relname)?.get(row.nspname), got);
  }
  const kinds: Record<string, string> = {
    'app.people': 'table', 'app.events': 'partitioned', 'app.events_globex': 'partitioned', 'app.events_acme': 'table',
    'app.people_v': 'view', 'app.people_mv': 'matview', 'app.remote': 'foreign', 'app.free_seq': 'sequence',
    'app.people_pkey': 'other', 'app.pair': 'other', 'pg_catalog.pg_class': 'table', 'information_schema.tables': 'view',
  };
  for (const [name, kind] of Object.entries(kinds)) assert.is(rel(name).kind, kind, name);
  assert.is(rel('"Sales"."Orders"').schema, 'Sales');
  assert.is(rel('"Sales"."Orders"').name, 'Orders');
  assert.is(rel('"Sales"."Big Orders"').name, 'Big Orders');
});

test('byName: relname → schema → relation; a schema without USAGE only shows its readers', () => {
  assert.equal([...catalog.byName.get('people')!.keys()].sort(), ['app', 'other']);
  assert.is(catalog.byName.get('people')!.get('app')!.oid, oid('app.people'));
  assert.is(catalog.byOid.get(oid('hidden.people')), undefined);
  const leak = rel('hidden.people_leak');
  assert.is(leak.schema, 'hidden');
  assert.is(catalog.byName.get('people_leak')!.get('hidden'), leak);
  assert.is(catalog.byName.get('Orders')!.get('Sales')!.oid, oid('"Sales"."Orders"'));
  assert.is(catalog.byName.get('orders'), undefined, 'names are exact, not folded');
});

test('partitions and inheritance: parentOid, parentOids, rootOid, protectedBy', () => {
  const expect: Record<string, { parent?: string; parents?: string[]; root: string; by?: string[] }> = {
    'app.people': { root: 'app.people', by: ['app.people'] },
    'app.people_archive': { parent: 'app.people', root: 'app.people', by: ['app.people'] },
    'app.multi': { parent: 'app.plain', parents: ['app.plain', 'app.people'], root: 'app.plain', by: ['app.people'] },
    'app.plain': { root: 'app.plain' },
    'app.events': { root: 'app.events', by: ['app.events'] },
    'app.events_acme': { parent: 'app.events', root: 'app.events', by: ['app.events'] },
    'app.events_globex': { parent: 'app.events', root: 'app.events', by: ['app.events'] },
    'app.events_globex_login': { parent: 'app.events_globex', root: 'app.events', by: ['app.events'] },
    'app.events_globex_other': { parent: 'app.events_globex', root: 'app.events', by: ['app.events'] },
    'app.logs': { root: 'app.logs' },
    'app.logs_acme': { parent: 'app.logs', root: 'app.logs', by: ['app.logs_acme'] },
    'app.logs_acme_x': { parent: 'app.logs_acme', root: 'app.logs', by: ['app.logs_acme'] },
    'app.logs_globex': { parent: 'app.logs', root: 'app.logs' },
    'app.lookup': { root: 'app.lookup' },
    '"Sales"."Orders"': { root: '"Sales"."Orders"', by: ['"Sales"."Orders"'] },
  };
  for (const [name, e] of Object.entries(expect)) {
    const r = rel(name);
    assert.is(r.parentOid, e.parent === undefined ? undefined : oid(e.parent), `${name} parentOid`);
    assert.equal(r.parentOids, e.parents?.map(oid), `${name} parentOids`);
    assert.is(r.rootOid, oid(e.root), `${name} rootOid`);
    assert.equal(r.protectedBy, e.by?.map(oid), `${name} protectedBy`);
  }
  assert.is(rootOf(catalog, rel('app.events_globex_login')).oid, oid('app.events'));
  assert.equal(descendantsOf(catalog, oid('app.events')).map((r) => r.oid).sort(),
    ['app.events_acme', 'app.events_globex', 'app.events_globex_login', 'app.events_globex_other'].map(oid).sort());
  assert.equal(descendantsOf(catalog, oid('app.people')).map((r) => r.oid).sort(), ['app.people_archive', 'app.multi'].map(oid).sort());
  assert.equal(descendantsOf(catalog, oid('app.lookup')), []);
});

test('columns of a protected table: every field, dropped column skipped, domains resolved', async () => {
  const types = await admin.query<{ t: string; oid: number }>(`
    SELECT t, t::regtype::oid AS oid FROM unnest(ARRAY['int4','varchar','numeric','int8','date','timestamptz','app.email','text[]','app.code2']) t`);
  const typeOid = (t: string): number => types.rows.find((r) => r.t === t)!.oid;
  const col = (name: string, attnum: number, type: string, typmod: number, sqlType: string, baseType: string,
    category: string, notNull: boolean, baseSqlType?: string): CatalogColumn => {
    const c: CatalogColumn = { name, attnum, typeOid: typeOid(type), typmod, sqlType, baseType, category, notNull };
    if (baseSqlType !== undefined) c.baseSqlType = baseSqlType;
    return c;
  };
  const people = [
    col('id', 1, 'int4', -1, 'integer', 'int4', 'N', true),
    col('code', 2, 'varchar', 24, 'character varying(20)', 'varchar', 'S', true),
    col('amount', 3, 'numeric', (10 << 16 | 2) + 4, 'numeric(10,2)', 'numeric', 'N', false),
    col('n4', 4, 'int4', -1, 'integer', 'int4', 'N', false),
    col('n8', 6, 'int8', -1, 'bigint', 'int8', 'N', true),
    col('born', 7, 'date', -1, 'date', 'date', 'D', false),
    col('seen', 8, 'timestamptz', -1, 'timestamp with time zone', 'timestamptz', 'D', false),
    col('email', 9, 'app.email', -1, 'app.email', 'text', 'S', false, 'text'),
    col('tags', 10, 'text[]', -1, 'text[]', '_text', 'A', false),
    col('short', 11, 'app.code2', -1, 'app.code2', 'varchar', 'S', false, 'character varying(8)'),
  ];
  assert.equal(rel('app.people').columns, people);
  // A child made after the DROP COLUMN does not inherit the hole: its attnums are dense.
  const archive = [...people, col('archived_at', 0, 'timestamptz', -1, 'timestamp with time zone', 'timestamptz', 'D', false)]
    .map((c, i) => ({ ...c, attnum: i + 1 }));
  assert.equal(rel('app.people_archive').columns, archive);
  assert.equal(rel('"Sales"."Orders"').columns!.map((c) => [c.name, c.sqlType]),
    [['OrderId', 'integer'], ['Total', 'numeric(12,2)'], ['Customer Name', 'text']]);
});

test('columns: for protected relations, their descendants and ancestors only', () => {
  const withColumns = [...catalog.byOid.values()].filter((r) => r.columns).map((r) => r.oid).sort();
  assert.equal(withColumns, [
    'app.people', 'app.people_archive', 'app.multi', 'app.events', 'app.events_acme', 'app.events_globex',
    'app.events_globex_login', 'app.events_globex_other', 'app.logs', 'app.logs_acme', 'app.logs_acme_x', '"Sales"."Orders"',
  ].map(oid).sort());
  assert.equal(rel('app.events_globex_login').columns!.map((c) => `${c.name}:${c.sqlType}:${c.notNull}`),
    ['org:text:true', 'id:bigint:true', 'kind:text:false', 'at:timestamp with time zone:false']);
  assert.equal(rel('app.multi').columns!.map((c) => c.name).slice(0, 3), ['note', 'id', 'code']);
});

test('readers: views, view over view, matview, rules, sequences, functions, ancestors — and nothing unrelated', () => {
  const P = [oid('app.people')];
  const expected = new Map<string, number[]>([
    [String(oid('app.people_v')), P],
    [String(oid('app.people_vv')), P],
    [String(oid('app.people_mv')), P],
    [String(oid('app.audit')), P],
    [String(oid('app.fn_view')), P],
    [String(oid('hidden.people_leak')), P],
    [String(oid('app.people_id_seq')), P],
    [String(oid('app.shared_seq')), P],
    [String(oid('app.plain')), P],
    [String(oid('app.acme_events_v')), [oid('app.events')]],
    [String(oid('app.events_id_seq')), [oid('app.events')]],
    [String(oid('app.logs')), [oid('app.logs_acme')]],
    [String(oid('"Sales"."Big Orders"')), [oid('"Sales"."Orders"')]],
    [String(oid('"Sales"."Order View"')), [oid('"Sales"."Orders"')]],
    ['"Sales".ov', [oid('"Sales"."Orders"')]], // a name with a blank, matched as a phrase
    ['app.count_people', P],
    ['app.count_people_atomic', P],
    ['app."Loud"', P],
    ['app.via_view', P],
    ['app.calls_reader', P],
  ]);
  const sort = (m: Map<string, number[]>): Array<[string, number[]]> => [...m].sort(([a], [b]) => a.localeCompare(b));
  assert.equal(sort(catalog.readers), sort(expected));
  for (const key of catalog.readers.keys()) assert.not.match(key, /^(pg_catalog|information_schema)\./);
});

test('leakproof functions and operators match pg_proc / pg_operator', async () => {
  for (const f of ['pg_catalog.int4eq', 'pg_catalog.texteq', 'pg_catalog.int8lt', 'pg_catalog.date_eq']) assert.ok(catalog.leakproofFunctions.has(f), f);
  for (const f of ['pg_catalog.int4div', 'pg_catalog.textlike', 'pg_catalog.int4in', 'app.count_people']) assert.not.ok(catalog.leakproofFunctions.has(f), f);
  for (const o of ['=(int4,int4)', '=(text,text)', '<(int8,int8)', '<>(int4,int8)']) assert.ok(catalog.leakproofOperators.has(o), o);
  for (const o of ['/(int4,int4)', '~~(text,text)', '+(int4,int4)']) assert.not.ok(catalog.leakproofOperators.has(o), o);
  const ops = await svc.query<{ k: string }>(`
    SELECT o.oprname || '(' || coalesce(l.typname, '') || ',' || r.typname || ')' AS k
      FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode LEFT JOIN pg_type l ON l.oid = o.oprleft JOIN pg_type r ON r.oid = o.oprright
     GROUP BY 1 HAVING bool_and(p.proleakproof)`);
  assert.equal([...catalog.leakproofOperators].sort(), ops.rows.map((r) => r.k).sort());
  assert.ok(catalog.leakproofFunctions.has('app.neg_lp'), 'a user function marked LEAKPROOF by a superuser');
  assert.ok(catalog.leakproofOperators.has('!-(,int4)'), 'a prefix operator is written name(,type)');
  const fns = await svc.query<{ k: string }>(`
    SELECT n.nspname || '.' || p.proname AS k FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     GROUP BY 1 HAVING bool_and(p.proleakproof)`);
  assert.equal([...catalog.leakproofFunctions].sort(), fns.rows.map((r) => r.k).sort());
});

test('an operator key is leakproof only while every operator with that key is', async () => {
  await admin.query(`CREATE FUNCTION other.int_eq(int4, int4) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT $1 = $2';
    CREATE OPERATOR other.= (LEFTARG = int4, RIGHTARG = int4, FUNCTION = other.int_eq)`);
  try {
    const c = await loadCatalog(svc, { protectedRelations: PROTECTED, serviceRole: SERVICE_ROLE });
    assert.not.ok(c.leakproofOperators.has('=(int4,int4)'), 'other.= shadows pg_catalog.= under some search_path');
    assert.ok(c.leakproofOperators.has('=(int8,int8)'));
  } finally {
    await admin.query('DROP OPERATOR other.= (int4, int4); DROP FUNCTION other.int_eq(int4, int4)');
  }
});

test('functionSchemas: proname → visible schemas', () => {
  assert.equal([...catalog.functionSchemas!.get('count_people')!], ['app']);
  assert.equal([...catalog.functionSchemas!.get('lower')!], ['pg_catalog']);
  assert.ok(catalog.functionSchemas!.get('Loud')!.has('app'));
});

test('keys are normalised; malformed keys are rejected; unknown ones ignored', async () => {
  const c = await loadCatalog(svc, { protectedRelations: ['APP.People', 'nosuch.table'], serviceRole: SERVICE_ROLE });
  assert.equal(c.byOid.get(oid('app.people'))!.protectedBy, [oid('app.people')]);
  assert.is(c.readers.get('app.count_people')![0], oid('app.people'));
  try {
    await loadCatalog(svc, { protectedRelations: ['people'], serviceRole: SERVICE_ROLE });
    assert.unreachable('a one-part key must be rejected');
  } catch (e) {
    assert.match((e as Error).message, /not a schema-qualified relation/);
  }
  const none = await loadCatalog(svc, { protectedRelations: [], serviceRole: SERVICE_ROLE });
  assert.is(none.readers.size, 0);
  assert.ok(none.byOid.size > 300);
});

test('a protected partition of a protected parent: covered by both, and the parent reads it', async () => {
  const c = await loadCatalog(svc, { protectedRelations: ['app.events', 'app.events_acme'], serviceRole: SERVICE_ROLE });
  const [E, EA] = [oid('app.events'), oid('app.events_acme')];
  assert.equal(c.byOid.get(EA)!.protectedBy, [EA, E]);
  assert.equal(c.byOid.get(E)!.protectedBy, [E]);
  assert.equal(c.readers.get(String(E)), [EA]);
  assert.equal(c.readers.get(String(oid('app.acme_events_v'))), [E, EA].sort((a, b) => a - b));
  assert.equal(c.readers.get(String(oid('app.events_globex'))), undefined);
});

test('loading leaves the session search_path alone', async () => {
  const r = await svc.query<{ search_path: string }>('SHOW search_path');
  assert.is(r.rows[0].search_path, '"$user", public');
});

test('as a superuser role: pg_toast is visible, so toast tables of protected data are readers', async () => {
  const c = await loadCatalog(admin, { protectedRelations: PROTECTED, serviceRole: 'postgres' });
  assert.ok(c.schemas.has('pg_toast'));
  assert.ok(c.schemas.has('hidden'));
  const toast = await admin.query<{ t: number; m: number }>(`
    SELECT (SELECT reltoastrelid FROM pg_class WHERE oid = 'app.people'::regclass) AS t,
           (SELECT reltoastrelid FROM pg_class WHERE oid = 'app.lookup'::regclass) AS m`);
  assert.equal(c.readers.get(String(toast.rows[0].t)), [oid('app.people')]);
  assert.is(c.readers.get(String(toast.rows[0].m)), undefined);
  assert.is(c.byOid.get(toast.rows[0].t)!.schema, 'pg_toast');
});

test.run();
