// Side doors and false refusals around system relations (threats B5, B6, C4 in docs/threat-model.md):
// the functions behind a refused system view are refused like it, while
// statements that reveal nothing about protected tables answer as upstream
// does (cluster-wide statistics, TABLESAMPLE on pg_class, FOR SHARE OF an
// alias, a table whose rules leave this user every row and value).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, policyDefaults, type Harness } from '../helpers/harness.js';
import { systemRelationRefusal } from '../../src/rewrite/functions.js';

let h: Harness;
let major = 18;
test.before(async () => {
  h = await startHarness({
    extraSql: `CREATE TABLE crm.notes (id int PRIMARY KEY, body text);
      INSERT INTO crm.notes SELECT g, 'note ' || g FROM generate_series(1, 50) g;
      GRANT SELECT ON crm.notes TO pgveil_service;
      ANALYZE crm.employees; ANALYZE public.lookup;
      GRANT UPDATE ON public.lookup, crm.employees TO pgveil_service;`,
    policyYaml: `${policyDefaults}tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
  crm.notes:
    access:
      deny: { users: [bob@globex.com] }
`,
  });
  major = Math.floor(Number((await superuser((c) => c.query('show server_version_num'))).rows[0].server_version_num) / 10000);
});
test.after(async () => { await h?.close(); });

async function superuser<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await h.pg.connect('analytics');
  try { return await fn(c); } finally { await c.end(); }
}

async function as<T>(user: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(clientConfig(h, user));
  await c.connect();
  try { return await fn(c); } finally { await c.end(); }
}

type Failure = { code?: string; message: string };
const failure = (c: pg.Client, sql: string) => c.query(sql).then(() => undefined, (e: Failure) => e);

test('C4 pg_lock_status() is refused like pg_locks', async () => {
  await as('alice@acme.com', async (c) => {
    for (const sql of ['select * from pg_lock_status()', 'select pid, relation from pg_catalog.pg_lock_status()',
      'select (pg_lock_status()).pid', 'select * from rows from (pg_catalog.pg_lock_status()) l']) {
      const err = await failure(c, sql);
      assert.is(err?.code, '42501', sql);
      assert.match(err!.message, /pg_locks/, sql);
    }
  });
});

