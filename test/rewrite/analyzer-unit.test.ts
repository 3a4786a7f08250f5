// The analyzer through the public rewriteSql(), with a hand-built catalog and
// no server: reads of protected tables get the filter subquery and the masks,
// whatever the spelling of the name (schema, alias, quotes, comments, \r line
// ends), CTEs shadow tables, and what cannot be proved safe is refused with
// the right SQLSTATE. Assertions are on the outcome's kind, the SQLSTATE and
// key fragments of the rewritten SQL, never whole strings.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModule } from 'libpg-query';
import { has, makeCatalog, makeProfile, refusal, rewrite, rewritten } from './unit-fixture.js';

await loadModule();

const FILTER = "WHERE (org_id = 'acme')";
const GUARDED_EMPLOYEES = 'FROM "crm"."employees"';
const SSN_MASK = 'pg_catalog.right(("ssn")::pg_catalog.text, 4)';
const SALARY_MASK = 'pg_catalog.round(("salary")::pg_catalog.numeric';

/** The number of times `part` occurs in `s`. */
const count = (s: string, part: string) => s.split(part).length - 1;

test('a plain SELECT of a protected table reads it through the filter subquery, masks applied', () => {
  const sql = rewritten(rewrite('select * from crm.employees'));
  assert.ok(sql.startsWith('select * from (SELECT '), sql);
  assert.ok(has(sql, `${GUARDED_EMPLOYEES} ${FILTER}`), sql);
  assert.ok(has(sql, SSN_MASK), 'ssn is masked');
  assert.ok(has(sql, SALARY_MASK), 'salary is rounded');
  assert.ok(sql.endsWith('AS "employees"'), 'the subquery keeps the table\'s name');
  assert.not.ok(/"name"\)?::/.test(sql), 'unmasked columns are passed through as they are');
});

test('every spelling of the name is guarded: schema, quotes, search_path, comments, \\r line ends', () => {
  for (const from of ['crm.employees', '"crm"."employees"', 'CRM.Employees', 'employees', 'crm . /* x */ employees', 'crm --c\r.employees', 'crm --c\r\n.employees', 'crm\r.\remployees']) {
    const sql = rewritten(rewrite(`select ssn from ${from}`));
    assert.is(count(sql, GUARDED_EMPLOYEES), 1, from);
    assert.ok(has(sql, FILTER), from);
    assert.not.ok(sql.includes('--c'), `the name's text is replaced whole: ${JSON.stringify(from)}`);
  }
});

test('regression: a -- comment ends at \\r as in PostgreSQL (crm --c\\r.employees was refused)', () => {
  const o = rewrite('select * from crm --c\r.employees e where e.id = 1');
  const sql = rewritten(o);
  assert.ok(has(sql, `${GUARDED_EMPLOYEES} AS "e" ${FILTER}`), sql);
  assert.equal(o.relations, ['crm.employees']);
  // Where nothing ends the comment, `.employees` is in it: the statement reads a table "crm".
  assert.equal(refusal(rewrite('select * from crm --c.employees')), { code: '42P01', message: 'relation "crm" does not exist' });
});

test('aliases and joins: each protected reference is guarded once, under its alias', () => {
  const sql = rewritten(rewrite('select e.name, a.balance from crm.employees e join crm.accounts as a on a.owner_id = e.id left join lookup l on l.code = e.name'));
  assert.is(count(sql, FILTER), 2);
  assert.ok(has(sql, ') e join (SELECT '), sql);
  assert.ok(has(sql, 'FROM "crm"."accounts" WHERE (org_id = \'acme\')) as a'), `every condition is leakproof and no mask is read: no fence (fence.ts) ${sql}`);
  assert.ok(has(sql, '"public".lookup l'), 'unprotected tables are schema-qualified, not guarded');
  const self = rewritten(rewrite('select * from crm.employees x, crm.employees y where x.id = y.id'));
  assert.is(count(self, GUARDED_EMPLOYEES), 2, 'a self-join guards both sides');
});

test('a comparison with a constant moves into the subquery; the outer predicate becomes true', () => {
  const sql = rewritten(rewrite('select * from crm.employees e where e.id = 1 and e.name = \'x\''));
  assert.ok(has(sql, `${FILTER} AND (e.id = 1) AND (e.name = 'x')`), sql);
  assert.ok(sql.endsWith('where true and true'), sql);
  // a masked column stays outside, compared with the masked value
  const masked = rewritten(rewrite("select * from crm.employees where ssn = '1'"));
  assert.ok(masked.endsWith("where ssn = '1'"), masked);
});

