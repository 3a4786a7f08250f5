// The verifier is the second line: whatever the analyzer missed, a protected
// relation outside pgveil's own subqueries refuses the statement.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModule } from 'libpg-query';
import type { Catalog, CatalogRelation } from '../../src/catalog/types.js';
import type { Profile } from '../../src/policy/types.js';
import { splice } from '../../src/rewrite/splice.js';
import { verifyRewrite } from '../../src/rewrite/verify.js';

const employees: CatalogRelation = { oid: 100, schema: 'crm', name: 'employees', kind: 'table', rootOid: 100 };
const lookup: CatalogRelation = { oid: 200, schema: 'public', name: 'lookup', kind: 'table', rootOid: 200 };
const catalog: Catalog = {
  byOid: new Map([[100, employees], [200, lookup]]),
  byName: new Map([['employees', new Map([['crm', employees]])], ['lookup', new Map([['public', lookup]])]]),
  schemas: new Set(['crm', 'public', 'pg_catalog']),
  readers: new Map(), leakproofFunctions: new Set(), leakproofOperators: new Set(), serviceRole: 'svc', loadedAt: 0,
  functionSchemas: new Map(),
  // The guard facts and indexes a loaded catalog always has: none of them in this fixture.
  serverVersionNum: 180000, children: new Map(), systemViews: new Map(),
  systemColumns: new Map(), protectedOids: [], userOperators: new Map(), typeFunctions: new Map(),
  uniqueColumns: new Map(), referencedRelations: new Set(), writeGuarded: new Set(),
};
const profile: Profile = {
  key: 'k', generation: 1, unlistedRelations: 'allow', writes: 'deny',
  tables: new Map([['crm.employees', { relation: 'crm.employees', access: true, filters: ["org_id = 'acme'"], masks: new Map() }]]),
};

test.before(async () => { await loadModule(); });

test('a protected reference left outside the generated subqueries is caught', () => {
  const sql = 'select * from crm.employees e join crm.employees f on true';
  const first = sql.indexOf('crm.employees');
  // An "analyzer" that guarded only the first reference:
  const spliced = splice(sql, [{ start: first, end: first + 13, text: "(SELECT 1 FROM crm.employees WHERE org_id = 'acme' OFFSET 0)", generated: true }]);
  assert.is(verifyRewrite(spliced, [], [['public']], profile, catalog), 'crm.employees');
});

test('references inside generated subqueries, CTE references and unprotected relations pass', () => {
  const sql = 'with employees as (select 1) select * from employees, public.lookup, crm.employees';
  const at = sql.lastIndexOf('crm.employees');
  const spliced = splice(sql, [{ start: at, end: at + 13, text: '(SELECT 1 FROM crm.employees OFFSET 0) AS "employees2"', generated: true }]);
  // "employees" after FROM is the CTE: the analysis recorded it as such.
  const cte = sql.indexOf('employees,');
  assert.is(verifyRewrite(spliced, [cte], [['crm']], profile, catalog), undefined);
  // Without that record, the unqualified name resolves to crm.employees under search_path crm: caught.
  assert.is(verifyRewrite(spliced, [], [['crm']], profile, catalog), 'crm.employees');
});

test.run();
