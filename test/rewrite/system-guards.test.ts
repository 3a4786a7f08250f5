// B5: statistics that count or show rows of protected tables are hidden or
// refused, while catalog browsing keeps working.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';
import { psql } from '../helpers/run.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({ extraSql: 'INSERT INTO crm.employees SELECT g, \'globex\', \'n\' || g, \'000-00-0000\', 1 FROM generate_series(10, 5000) g; ANALYZE crm.employees; ANALYZE public.lookup;' });
});
test.after(async () => { await h?.close(); });

test('B5 pg_class.reltuples and relpages are hidden for protected tables only', async () => {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  try {
    const r = await c.query("select relname, reltuples, relpages from pg_catalog.pg_class where relname in ('employees', 'lookup') order by relname");
    assert.equal(r.rows.map((x: { relname: string; reltuples: number; relpages: number }) => [x.relname, x.reltuples, x.relpages]), [['employees', -1, 0], ['lookup', 2, 1]]);
    const star = await c.query("select * from pg_class c where c.relname = 'employees'");
    assert.is(star.rows[0].reltuples, -1);
    assert.ok('relnamespace' in star.rows[0], 'every other column passes through');
  } finally {
    await c.end();
  }
});

test('B5 pg_stat_get_* functions and pg_stats are refused', async () => {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  try {
    for (const sql of ["select pg_stat_get_live_tuples('crm.employees'::regclass)", "select most_common_vals from pg_stats where tablename = 'employees'", 'select n_live_tup from pg_stat_user_tables']) {
      const err = await c.query(sql).then(() => undefined, (e) => e as { code?: string });
      assert.is(err?.code, '42501', sql);
    }
  } finally {
    await c.end();
  }
});

test('B5 relation sizes are NULL for protected relations, real for the others; psql \\dt+ works', async () => {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  try {
    const r = await c.query("select pg_table_size('crm.employees') as p, pg_total_relation_size('crm.employees'::regclass) as t, pg_table_size('public.lookup') > 0 as u");
    assert.equal(r.rows, [{ p: null, t: null, u: true }]);
  } finally {
    await c.end();
  }
  const dt = await psql(`host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=alice@acme.com sslmode=require`, '\\dt+ crm.*', passwords['alice@acme.com']);
  assert.is(dt.stderr, '');
  assert.match(dt.stdout, /employees/);
});

test('psql \\d and \\dt still work through the guard', async () => {
  const info = `host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=alice@acme.com sslmode=require`;
  const dt = await psql(info, '\\dt crm.*', passwords['alice@acme.com']);
  assert.is(dt.stderr, '');
  assert.match(dt.stdout, /employees/);
  const d = await psql(info, '\\d crm.employees', passwords['alice@acme.com']);
  assert.is(d.stderr, '');
  assert.match(d.stdout, /ssn/);
});

test.run();
