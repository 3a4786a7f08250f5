// Name resolution and search_path parsing: the rules as pure unit tests on a
// hand-built catalog, then a cross-check against a real server — for each
// search_path and name, resolveRelation must pick the relation PostgreSQL
// picks (to_regclass under that search_path, as a non-superuser role).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type pg from 'pg';
import pgLib from 'pg';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/demo/embedded-postgres.js';
import { loadCatalog } from '../../src/catalog/load.js';
import {
  descendantsOf, effectiveSearchPath, functionCandidates, functionKey, parseSearchPath, resolveRelation, rootOf,
} from '../../src/catalog/resolve.js';
import type { Catalog, CatalogRelation } from '../../src/catalog/types.js';

// ---------------------------------------------------------------------------
// Pure rules on a hand-built catalog.

type RelSpec = [oid: number, schema: string, name: string, parent?: number];

function makeCatalog(specs: RelSpec[], schemas: string[], extra: Partial<Catalog> = {}): Catalog {
  const byOid = new Map<number, CatalogRelation>();
  const byName = new Map<string, Map<string, CatalogRelation>>();
  for (const [oid, schema, name, parent] of specs) {
    const rel: CatalogRelation = { oid, schema, name, kind: 'table', rootOid: oid };
    if (parent !== undefined) rel.parentOid = parent;
    byOid.set(oid, rel);
    if (!byName.has(name)) byName.set(name, new Map());
    byName.get(name)!.set(schema, rel);
  }
  const children = new Map<number, number[]>();
  for (const rel of byOid.values()) {
    let root = rel;
    while (root.parentOid !== undefined && byOid.has(root.parentOid)) root = byOid.get(root.parentOid)!;
    rel.rootOid = root.oid;
    if (rel.parentOid !== undefined) children.set(rel.parentOid, [...(children.get(rel.parentOid) ?? []), rel.oid]);
  }
  return {
    byOid, byName, schemas: new Set(schemas), readers: new Map(), leakproofFunctions: new Set(),
    leakproofOperators: new Set(), serviceRole: 'svc', loadedAt: 0,
    serverVersionNum: 180000, children, functionSchemas: new Map(), systemViews: new Map(),
    systemColumns: new Map(), protectedOids: [], userOperators: new Map(), typeFunctions: new Map(),
    uniqueColumns: new Map(), referencedRelations: new Set(), writeGuarded: new Set(),
    ...extra,
  };
}

const unit = makeCatalog([
  [1, 'pg_catalog', 'pg_class'],
  [2, 'public', 'pg_class'],
  [3, 'a', 't'],
  [4, 'b', 't'],
  [5, 'svc', 't'],
  [6, 'hidden', 't'],
  [7, 'b', 'only_b'],
  [10, 'a', 'parent'],
  [11, 'a', 'child', 10],
  [12, 'a', 'grandchild', 11],
  [13, 'b', 'child2', 10],
], ['pg_catalog', 'public', 'a', 'b', 'svc']);

const oidOf = (schema: string | undefined, name: string, path: string[]): number | undefined =>
  resolveRelation(unit, schema, name, path)?.oid;

test('qualified: that schema only, whatever the path', () => {
  assert.is(oidOf('b', 't', ['a']), 4);
  assert.is(oidOf('public', 'pg_class', []), 2);
  assert.is(oidOf('a', 'only_b', ['b']), undefined);
  assert.is(oidOf('nosuch', 't', ['a']), undefined);
  assert.is(oidOf('hidden', 't', []), 6, 'a relation the catalog lists in a schema without USAGE is still found qualified');
  assert.is(oidOf('pg_temp', 't', ['pg_temp']), undefined);
});

test('unqualified: pg_catalog first unless the path names it', () => {
  assert.is(oidOf(undefined, 'pg_class', ['public']), 1);
  assert.is(oidOf(undefined, 'pg_class', ['public', 'pg_catalog']), 2);
  assert.is(oidOf(undefined, 'pg_class', ['pg_catalog', 'public']), 1);
  assert.is(oidOf(undefined, 'pg_class', []), 1);
});

