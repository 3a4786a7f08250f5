// Threat E2 in docs/threat-model.md: a statement over the budget is refused before the expensive
// work, with one clear error and no analyzer-gap report; within it, the work
// the analysis does grows linearly with the number of references.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModule, parseSync } from 'libpg-query';
import type { Catalog, CatalogRelation } from '../../src/catalog/types.js';
import type { Profile } from '../../src/policy/types.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { Analyzer } from '../../src/rewrite/analyze.js';
import { guardedParts } from '../../src/rewrite/replacement.js';
import { SqlText } from '../../src/rewrite/sql-text.js';
import { splice } from '../../src/rewrite/splice.js';
import type { Edit } from '../../src/rewrite/analyze.js';
import { MAX_CONSTANTS, MAX_NESTING, MAX_RELATION_REFERENCES, MAX_STATEMENT_CHARS } from '../../src/rewrite/budget.js';

const employees: CatalogRelation = {
  oid: 100, schema: 'crm', name: 'employees', kind: 'table', rootOid: 100,
  columns: [{ name: 'id', baseType: 'int4' }, { name: 'org_id', baseType: 'text' }, { name: 'name', baseType: 'text' }],
} as CatalogRelation;
const catalog: Catalog = {
  byOid: new Map([[100, employees]]),
  byName: new Map([['employees', new Map([['crm', employees]])]]),
  schemas: new Set(['crm', 'public', 'pg_catalog']),
  readers: new Map(), leakproofFunctions: new Set(), leakproofOperators: new Set(['=(int4,int4)']), serviceRole: 'svc', loadedAt: 0,
  functionSchemas: new Map([['count', new Set(['pg_catalog'])]]),
  // The guard facts and indexes a loaded catalog always has: none of them in this fixture.
  serverVersionNum: 180000, children: new Map(), systemViews: new Map(),
  systemColumns: new Map(), protectedOids: [], userOperators: new Map(), typeFunctions: new Map(),
  uniqueColumns: new Map(), referencedRelations: new Set(), writeGuarded: new Set(),
};
const profile: Profile = {
  key: 'k', generation: 1, unlistedRelations: 'allow', writes: 'deny',
  tables: new Map([['crm.employees', { relation: 'crm.employees', access: true, filters: ["org_id = 'acme'"], masks: new Map() }]]),
};
const rewrite = (sql: string) => rewriteSql(sql, { profile, catalog, searchPath: ['public'] });

/** n references to the protected table in one FROM list, each with a pushable predicate. */
const joins = (n: number) => 'select count(*) from ' + Array.from({ length: n }, (_, i) => `crm.employees e${i}`).join(', ')
  + ' where ' + Array.from({ length: n }, (_, i) => `e${i}.id = ${i}`).join(' and ');

test.before(async () => { await loadModule(); });

function assertBudgetRefusal(sql: string, code: string, pattern: RegExp): void {
  const out = rewrite(sql);
  assert.is(out.kind, 'refuse');
  if (out.kind !== 'refuse') return;
  assert.is(out.error.code, code);
  assert.match(out.error.message, pattern);
  assert.match(out.error.hint ?? '', /Split the statement|Simplify/);
  assert.is(out.internal, undefined, 'a budget refusal is a rule, not an analyzer gap');
}

test('E2 a statement longer than the budget is refused before parsing, naming the limit and its length', () => {
  // The finding: 15,000 references to a protected table in one ~800 kB statement.
  const sql = Array.from({ length: 15000 }, (_, i) => `(select count(*) from crm.employees where id = ${i})`).join('+');
  assert.ok(sql.length > MAX_STATEMENT_CHARS);
  assertBudgetRefusal(sql, '54000', new RegExp(`statement has ${sql.length} characters; pgveil analyses at most ${MAX_STATEMENT_CHARS}`));
});

test('E2 more relation references than the budget are refused after the parse, before the analysis', () => {
  const sql = 'select 1 from ' + Array.from({ length: MAX_RELATION_REFERENCES + 1 }, (_, i) => `crm.employees e${i}`).join(', ');
  assert.ok(sql.length < MAX_STATEMENT_CHARS);
  assertBudgetRefusal(sql, '54000', new RegExp(`${MAX_RELATION_REFERENCES + 1} relation references; pgveil analyses at most ${MAX_RELATION_REFERENCES}`));
  assert.is(rewrite(joins(200)).kind, 'rewrite', 'well below the budget the same statement is rewritten');
});

test('E2 a huge IN list is refused cleanly; a large one within the budget is rewritten', () => {
  const list = (n: number) => `select name from crm.employees where id in (${Array.from({ length: n }, (_, i) => i).join(',')})`;
  assertBudgetRefusal(list(MAX_CONSTANTS + 1), '54000', new RegExp(`${MAX_CONSTANTS + 1} constants and parameters`));
  assert.is(rewrite(list(5000)).kind, 'rewrite');
});

