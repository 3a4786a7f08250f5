// The one walk over libpg-query's tree: every node in field order,
// parents first, with SKIP and STOP, bare structs seen but never taken for
// nodes, and nesting measured as the statement budget counts it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModule, parseSync } from 'libpg-query';
import { SKIP, STOP, asNode, containsNode, minLocation, visit } from '../../src/rewrite/tree.js';

test.before(async () => { await loadModule(); });

const bi = `with recent as (select * from sales.orders o where o.ordered_at > now() - interval '30 days')
  select r.region_name, sum(i.quantity * i.unit_price) over (partition by r.region_code) as total,
         (select count(*) from inventory.products p where p.product_id = i.product_id and p.name like 'A%')
  from recent o join sales.order_items i using (order_id) left join geo.regions r on r.region_code = o.currency
  where o.status in ('open', 'paid') and i.quantity::int8 > $1 and exists (select 1 from crm.employees e where e.id = o.account_id)
  order by 2 desc limit 10;
insert into t (a) select x from u returning a`;

/** The walk's definition, written plainly: recursive, in key order, nodes reported with their type. */
function reference(value: unknown, out: Array<[string | undefined, number]>, depth = 0): number {
  if (!value || typeof value !== 'object') return -1;
  let deepest = depth;
  const children = (body: object, d: number) => {
    for (const v of Object.values(body)) deepest = Math.max(deepest, reference(v, out, d));
  };
  if (Array.isArray(value)) { children(value, depth); return deepest; }
  const node = asNode(value);
  out.push([node?.[0], depth]);
  children(node ? node[1] : value, depth + 1);
  return deepest;
}

test('every object is visited once, parents first, in field order, at the budget\'s depth', () => {
  const stmts = parseSync(bi).stmts ?? [];
  const expected: Array<[string | undefined, number]> = [];
  const deepestExpected = reference(stmts, expected);
  const seen: Array<[string | undefined, number]> = [];
  const deepest = visit(stmts, { enter(type, _body, depth) { seen.push([type, depth]); } });
  assert.equal(seen, expected);
  assert.is(deepest, deepestExpected);
  const types = seen.map(([t]) => t);
  assert.ok(types.indexOf('WithClause') === -1, 'a WITH clause is a bare struct, not a node');
  assert.ok(types.filter((t) => t === 'RangeVar').length === 7, 'the INSERT target (t) is a bare struct');
  assert.is(types[0], undefined, 'a RawStmt holding only `stmt` is not a node named stmt');
});

test('a handler gets its own type\'s body; SKIP leaves out the children, STOP ends the walk', () => {
  const stmts = parseSync(bi).stmts ?? [];
  const relations: string[] = [];
  visit(stmts, { RangeVar(rv) { relations.push(`${rv.schemaname ?? ''}.${rv.relname ?? ''}`); } });
  // Field order: a SELECT's target list comes before its FROM, its WITH clause last.
  assert.equal(relations, ['inventory.products', '.recent', 'sales.order_items', 'geo.regions', 'crm.employees', 'sales.orders', '.u']);
  const outside: string[] = [];
  visit(stmts, { SubLink: () => SKIP, RangeVar(rv) { outside.push(rv.relname ?? ''); } });
  assert.equal(outside, ['recent', 'order_items', 'regions', 'orders', 'u']);
  const first: string[] = [];
  visit(stmts, { RangeVar(rv) { first.push(rv.relname ?? ''); return first.length === 2 ? STOP : undefined; } });
  assert.equal(first, ['products', 'recent']);
});

test('containsNode finds a node type at any depth, and only node types', () => {
  const where = (sql: string) => parseSync(sql).stmts?.[0].stmt;
  assert.ok(containsNode(where('select f((select 1))'), 'SubLink'));
  assert.ok(containsNode(where('select 1 from t where a in (select b from u)'), 'SubLink', 'SetToDefault'));
  assert.not.ok(containsNode(where('select "SubLink" from t'), 'SubLink'), 'an identifier spelled like a node type is not one');
  assert.not.ok(containsNode(where('select 1'), 'SubLink'));
});

test('minLocation is where the first token of a subtree starts, bare structs included', () => {
  const sql = "select f(a, int4 '5')";
  const stmt = asNode(parseSync(sql).stmts?.[0].stmt);
  const target = stmt?.[0] === 'SelectStmt' ? asNode(stmt[1].targetList?.[0]) : undefined;
  const call = target?.[0] === 'ResTarget' ? asNode(target[1].val) : undefined;
  const second = call?.[0] === 'FuncCall' ? call[1].args?.[1] : undefined;
  assert.is(minLocation(second), sql.indexOf('int4'), 'the type name (a bare struct) comes before the literal');
  assert.is(minLocation({}), undefined);
});

test.run();
