// B10: which guarded subqueries go without their OFFSET 0 fence (fence.ts).
// Server-free: the decisions on the unit fixture (crm.accounts has no masks,
// crm.employees masks ssn and salary; =, <, > on int4 and = on text are the
// leakproof operators). What the decisions mean on a real server is tested
// in test/threats/b10-fence.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCatalog, makeProfile, rewrite, rewritten } from './unit-fixture.js';
import { UNTYPED_COLUMN, type CatalogRelation } from '../../src/catalog/types.js';

const functionSchemas = new Map(['count', 'sum', 'lower', 'generate_series'].map((f) => [f, new Set(['pg_catalog'])]));
const leakproofOperators = new Set([...makeCatalog().leakproofOperators, '>=(int4,int4)', '<=(int4,int4)']);
const catalog = makeCatalog({ functionSchemas, leakproofOperators });
const fences = (sql: string, input = {}): number => rewritten(rewrite(sql, { catalog, ...input })).split('OFFSET 0)').length - 1;

test('B10 a SELECT whose every condition is leakproof goes without the fence', () => {
  for (const sql of [
    'select a.id from crm.accounts a join crm.employees e on e.id = a.owner_id where a.id > 5 order by a.id limit 3',
    "select a.id from crm.accounts a where a.org_id = 'x' and a.id in (1, 2) or a.id is null",
    'select a.id, e.name from crm.accounts a left join crm.employees e on e.id = a.owner_id and e.name = $1',
    'select count(*), sum(a.balance) from crm.accounts a join lookup l on l.code = a.org_id group by a.org_id',
    'select s.id from (select a.id, a.org_id from crm.accounts a) s where s.id = 5',
    'select s.id from (select * from crm.accounts) s where s.owner_id > 5',
    'select o.owner_id, o.n from (select a.owner_id, count(*) as n from crm.accounts a group by a.owner_id) o where o.owner_id < 9',
    'select id from crm.accounts where id between 1 and 9',
    'select id from crm.accounts a where a.id is not distinct from 4',
    'select id from crm.accounts union all select id from crm.employees',
    "select a.id, (select count(*) from crm.employees e where e.id = a.owner_id) from crm.accounts a where a.org_id = text 'x'",
    'select * from crm.accounts',
    'with x as (select 1 as k) select a.id from crm.accounts a join x on x.k = a.id',
    'with x as (select a.id, a.owner_id from crm.accounts a) select e.name from x join crm.employees e on e.id = x.owner_id where x.id > 1',
    // Outputs no condition uses may be anything: lower() and sum() run above the scans then.
    'select s.l, s.n from (select a.id, lower(a.org_id) as l, sum(a.balance) as n from crm.accounts a group by a.id, a.org_id) s where s.id = 5',
    "select a.id, v.c from crm.accounts a, (values (lower('x'))) v(c) where a.id > 1",
    'select e.name, e.hired from crm.employees e where e.id = 1',
  ]) assert.is(fences(sql), 0, sql);
});

test('B10 one part that is not evidently leakproof keeps every fence of the statement', () => {
  for (const sql of [
    "select a.id from crm.accounts a where lower(a.org_id) = 'x'", // a function
    "select a.id from crm.accounts a where a.id::text = '1'", // a cast of a column
    'select a.id from crm.accounts a where a.id + 1 = 2', // arithmetic (may raise)
    'select a.id from crm.accounts a where a.balance = 5', // numeric: not leakproof
    'select a.id from crm.accounts a where exists (select 1 from crm.notes n where n.id = a.id)', // a subquery in a condition
    'select a.id from crm.accounts a where a.id = any(array[1, 2])',
    "select a.id from crm.accounts a where a.org_id like 'a%'",
    "with x as (select lower('a') as k) select a.id from crm.accounts a join x on x.k = a.org_id", // a CTE output that is not evident
    'with x as (select a.id from crm.accounts a), y as (with x as (select 1 as id) select id from x) select a.id from crm.accounts a join x on x.id = a.id', // x defined twice: not typed
    'select a.id from crm.accounts a join crm.employees e using (id)', // USING compares by operators pgveil would guess
    "select s.id from (select a.id, lower(a.org_id) as l from crm.accounts a) s where s.l = 'x'", // a subquery output an outer condition could be pushed onto
    "select a.org_id from crm.accounts a group by a.org_id having lower(a.org_id) = 'x'", // HAVING without an aggregate becomes WHERE
    "select a.id from crm.accounts a join (values (lower('x'))) v(c) on v.c = a.org_id", // a VALUES list
    'select a.id from crm.accounts a, generate_series(1, a.id) g', // a function in FROM
    "select a.id from crm.accounts a where a.org_id = 'x' or lower(a.org_id) = 'y'",
    'select s.c from (select a.org_id, count(*) as c from crm.accounts a group by 1) s where s.c > 1', // an aggregate's output is not typed
    // name: e's, or the unnamed output's made-up name one level down? Not guessed.
    "select e.id from crm.employees e, lateral (select s.k from (select lower(a.org_id), a.id as k from crm.accounts a) s where name = 'x') t",
  ]) assert.is(fences(sql), (sql.match(/crm\.(accounts|employees)/g) ?? []).length, sql);
  assert.is(fences("select a.id, e.id from crm.accounts a join crm.employees e on e.id = a.owner_id where lower(e.name) = 'x'"), 2);
});

