// UPDATE, DELETE, INSERT and COPY FROM on protected tables through the public
// rewriteSql(), with a hand-built catalog and no server (the end-to-end
// behaviour is test/threats/b-write-scope.test.ts): refused under
// `writes: deny`; under `writes: allow` the user's SET values and WHERE are
// computed over the guarded, masked rows, new rows are checked against the
// filter, RETURNING shows masked values, and the shapes that would need more
// are refused. Assertions are on the outcome's kind, the SQLSTATE and key
// fragments of the rewritten SQL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModule } from 'libpg-query';
import { has, makeCatalog, makeProfile, refusal, rewrite, rewritten } from './unit-fixture.js';

await loadModule();

const deny = (sql: string) => rewrite(sql, { profile: makeProfile('deny') });
const allow = (sql: string, catalog = makeCatalog()) => rewrite(sql, { profile: makeProfile('allow'), catalog });

const FILTER = "WHERE (org_id = 'acme')";
const JOIN_BY_ROW = '"pgveil_row"."ctid" OPERATOR(pg_catalog.=) "pgveil_new"."pgveil_ctid"';
const NEW_ROW_CHECK = "WHEN org_id = 'acme' THEN true ELSE pg_catalog.int4('pgveil: a new row is outside your ownership filter: '";

const WRITES = [
  "update crm.employees set name = 'x' where id = 1",
  'delete from crm.employees where id = 1',
  "insert into crm.employees (org_id, name) values ('acme', 'x')",
  'copy crm.accounts (org_id, owner_id) from stdin',
  'merge into crm.employees e using lookup l on true when matched then delete',
  "with x as (select 1) update crm.employees set name = 'x'",
];

test('writes: deny refuses every write to a protected table with permission denied (42501)', () => {
  for (const sql of WRITES) {
    const r = refusal(deny(sql));
    assert.is(r.code, '42501', sql);
    assert.ok(r.message.startsWith('permission denied for table '), `${sql}: ${r.message}`);
  }
});

test('writes to unprotected tables are forwarded in either mode; TRUNCATE is refused in both', () => {
  for (const sql of ["update crm.notes set body = 'x'", 'delete from crm.notes', "insert into crm.notes values (1, 'x')"]) {
    assert.is(deny(sql).kind, 'forward', sql);
    assert.is(allow(sql).kind, 'forward', sql);
  }
  assert.is(refusal(deny('truncate crm.employees')).code, '42501');
  assert.is(refusal(allow('truncate crm.employees')).code, '42501');
});

test('writes: allow — UPDATE computes SET values and WHERE over the guarded rows, joined back by ctid', () => {
  const sql = rewritten(allow("update crm.employees e set name = 'x' where e.id = 1"));
  assert.ok(sql.startsWith('update "crm"."employees" AS "pgveil_row" SET "name" = "pgveil_new"."pgveil_v0" FROM (SELECT '), sql);
  assert.ok(has(sql, "( 'x' )::pg_catalog.text AS \"pgveil_v0\""), 'the value is computed in the sub-select, cast to the column type');
  assert.ok(has(sql, `FROM "crm"."employees" ${FILTER} OFFSET 0) AS "e" WHERE ( e.id = 1 )`), 'the user\'s WHERE runs over the guarded rows, under the user\'s alias');
  assert.ok(has(sql, JOIN_BY_ROW), sql);
  // the user's WHERE sees the masked ssn, never the raw one
  const masked = rewritten(allow("update crm.employees set name = 'x' where ssn = '1234'"));
  assert.ok(has(masked, 'pg_catalog.right(("ssn")::pg_catalog.text, 4)'), masked);
  assert.ok(has(masked, "WHERE ( ssn = '1234')"), masked);
});

test('writes: allow — DELETE moves its WHERE into a USING sub-select over the guarded rows', () => {
  const sql = rewritten(allow('delete from crm.accounts a where a.owner_id = 1'));
  assert.ok(sql.startsWith('delete from "crm"."accounts" AS "pgveil_row"'), sql);
  assert.ok(has(sql, `USING (SELECT "a"."pgveil_tableoid", "a"."pgveil_ctid" FROM (SELECT "tableoid" AS "pgveil_tableoid"`), sql);
  assert.ok(has(sql, `FROM "crm"."accounts" ${FILTER} OFFSET 0) AS "a" WHERE ( a.owner_id = 1)`), sql);
  assert.ok(has(sql, JOIN_BY_ROW), sql);
});

test('a -- comment ending at \\r before WHERE is kept a comment, and the WHERE still moves', () => {
  const sql = rewritten(allow('delete from crm.accounts --c\r where id = 1'));
  assert.ok(sql.startsWith('delete from "crm"."accounts" AS "pgveil_row" --c\r'), JSON.stringify(sql));
  assert.ok(has(sql, 'WHERE ( id = 1) OFFSET 0) AS "pgveil_new"'), JSON.stringify(sql));
});

