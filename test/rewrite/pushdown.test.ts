// B10: predicates stay above the ownership filter unless they are leakproof
// comparisons on unmasked columns; those move inside the guarded subquery so
// indexes still serve them — and the rewrite stays cacheable by shape.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';
import { UpstreamLog, explainAsSuperuser } from '../helpers/upstream-log.js';

let h: Harness;
const log = new UpstreamLog();
test.before(async () => {
  h = await startHarness({
    postgresSettings: log.settings,
    onPostgresLog: log.onLog,
    extraSql: `
      CREATE TABLE public.accounts (aid int PRIMARY KEY, org text NOT NULL, abalance int NOT NULL, note text);
      INSERT INTO public.accounts SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, g % 1000, 'n' || g FROM generate_series(1, 50000) g;
      ANALYZE public.accounts;
      GRANT SELECT ON public.accounts TO pgveil_service;
      CREATE FUNCTION public.peek(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$ BEGIN RAISE NOTICE 'peek %', t; RETURN true; END $$;
      GRANT EXECUTE ON FUNCTION public.peek(text) TO pgveil_service;`,
    policyYaml: `
functions:
  allow: [public.peek]
tables:
  public.accounts:
    ownership:
      - filter: "org = \${user.org}"
    redaction:
      note: { mask: "null" }
`,
  });
});
test.after(async () => { await h?.close(); });

/** Runs the statement through pgveil, then EXPLAINs what reached upstream as the superuser. */
async function explain(c: pg.Client, sql: string, values?: unknown[]): Promise<string> {
  log.clear();
  await c.query(sql, values);
  const su = await h.pg.connect('analytics');
  try {
    return await explainAsSuperuser(su, (await log.last()), values);
  } finally {
    await su.end();
  }
}

test('B10 a leakproof key lookup uses the index (simple and extended protocol)', async () => {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  const simple = await explain(c, 'select abalance from public.accounts where aid = 48212');
  assert.match(simple, /Index Scan using accounts_pkey/);
  const extended = await explain(c, 'select abalance from public.accounts a where a.aid = $1', [48212]);
  assert.match(extended, /Index Scan using accounts_pkey/);
  const refused = await c.query('explain select abalance from public.accounts where aid = 48212').then(() => undefined, (e) => e as { code?: string });
  assert.is(refused?.code, '42501', 'B7: EXPLAIN over a protected table is refused through pgveil');
  const row = await c.query('select abalance from public.accounts where aid = 48212');
  assert.equal(row.rows, [{ abalance: 212 }]);
  const other = await c.query('select abalance from public.accounts where aid = 48213');
  assert.equal(other.rows, [], 'a row of another org answers like a missing one');
  await c.end();
});

test("B10 a non-leakproof predicate never sees another org's rows", async () => {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? ''));
  await c.connect();
  await c.query('select aid from public.accounts where peek(org) and aid < 10');
  assert.ok(notices.length > 0, 'the function ran');
  assert.ok(notices.every((m) => m === 'peek acme'), `notices: ${[...new Set(notices)].join(', ')}`);
  await c.end();
});

test('B10 predicates on masked columns stay outside and see the mask', async () => {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  const r = await c.query("select count(*)::int as n from public.accounts where note = 'n2'");
  assert.is(r.rows[0].n, 0);
  await c.end();
});

test('pushed-down constants still share one cache entry per shape', async () => {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  const before = h.proxy.metrics;
  void before;
  for (const aid of [2, 4, 6, 8, 10]) {
    const r = await c.query(`select abalance from public.accounts where aid = ${aid}`);
    assert.equal(r.rows, [{ abalance: aid }]);
  }
  const text = await h.proxy.metrics.registry.getSingleMetricAsString('pgveil_cache_hits_total');
  assert.match(text, /pgveil_cache_hits_total [4-9]/);
  await c.end();
});

test.run();