test('unqualified: first match wins; missing, USAGE-less and pg_temp schemas are skipped; $user is the service role', () => {
  assert.is(oidOf(undefined, 't', ['a', 'b']), 3);
  assert.is(oidOf(undefined, 't', ['b', 'a']), 4);
  assert.is(oidOf(undefined, 't', ['nosuch', 'b']), 4);
  assert.is(oidOf(undefined, 't', ['hidden', 'b']), 4);
  assert.is(oidOf(undefined, 't', ['pg_temp', 'b']), 4);
  assert.is(oidOf(undefined, 't', ['$user', 'a']), 5);
  assert.is(oidOf(undefined, 't', ['public']), undefined);
  assert.is(oidOf(undefined, 'only_b', ['a', 'b']), 7);
  assert.is(oidOf(undefined, 'nosuch', ['a', 'b']), undefined);
});

test('effectiveSearchPath', () => {
  assert.equal(effectiveSearchPath(unit, ['$user', 'public']), ['pg_catalog', 'svc', 'public']);
  assert.equal(effectiveSearchPath(unit, ['b', 'pg_catalog', 'a', 'b', 'pg_temp', 'nosuch', 'hidden']), ['b', 'pg_catalog', 'a']);
  assert.equal(effectiveSearchPath(unit, []), ['pg_catalog']);
  assert.equal(effectiveSearchPath(unit, ['']), ['pg_catalog']);
});

test('rootOf and descendantsOf, with and without the children index', () => {
  assert.is(rootOf(unit, unit.byOid.get(12)!).oid, 10);
  assert.is(rootOf(unit, unit.byOid.get(3)!).oid, 3);
  assert.equal(descendantsOf(unit, 10).map((r) => r.oid), [11, 13, 12], 'breadth-first');
  assert.equal(descendantsOf(unit, 11).map((r) => r.oid), [12]);
  assert.equal(descendantsOf(unit, 3), []);
  const indexed = { ...unit, children: new Map([[10, [13, 11]], [11, [12]]]) };
  assert.equal(descendantsOf(indexed, 10).map((r) => r.oid), [13, 11, 12]);
});

test('functionKey and functionCandidates', () => {
  assert.is(functionKey('pg_catalog', 'int4eq'), 'pg_catalog.int4eq');
  assert.is(functionKey('app', 'Loud'), 'app."Loud"');
  const c = { ...unit, functionSchemas: new Map([['lower', new Set(['pg_catalog', 'b'])], ['f', new Set(['a'])]]) };
  assert.equal(functionCandidates(c, undefined, 'lower', ['a', 'b']), ['pg_catalog', 'b']);
  assert.equal(functionCandidates(c, undefined, 'lower', ['a']), ['pg_catalog']);
  assert.equal(functionCandidates(c, undefined, 'f', ['b']), []);
  assert.equal(functionCandidates(c, 'a', 'f', []), ['a']);
  assert.equal(functionCandidates(unit, undefined, 'lower', []), [], 'no index, no answer');
});

// ---------------------------------------------------------------------------
// parseSearchPath on values as the server reports them.