test('B6 C4 for every refused system view, each function in its FROM is refused', async () => {
  // Oracle independent of pgveil's parser: the function names right after FROM/JOIN in the upstream's own definitions.
  const views = await superuser((c) => c.query<{ name: string; def: string }>(
    "select relname::text as name, pg_get_viewdef(oid) as def from pg_class where relnamespace = 'pg_catalog'::regnamespace and relkind = 'v'"));
  const expected = new Map<string, string>();
  for (const v of views.rows) {
    if (!systemRelationRefusal(v.name)) continue;
    // Top-level FROM only: a function in a subquery `( SELECT … )` produces no row of the view.
    let top = v.def;
    for (let at = top.search(/\(\s*SELECT\b/); at !== -1; at = top.search(/\(\s*SELECT\b/)) {
      let depth = 0;
      let end = at;
      do { if (top[end] === '(') depth++; if (top[end] === ')') depth--; end++; } while (depth > 0 && end < top.length);
      top = top.slice(0, at) + 'sub' + top.slice(end);
    }
    for (const m of top.matchAll(/\b(?:FROM|JOIN)\s+\(*(?:pg_catalog\.)?(\w+)\(/g)) expected.set(m[1], v.name);
  }
  assert.ok(expected.has('pg_lock_status') && expected.has('pg_stat_get_activity'), `found ${[...expected.keys()]}`);
  await as('alice@acme.com', async (c) => {
    for (const [fn, view] of expected) {
      const err = await failure(c, `select * from pg_catalog.${fn}()`);
      assert.is(err?.code, '42501', `${fn} (behind ${view}): ${err?.message}`);
    }
  });
});

test('B5 cluster-wide statistics without per-table data answer', async () => {
  const views = ['pg_stat_bgwriter', 'pg_stat_archiver', 'pg_stat_wal', 'pg_stat_slru',
    ...(major >= 15 ? ['pg_stat_recovery_prefetch'] : []), ...(major >= 16 ? ['pg_stat_io'] : []), ...(major >= 17 ? ['pg_stat_checkpointer'] : [])];
  const functions = ['pg_stat_get_buf_alloc()', 'pg_stat_get_snapshot_timestamp()', 'pg_stat_get_bgwriter_maxwritten_clean()', 'pg_stat_get_bgwriter_stat_reset_time()',
    ...(major >= 17 ? ['pg_stat_get_checkpointer_num_timed()'] : ['pg_stat_get_bgwriter_timed_checkpoints()'])];
  await as('alice@acme.com', async (c) => {
    for (const v of views) {
      const r = await c.query(`select count(*)::int as n from pg_catalog.${v}`);
      assert.ok(r.rows[0].n >= 1, v);
    }
    for (const f of functions) await c.query(`select ${f}`);
    // Per-table, per-row or per-session statistics stay refused.
    for (const sql of ['select * from pg_stat_database', 'select * from pg_stat_replication', 'select * from pg_stat_user_tables',
      'select * from pg_stat_get_wal_senders()', "select pg_stat_get_live_tuples('crm.employees'::regclass)",
      'select pg_stat_get_db_tuples_returned(1)', "select pg_stat_reset_shared('bgwriter')"]) {
      assert.is((await failure(c, sql))?.code, '42501', sql);
    }
  });
});

test('TABLESAMPLE on pg_class works, with the statistics columns still hidden', async () => {
  await as('alice@acme.com', async (c) => {
    const all = await c.query('select count(*)::int as n from pg_catalog.pg_class tablesample system (100)');
    assert.ok(all.rows[0].n > 100);
    const r = await c.query("select relname, reltuples from pg_class c TABLESAMPLE bernoulli (100) REPEATABLE (7) where c.relname in ('employees', 'lookup') order by 1");
    assert.equal(r.rows.map((x: { relname: string; reltuples: number }) => [x.relname, x.reltuples]), [['employees', -1], ['lookup', 2]]);
    const none = await c.query('select count(*)::int as n from pg_catalog.pg_class as k tablesample system (0)');
    assert.is(none.rows[0].n, 0);
  });
});

test('TABLESAMPLE on a table whose rules leave this user every row (an access deny for others) answers', async () => {
  await as('alice@acme.com', async (c) => {
    const r = await c.query('select count(*)::int as n from crm.notes tablesample system (100)');
    assert.is(r.rows[0].n, 50);
    const plain = await c.query('select count(*)::int as n from crm.notes n where n.id <= 10');
    assert.is(plain.rows[0].n, 10);
  });
  await as('bob@globex.com', async (c) => {
    for (const sql of ['select * from crm.notes tablesample system (100)', 'select * from crm.notes']) {
      assert.is((await failure(c, sql))?.code, '42501', sql);
    }
  });
  await as('alice@acme.com', async (c) => {
    // A table with an ownership filter stays unsampleable.
    assert.is((await failure(c, 'select * from crm.employees tablesample system (100)'))?.code, '42501');
  });
});

test('FOR SHARE OF / FOR UPDATE OF name an alias, not a relation', async () => {
  await as('alice@acme.com', async (c) => {
    const r = await c.query('select l.code from public.lookup l order by 1 for share of l');
    assert.equal(r.rows.map((x: { code: string }) => x.code), ['a', 'b']);
    const u = await c.query('select code from public.lookup for update of lookup');
    assert.is(u.rowCount, 2);
    // On a protected table's alias the lock applies to the guarded subquery (Postgres locks the rows it returns): only the user's rows.
    for (const sql of ['select e.name from crm.employees e for update of e', 'select name from crm.employees for share of employees',
      'select e.name from crm.employees e, public.lookup l where l.code = \'a\' for update of e, l']) {
      const res = await c.query(sql);
      assert.equal(res.rows, [{ name: 'Ann' }], sql);
    }
  });
});

test('B5 relation-size calls with a parenthesised first argument answer (NULL for protected relations)', async () => {
  await as('alice@acme.com', async (c) => {
    const r = await c.query(`select pg_relation_size(cast('crm.employees' as regclass), 'main') as p,
      pg_catalog.pg_relation_size((('crm.employees')::regclass), ('main')) as q,
      pg_relation_size(cast('public.lookup' as regclass), cast('main' as text)) > 0 as u`);
    assert.equal(r.rows, [{ p: null, q: null, u: true }]);
  });
});

test.run();