test('E2 deep sub-selects and long operator chains are refused as too deep (54001), never as an analyzer gap', () => {
  const deep = (n: number) => 'select ' + '(select id from crm.employees where id = '.repeat(n) + '1' + ')'.repeat(n);
  assertBudgetRefusal(deep(MAX_NESTING), '54001', /levels of nesting; pgveil analyses at most/);
  assertBudgetRefusal(deep(5000), '54001', /nested too deeply/); // the parser's own limit
  assertBudgetRefusal(`select ${Array(50000).fill('id').join('+')} from crm.employees`, '54001', /nested too deeply/);
  assert.is(rewrite(deep(100)).kind, 'rewrite');
});

test('E2 the corpus of real client statements is far below every budget', async () => {
  const { readFileSync } = await import('node:fs');
  const { countTree } = await import('../../src/rewrite/budget.js');
  const corpus = JSON.parse(readFileSync(new URL('../../../test/corpus/client-statements.json', import.meta.url), 'utf8')) as unknown;
  const items = (Array.isArray(corpus) ? corpus : Object.values(corpus as object)) as Array<string | { sql?: string; text?: string }>;
  let checked = 0;
  for (const item of items) {
    const sql = typeof item === 'string' ? item : item.sql ?? item.text ?? '';
    let stmts: unknown[];
    try { stmts = parseSync(sql).stmts ?? []; } catch { continue; }
    const c = countTree(stmts);
    assert.ok(sql.length * 20 < MAX_STATEMENT_CHARS && c.references * 20 < MAX_RELATION_REFERENCES
      && c.constants * 20 < MAX_CONSTANTS && c.depth * 20 < MAX_NESTING, `budget too tight for: ${sql.slice(0, 60)}`);
    checked++;
  }
  assert.ok(checked >= 20, `only ${checked} corpus statements checked`);
});

/** Property reads the analyzer makes on the parse tree: a count of its work that does not depend on the machine. */
function treeReads(sql: string): number {
  let reads = 0;
  const seen = new WeakMap<object, object>();
  const wrap = (v: unknown): unknown => {
    if (!v || typeof v !== 'object') return v;
    const cached = seen.get(v);
    if (cached) return cached;
    const proxy = new Proxy(v as object, { get(target, key, receiver) { reads++; return wrap(Reflect.get(target, key, receiver)); } });
    seen.set(v, proxy);
    return proxy;
  };
  const stmts = wrap(parseSync(sql).stmts) as unknown[];
  const analysis = new Analyzer(new SqlText(sql), {
    profile, catalog, allowedFunctions: new Set(), listenChannels: new Set(),
    replacement: (rel, table, inh) => guardedParts(profile, rel, table, inh),
  }, ['public']).run(stmts);
  assert.is(analysis.refusal, undefined);
  assert.is(analysis.edits.filter((e) => e.generated).length, sql.split('crm.employees').length - 1);
  return reads;
}

test('E2 the analysis does linear work in the number of references and predicates', () => {
  const small = treeReads(joins(100));
  const large = treeReads(joins(800));
  // 8× the references: linear work reads ~8× as much; the former per-reference scan of every predicate read ~64×.
  assert.ok(large < small * 10, `8× the references cost ${(large / small).toFixed(1)}× the tree reads`);
});

test('E2 the splice index map answers by binary search exactly as a scan of the edits would', () => {
  const sql = joins(300);
  const out = rewrite(sql);
  assert.is(out.kind, 'rewrite');
  // Reference: the shift of every edit that starts before the index, and moved text where it landed.
  const analysis = new Analyzer(new SqlText(sql), {
    profile, catalog, allowedFunctions: new Set(), listenChannels: new Set(),
    replacement: (rel, table, inh) => guardedParts(profile, rel, table, inh),
  }, ['public']).run(parseSync(sql).stmts ?? []);
  const spliced = splice(sql, analysis.edits);
  const edits: Edit[] = [...analysis.edits].sort((a, b) => a.start - b.start);
  const naive = (i: number): number => {
    let out = 0;
    let pos = 0;
    for (const e of edits) {
      out += e.start - pos;
      for (const m of e.moved ?? []) if (i >= m.from && i < m.from + m.length) return out + m.to + (i - m.from);
      out += e.text.length;
      pos = e.end;
    }
    let shift = 0;
    for (const e of edits) { if (e.start >= i) break; shift += e.text.length - (e.end - e.start); }
    return i + shift;
  };
  let moved = 0;
  for (let i = 0; i < sql.length; i++) {
    const inEdit = edits.some((e) => i >= e.start && i < e.end);
    const inMoved = edits.some((e) => (e.moved ?? []).some((m) => i >= m.from && i < m.from + m.length));
    if (inMoved) moved++;
    if (inEdit && !inMoved) continue;
    assert.is(spliced.map(i), naive(i), `index ${i}`);
  }
  assert.ok(moved > 0, 'some predicates were pushed down');
  if (out.kind === 'rewrite') assert.is(out.sql, spliced.sql);
});

test.run();