test("B10 a relation's fence stays while the statement names one of its masked columns or a whole row", () => {
  assert.is(fences('select e.id from crm.employees e where e.id = 1 order by e.ssn'), 1, 'a masked column anywhere');
  assert.is(fences('select e.ssn from crm.employees e join crm.accounts a on a.owner_id = e.id'), 1, 'only the masked relation keeps it');
  assert.is(fences('select e from crm.employees e'), 1, 'a whole row carries the masked columns');
  assert.is(fences('select * from crm.employees'), 1);
  assert.is(fences('select e.* from crm.employees e'), 1);
  assert.is(fences('select count(*) from crm.employees e where e.id > 3'), 0);
});

test('B10 writes, and filters with a subquery, keep the fence', () => {
  const writes = rewritten(rewrite('insert into crm.notes select a.id, a.org_id from crm.accounts a where a.id = 1', { profile: makeProfile('allow') }));
  assert.ok(writes.includes('OFFSET 0)'), writes);
  const profile = makeProfile();
  const accounts = profile.tables.get('crm.accounts');
  if (!accounts) throw new Error('fixture');
  profile.tables.set('crm.accounts', { ...accounts, filters: ["org_id IN (SELECT 'acme')"] });
  assert.is(fences('select a.id from crm.accounts a where a.id = 1', { profile }), 1, 'a filter PostgreSQL could turn into a join');
});

test('B10 the decision never rests on what the shape cache cannot see', () => {
  // A user-defined = could be the one PostgreSQL picks.
  const userOperators = new Map([['=', new Set(['public'])]]);
  const rules = { allowedFunctions: new Set(['public.=']), listenChannels: new Set<string>() };
  const withUserEq = rewritten(rewrite('select a.id from crm.accounts a where a.id = 1', { catalog: makeCatalog({ userOperators }), rules }));
  assert.is(withUserEq.split('OFFSET 0)').length - 1, 1, withUserEq);
  assert.not.ok(/where true/i.test(withUserEq), `nor is the comparison moved below the filter: ${withUserEq}`);
  // 3000000000 is int8 and 1.5 numeric to the parser, one kind to the shape: a decision that differs is cached by full text.
  const int8 = makeCatalog({ leakproofOperators: new Set(['=(int4,int4)', '=(text,text)', '=(int4,int8)']) });
  const big = rewrite('select a.id from crm.accounts a where a.owner_id = 3000000000', { catalog: int8 });
  assert.is(rewritten(big).split('OFFSET 0)').length - 1, 0);
  assert.is(big.shapeSafe, false, 'int8 is leakproof here, numeric not: the value decides');
  const same = rewrite('select a.id from crm.accounts a where a.owner_id = 3000000000');
  assert.is(same.shapeSafe, true, 'neither is leakproof: the value decides nothing');
});

test('B10 a parameter the client declared has its own type: the operator PostgreSQL picks for it decides', () => {
  const sql = 'select a.id from crm.accounts a where a.owner_id = $1';
  for (const [types, fenced] of [['', 0], ['int4', 0], [',', 0], ['numeric', 1], ['?', 1], ['text', 1]] as const) {
    const out = rewritten(rewrite(sql, { catalog, parameterTypes: types }));
    assert.is(out.split('OFFSET 0)').length - 1, fenced, `declared ${JSON.stringify(types)}: ${out}`);
    // The pushdown rests on the same operator: a numeric $1 stays above the filter.
    assert.is(/where true/i.test(out), fenced === 0, `declared ${JSON.stringify(types)}: ${out}`);
  }
});

test('B10 a table outside the policy types a join condition by the column types pgveil read for it', () => {
  const withDim = makeCatalog({ functionSchemas, leakproofOperators });
  const dim: CatalogRelation = {
    oid: 202, schema: 'public', name: 'dim', kind: 'table', rootOid: 202,
    columnTypes: new Map([['n', 'int4'], ['code', 'text'], ['big', 'numeric'], ['dom', UNTYPED_COLUMN]]),
  };
  withDim.byOid.set(dim.oid, dim);
  withDim.byName.set(dim.name, new Map([[dim.schema, dim]]));
  const count = (sql: string) => rewritten(rewrite(sql, { catalog: withDim })).split('OFFSET 0)').length - 1;
  assert.is(count('select a.id, d.code from crm.accounts a join dim d on d.n = a.id'), 0);
  assert.is(count("select a.id from crm.accounts a join dim d on d.code = a.org_id where d.n > 3"), 0);
  assert.is(count('select a.id from crm.accounts a join dim d on d.big = a.id'), 1, 'numeric = int4 is not leakproof');
  assert.is(count('select a.id from crm.accounts a join dim d on d.dom = a.id'), 1, 'a domain column is not typed');
  assert.is(count('select a.id from crm.accounts a join dim d on d.nope = a.id'), 1, 'an unknown column is not typed');
});

test.run();