test('CTEs shadow tables of the same name; a CTE over a protected table is guarded inside', () => {
  assert.is(rewrite('with employees as (select 1 as x) select * from employees').kind, 'forward');
  const inner = rewritten(rewrite('with e as (select * from crm.employees) select ssn from e'));
  assert.ok(inner.startsWith('with e as (select * from (SELECT '), inner);
  assert.ok(inner.endsWith(') select ssn from e'), inner);
  // a qualified name is never a CTE
  const qualified = rewritten(rewrite('with employees as (select 1) select * from crm.employees'));
  assert.is(count(qualified, FILTER), 1);
});

test('subqueries, TABLE, ONLY and several statements are all guarded', () => {
  const sub = rewritten(rewrite('select (select ssn from crm.employees limit 1), x from lookup, lateral (select * from crm.accounts) a'));
  assert.is(count(sub, FILTER), 2);
  assert.ok(rewritten(rewrite('table crm.employees')).startsWith('SELECT * FROM (SELECT '));
  assert.ok(rewritten(rewrite('select * from only crm.employees')).includes('FROM ONLY "crm"."employees"'));
  const two = rewritten(rewrite('select 1; select * from crm.accounts'));
  assert.ok(two.startsWith('select 1; select * from (SELECT '), two);
});

test('unprotected reads are forwarded untouched or only schema-qualified', () => {
  assert.is(rewrite('select 1').kind, 'forward');
  assert.is(rewrite('select * from crm.notes').kind, 'forward');
  assert.ok(rewritten(rewrite('select * from lookup')).includes('"public".lookup'));
});

test('an unknown relation, a denied table and an unknown function are refused with PostgreSQL\'s SQLSTATEs', () => {
  assert.equal(refusal(rewrite('select * from nosuch.t')), { code: '42P01', message: 'relation "nosuch.t" does not exist' });
  assert.is(refusal(rewrite('select nosuch_function()')).code, '42883');
  assert.is(refusal(rewrite('select * from crm.employees where')).code, '42601', 'a syntax error is the parser\'s');
});

test('functions outside pg_catalog are refused unless the policy allows them', () => {
  const catalog = makeCatalog({ functionSchemas: new Map([['count', new Set(['pg_catalog'])], ['f', new Set(['public'])]]) });
  assert.is(rewrite('select count(*) from crm.notes', { catalog }).kind, 'forward');
  const f = refusal(rewrite('select f()', { catalog }));
  assert.is(f.code, '42501');
  assert.ok(/\bf\b/.test(f.message), f.message);
  assert.is(refusal(rewrite('select public.f()', { catalog })).code, '42501');
  const allowed = rewrite('select f()', { catalog, rules: { allowedFunctions: new Set(['public.f']), listenChannels: new Set() } });
  assert.is.not(allowed.kind, 'refuse');
});

test('functions that run SQL text or reach server files are refused whatever the policy', () => {
  for (const sql of ["select dblink('x', 'y')", "select lo_import('/etc/passwd')", "select pg_read_file('/etc/passwd')", "select query_to_xml('select * from crm.employees', true, true, '')"]) {
    assert.is(refusal(rewrite(sql)).code, '42501', sql);
  }
});

test('SELECT INTO, CREATE TABLE AS and DDL are refused (42501)', () => {
  for (const sql of ['select * into t2 from crm.employees', 'create table t3 as select * from crm.employees', 'create table t4 (a int)', 'create view v as select * from crm.employees', 'drop table crm.employees']) {
    const r = refusal(rewrite(sql));
    assert.is(r.code, '42501', sql);
  }
  assert.ok(/SELECT INTO/.test(refusal(rewrite('select * into t2 from crm.notes')).message));
});

test('EXPLAIN of a protected read is refused; EXPLAIN of an unprotected one is not', () => {
  assert.is(refusal(rewrite('explain select * from crm.employees')).code, '42501');
  assert.is.not(rewrite('explain select * from crm.notes').kind, 'refuse');
});

test('a table the access layer denies is refused like PostgreSQL\'s permission error', () => {
  const profile = makeProfile(); // a fresh profile: free to change
  profile.tables.set('crm.accounts', { relation: 'crm.accounts', access: false, filters: [], masks: new Map() });
  const r = refusal(rewrite('select * from crm.accounts', { profile }));
  assert.is(r.code, '42501');
  assert.ok(r.message.includes('permission denied'), r.message);
});

test('a search_path change makes unqualified names unknown until it lands', () => {
  assert.is(rewrite('set search_path = crm').kind, 'forward');
  assert.is(refusal(rewrite('select * from employees', { searchPathKnown: false })).code, '42501');
  assert.is(rewrite('select * from crm.employees', { searchPathKnown: false }).kind, 'rewrite');
});

test.run();