test('parseSearchPath: the shapes SHOW and ParameterStatus produce', () => {
  assert.equal(parseSearchPath('"$user", public'), ['$user', 'public']);
  assert.equal(parseSearchPath('"My Schema", public, "$user"'), ['My Schema', 'public', '$user']);
  assert.equal(parseSearchPath('myschema, "a""b", "x,y"'), ['myschema', 'a"b', 'x,y']);
  assert.equal(parseSearchPath('  Foo ,"Bar" , $user,pg_temp'), ['foo', 'Bar', '$user', 'pg_temp']);
  assert.equal(parseSearchPath('""'), ['']);
  assert.equal(parseSearchPath(''), []);
  assert.equal(parseSearchPath('   '), []);
  assert.equal(parseSearchPath('"Ünï", ÜnÏ, ABC'), ['Ünï', 'ÜnÏ', 'abc'], 'only ASCII is folded');
  assert.equal(parseSearchPath('a\t,\nb'), ['a', 'b']);
  assert.equal(parseSearchPath('a"b'), ['a"b'], 'a quote inside an unquoted name is part of it');
  assert.equal(parseSearchPath('a'.repeat(70)), ['a'.repeat(63)]);
  assert.equal(parseSearchPath(`"${'é'.repeat(40)}"`), ['é'.repeat(31)], '63 bytes, never half a character');
  for (const bad of ['"abc', 'a,', ',a', 'a b', 'a,,b', '"a"b']) {
    assert.throws(() => parseSearchPath(bad), /search_path/, bad);
  }
});

// ---------------------------------------------------------------------------
// Against a real server.

const ROLE = 'resolver';
const LONG = 'l'.repeat(63);
let server: RunningPostgres;
let admin: pg.Client;
let client: pg.Client;
let catalog: Catalog;
const reported: string[] = [];

test.before(async () => {
  server = await startEmbeddedPostgres();
  admin = await server.connect();
  const password = 'pw-' + Math.random().toString(36).slice(2);
  await admin.query(`
    CREATE ROLE ${ROLE} LOGIN NOSUPERUSER NOINHERIT PASSWORD '${password}';
    CREATE SCHEMA a; CREATE SCHEMA b; CREATE SCHEMA "My Schema"; CREATE SCHEMA nousage; CREATE SCHEMA ${ROLE};
    CREATE SCHEMA "A"; CREATE SCHEMA ${LONG};
    CREATE TABLE a.t (x int); CREATE TABLE b.t (x int); CREATE TABLE "My Schema".t (x int); CREATE TABLE nousage.t (x int);
    CREATE TABLE public.t (x int); CREATE TABLE ${ROLE}.t (x int); CREATE TABLE "A".t (x int);
    CREATE TABLE a.only_a (x int); CREATE TABLE nousage.only_hidden (x int); CREATE TABLE ${ROLE}.mine (x int);
    CREATE TABLE b."Mixed" (x int); CREATE TABLE "My Schema"."Mixed" (x int);
    CREATE TABLE public.pg_class (x int); CREATE VIEW b.pg_namespace AS SELECT 1 AS x;
    CREATE INDEX u ON a.t (x); CREATE TABLE b.u (x int);
    CREATE TABLE ${LONG}.long_t (x int);
    GRANT USAGE ON SCHEMA a, b, "My Schema", ${ROLE}, "A", ${LONG} TO ${ROLE};
  `);
  client = new pgLib.Client({ host: server.host, port: server.port, user: ROLE, password, database: 'postgres' });
  await client.connect();
  client.connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => {
    if (m.parameterName === 'search_path') reported.push(m.parameterValue);
  });
  catalog = await loadCatalog(client, { protectedRelations: [], serviceRole: ROLE });
});

test.after(async () => {
  await client?.end();
  await admin?.end();
  await server?.stop();
});

async function show(): Promise<string> {
  return (await client.query<{ search_path: string }>('SHOW search_path')).rows[0].search_path;
}