test('writes: allow — INSERT and COPY FROM check every new row against the filter', () => {
  const values = rewritten(allow("insert into crm.employees (org_id, name) values ('acme', 'x')"));
  assert.ok(values.startsWith('insert into crm.employees (org_id, name) SELECT * FROM (SELECT "pgveil_src"."org_id"::pg_catalog.text AS "org_id"'), values);
  assert.ok(has(values, "FROM ( values ('acme', 'x') ) AS \"pgveil_src\"(\"org_id\", \"name\")"), values);
  assert.ok(has(values, NEW_ROW_CHECK), values);
  const select = rewritten(allow("insert into crm.accounts (org_id, owner_id) select 'acme', 1"));
  assert.ok(has(select, NEW_ROW_CHECK), select);
  const copy = allow('copy crm.accounts (org_id, owner_id) from stdin');
  assert.ok(rewritten(copy).startsWith('copy crm.accounts (org_id, owner_id) from stdin WHERE CASE '), rewritten(copy));
  assert.not.ok(copy.shapeSafe);
});

test('RETURNING shows masked new values; sub-selects and the raw row\'s names in it are refused', () => {
  const update = rewritten(allow("update crm.employees e set name = 'x' returning e.ssn, e.name"));
  assert.ok(has(update, 'returning ((CASE WHEN ("pgveil_row"."ssn")::pg_catalog.text IS NULL'), update);
  assert.ok(update.endsWith('"pgveil_row"."name"'), update);
  const insert = rewritten(allow("insert into crm.employees (org_id, name) values ('acme', 'x') returning ssn, name"));
  assert.ok(has(insert, 'returning ((CASE WHEN ("ssn")::pg_catalog.text IS NULL'), insert);
  for (const sql of [
    "update crm.employees set name = 'x' returning (select ssn from crm.employees limit 1)",
    "update crm.employees set name = 'x' returning pgveil_row.ssn",
    "update crm.employees set name = 'x' returning old.ssn",
  ]) assert.is(refusal(allow(sql)).code, '42501', sql);
});

test('writes: allow refuses what would reveal or move other orgs\' rows (42501)', () => {
  const cases: Array<[string, RegExp]> = [
    ["update crm.employees set org_id = 'globex'", /ownership filter/],
    ['update crm.employees set id = 5', /unique or foreign key/],
    ["insert into crm.employees (id, org_id, name) values (1, 'acme', 'x')", /unique or foreign key/],
    ['copy crm.employees from stdin', /unique or foreign key/],
    ["update crm.employees set (name, ssn) = ('a', 'b')", /one by one/],
    ['update crm.employees set name = default', /DEFAULT/],
    ["with x as (select 1) update crm.employees set name = 'x'", /WITH/],
    ["insert into crm.employees (org_id, name) values ('acme', 'x') on conflict do nothing", /ON CONFLICT/],
    ['insert into crm.employees select * from crm.employees', /column list/],
    ['merge into crm.employees e using lookup l on true when matched then delete', /MERGE/],
    ["update crm.employees pgveil_x set name = 'x'", /reserved by pgveil/],
  ];
  for (const [sql, message] of cases) {
    const r = refusal(allow(sql));
    assert.is(r.code, '42501', sql);
    assert.ok(message.test(r.message), `${sql}: ${r.message}`);
  }
});

test('writes: allow refuses DELETE from a referenced table and writes to tables that run user code', () => {
  const referenced = makeCatalog({ referencedRelations: new Set([101]) });
  assert.ok(/foreign key/.test(refusal(allow('delete from crm.accounts where id = 1', referenced)).message));
  assert.is(allow("update crm.accounts set balance = 0", referenced).kind, 'rewrite', 'UPDATE of a referenced table is fine');
  const guarded = makeCatalog({ writeGuarded: new Set([101, 201]) });
  assert.ok(/triggers, rules or defaults/.test(refusal(allow('update crm.accounts set balance = 0', guarded)).message));
  // an unprotected table that runs user code on write is refused in either mode
  const notes = refusal(rewrite("update crm.notes set body = 'x'", { profile: makeProfile('deny'), catalog: guarded }));
  assert.is(notes.code, '42501');
  assert.ok(/triggers, rules or defaults/.test(notes.message), notes.message);
});

test('COPY TO of a protected table is a guarded read in either mode', () => {
  for (const o of [deny('copy crm.employees to stdout'), allow('copy crm.employees to stdout')]) {
    const sql = rewritten(o);
    assert.ok(sql.startsWith('copy (SELECT * FROM (SELECT '), sql);
    assert.ok(has(sql, FILTER), sql);
  }
});

test.run();