test('server: SHOW and ParameterStatus values parse to the schemas the server uses', async () => {
  const cases: Array<[string, string[]]> = [
    [`SET search_path = "My Schema", public, "$user"`, ['My Schema', 'public', '$user']],
    [`SET search_path = ''`, ['']],
    [`SET search_path = MySchema, "a""b", "x,y"`, ['myschema', 'a"b', 'x,y']],
    [`SELECT set_config('search_path', '  Foo ,"Bar" , $user,pg_temp', false)`, ['foo', 'Bar', '$user', 'pg_temp']],
    [`SELECT set_config('search_path', '', false)`, []],
    [`SET search_path TO DEFAULT`, ['$user', 'public']],
    [`SET search_path = "Ünï", ÜnÏ`, ['Ünï', 'ÜnÏ']],
    [`SET search_path = ${'x'.repeat(70)}`, ['x'.repeat(63)]],
    [`SELECT set_config('search_path', '${'Y'.repeat(70)}', false)`, ['y'.repeat(63)]],
  ];
  for (const [sql, expected] of cases) {
    reported.length = 0;
    await client.query(sql);
    const value = await show();
    assert.equal(parseSearchPath(value), expected, `${sql} → SHOW ${JSON.stringify(value)}`);
    // PostgreSQL 18 reports search_path in ParameterStatus; the proxy sees the same text as SHOW.
    assert.ok(reported.length > 0, `${sql}: ParameterStatus sent`);
    assert.is(reported[reported.length - 1], value);
  }
  await client.query('RESET search_path');
});

const PATHS = [
  '"$user", public', 'a, b', 'b, a', '"My Schema", public, "$user"', 'nousage, b', 'nosuch, b', 'public, pg_catalog',
  'b, pg_catalog, a', 'pg_temp, b', '', '""', 'A, b', '"A", b', '$user', 'a, a, b', 'l'.repeat(70), '  B ,  "My Schema"',
  `"${LONG}", public`, 'pg_catalog', 'information_schema, public',
];
const NAMES = ['t', 'only_a', 'Mixed', 'pg_class', 'pg_namespace', 'u', 'only_hidden', 'mine', 'long_t', 'nosuch', 'tables', 'pg_type'];
const quote = (s: string): string => `"${s.replace(/"/g, '""')}"`;

test('server: unqualified names resolve to the relation PostgreSQL picks', async () => {
  let compared = 0;
  for (const path of PATHS) {
    await client.query(`SELECT set_config('search_path', $1, false)`, [path]);
    const parsed = parseSearchPath(await show());
    const r = await client.query<{ n: string; oid: number | null; schemas: string[] }>(
      'SELECT n, to_regclass(q)::oid AS oid, current_schemas(true)::text[] AS schemas FROM unnest($1::text[], $2::text[]) AS x(n, q)',
      [NAMES, NAMES.map(quote)]);
    for (const row of r.rows) {
      const mine = resolveRelation(catalog, undefined, row.n, parsed);
      assert.is(mine?.oid ?? null, row.oid, `search_path=${JSON.stringify(path)} name=${row.n}`);
      compared++;
    }
    // current_schemas(true) is the server's own effective list (implicit pg_catalog included); pgveil
    // leaves out the session's temp schema on purpose (nothing can be created there through it).
    const serverPath = r.rows[0].schemas.filter((s) => !/^pg_temp_\d+$/.test(s));
    assert.equal(effectiveSearchPath(catalog, parsed), serverPath, `effective path for ${JSON.stringify(path)}`);
  }
  assert.is(compared, PATHS.length * NAMES.length);
  await client.query('RESET search_path');
});

test('server: qualified names resolve to the relation PostgreSQL picks', async () => {
  const schemas = ['a', 'b', 'My Schema', 'public', 'pg_catalog', 'A', 'information_schema', ROLE, LONG, 'nosuch'];
  const pairs = schemas.flatMap((s) => NAMES.map((n) => [s, n] as const));
  const r = await client.query<{ oid: number | null }>(
    'SELECT to_regclass(q)::oid AS oid FROM unnest($1::text[]) WITH ORDINALITY AS x(q, i) ORDER BY i',
    [pairs.map(([s, n]) => `${quote(s)}.${quote(n)}`)]);
  pairs.forEach(([s, n], i) => {
    assert.is(resolveRelation(catalog, s, n, ['b'])?.oid ?? null, r.rows[i].oid, `${s}.${n}`);
  });
});

test.run();
