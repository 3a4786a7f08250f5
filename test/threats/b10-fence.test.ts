// B10 (docs/threat-model.md): a SELECT whose every condition is leakproof
// goes without the guarded subquery's OFFSET 0 fence, so PostgreSQL can flatten
// it (an index-ordered top-N across a join); anything else keeps the fence, and
// a cheap leaky function still never sees another organization's row.
// Runs on every supported major (test/versions.json).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';
import { UpstreamLog, explainAsSuperuser } from '../helpers/upstream-log.js';
import { RawClient, cstr, frame, int16, int32, msg } from '../helpers/raw-client.js';

const fixtureSql = `
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id int PRIMARY KEY, org_id text NOT NULL, name text NOT NULL, email text);
INSERT INTO shop.customers SELECT i, CASE WHEN i % 2 = 0 THEN 'acme' ELSE 'globex' END,
  CASE WHEN i % 2 = 0 THEN 'AcmeName' ELSE 'GlobexCanary' END || i, 'c' || i || '@example.com'
  FROM generate_series(1, 2000) i;
CREATE TABLE shop.orders (id int PRIMARY KEY, org_id text NOT NULL, customer_id int NOT NULL, note text NOT NULL, placed timestamptz NOT NULL);
INSERT INTO shop.orders SELECT i, CASE WHEN i % 2 = 0 THEN 'acme' ELSE 'globex' END,
  (i * 7) % 1000 * 2 + CASE WHEN i % 2 = 0 THEN 2 ELSE 1 END,
  CASE WHEN i % 2 = 0 THEN 'acme note ' ELSE 'GlobexCanaryNote' END || i,
  timestamptz '2026-01-01' + i * interval '1 minute'
  FROM generate_series(1, 20000) i;
CREATE INDEX orders_org_placed ON shop.orders (org_id, placed);
CREATE TABLE public.regions (code text PRIMARY KEY, label text);
INSERT INTO public.regions VALUES ('n', 'north'), ('s', 'south');
-- What alice (acme) may see, for the superuser's side of the comparisons.
CREATE SCHEMA mirror;
CREATE TABLE mirror.customers AS SELECT * FROM shop.customers WHERE org_id = 'acme';
CREATE TABLE mirror.orders AS SELECT * FROM shop.orders WHERE org_id = 'acme';
ANALYZE shop.customers, shop.orders, public.regions;
GRANT USAGE ON SCHEMA shop TO pgveil_service;
GRANT SELECT ON ALL TABLES IN SCHEMA shop TO pgveil_service;
GRANT SELECT ON public.regions TO pgveil_service;
CREATE FUNCTION public.peek(a text, b text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
  AS $$ BEGIN RAISE NOTICE 'peek: % %', a, b; RETURN true; END $$;
GRANT EXECUTE ON FUNCTION public.peek(text, text) TO pgveil_service;
`;

const policyYaml = `
functions: { allow: ["public.peek"] }
tables:
  shop.orders:
    ownership:
      - filter: "org_id = \${user.org}"
  shop.customers:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      email: { mask: email }
`;

let h: Harness;
let alice: pg.Client;
let su: pg.Client;
const notices: string[] = [];
const log = new UpstreamLog();

test.before(async () => {
  // TLS optional: the raw client below logs in without it.
  h = await startHarness({ tlsMode: 'prefer', extraSql: fixtureSql, policyYaml, postgresSettings: log.settings, onPostgresLog: log.onLog });
  alice = new pg.Client(clientConfig(h, 'alice@acme.com'));
  alice.on('notice', (n) => notices.push(n.message ?? ''));
  await alice.connect();
  su = await h.pg.connect('analytics');
});
test.after(async () => {
  await alice?.end();
  await su?.end();
  await h?.close();
});

/** Runs `sql` through pgveil as alice; returns its rows and the statement pgveil sent upstream. */
async function through(sql: string): Promise<{ rows: unknown[]; upstream: string }> {
  log.clear();
  const r = await alice.query(sql);
  return { rows: r.rows, upstream: await log.last() };
}

test('B10 a SELECT whose every condition is leakproof runs without the fence, with exactly the rows of acme alone', async () => {
  for (const sql of [
    'select o.id, o.placed, c.name from shop.orders o join shop.customers c on c.id = o.customer_id order by o.placed desc, o.id limit 10',
    "select c.name, count(*) as n from shop.orders o join shop.customers c on c.id = o.customer_id where o.placed >= timestamptz '2026-01-05' group by c.name order by n desc, c.name limit 5",
    'select o.id from shop.orders o where o.id in (2, 3, 4, 5) or o.customer_id = 1 order by 1',
    'select x.id, x.note from (select o.id, o.note from shop.orders o) x where x.id between 100 and 104 order by 1',
    'select o.id, c.id from shop.orders o left join shop.customers c on c.id = o.customer_id and c.id < 10 where o.id < 30 order by 1',
    'select id from shop.orders where id < 8 union all select id from shop.customers where id < 8 order by 1',
    'select o.id, (select c.name from shop.customers c where c.id = o.customer_id) from shop.orders o where o.id <= 6 order by 1',
    'select o.customer_id, sum(o.id) as s, rank() over (order by sum(o.id) desc) from shop.orders o where o.id < 300 group by o.customer_id order by 3, 1 limit 5',
    "with recent as (select o.id, o.customer_id from shop.orders o where o.placed > timestamptz '2026-01-10') select c.name, count(*) from recent r join shop.customers c on c.id = r.customer_id group by c.name order by 2 desc, 1 limit 5",
    'select distinct o.customer_id from shop.orders o where o.id between 10 and 20 order by 1',
    'select c.name, x.n from shop.customers c left join lateral (select count(*) as n from shop.orders o where o.customer_id = c.id) x on true where c.id < 10 order by 1',
    'select c.name from shop.customers c full join shop.orders o on o.customer_id = c.id where c.id < 12 and o.id is null order by 1',
    // A table outside the policy: its column types are read from the catalog too.
    "select o.id, r.label from shop.orders o join public.regions r on r.code = 'n' and o.id < 7 order by 1",
    'select o.id, r.label from shop.orders o left join public.regions r on r.label = o.note where o.id < 7 order by 1',
  ]) {
    const { rows, upstream } = await through(sql);
    assert.not.ok(upstream.includes('OFFSET 0'), `no fence expected: ${upstream}`);
    const expected = (await su.query(sql.replaceAll('shop.', 'mirror.'))).rows;
    assert.equal(rows, expected, sql);
  }
  assert.ok(notices.length === 0, 'no function ran');
});

test('B10 without the fence the top-N of a join reads the index in order', async () => {
  const { upstream } = await through('select o.id, o.placed, c.name from shop.orders o join shop.customers c on c.id = o.customer_id order by o.placed desc limit 10');
  assert.match(await explainAsSuperuser(su, upstream), /Index Scan Backward using orders_org_placed/);
});

test("B10 one leaky part anywhere keeps every fence: a cheap function in a join, a subquery's or CTE's output, HAVING, VALUES or an OR never sees another org's row", async () => {
  for (const sql of [
    'select o.id from shop.orders o join shop.customers c on c.id = o.customer_id and public.peek(c.name, o.note) order by o.placed desc limit 5',
    "select o.id from shop.orders o join shop.customers c on c.id = o.customer_id and public.peek(c.name, 'on') where o.id < 200",
    "select x.id from (select c.id, public.peek(c.name, 'out') as p from shop.customers c) x where x.p and x.id < 50",
    "with x as (select c.id, public.peek(c.name, 'cte') as p from shop.customers c) select id from x where x.p and x.id < 50",
    "select c.org_id from shop.customers c where c.id < 40 group by c.org_id, c.name having public.peek(c.name, 'having')",
    "select o.id from shop.orders o, lateral (values (public.peek(o.note, 'values'))) v(p) where v.p and o.id < 50",
    "select o.id from shop.orders o join shop.customers c on c.id = o.customer_id where o.id < 100 and (c.name = 'x' or public.peek(c.name, 'or'))",
    "select o.id from shop.orders o where o.id in (select c.id from shop.customers c where public.peek(c.name, 'in'))",
    'select o.id from shop.orders o join public.regions r on r.code = o.note where public.peek(o.note, r.label)',
  ]) {
    notices.length = 0;
    const { upstream } = await through(sql);
    assert.ok(upstream.includes('OFFSET 0'), `the fence stays: ${upstream}`);
    assert.not.ok(notices.some((n) => /Globex/.test(n)), `${sql}: ${notices.find((n) => /Globex/.test(n))}`);
  }
});

test("B10 a leaky subquery output that no condition uses goes unfenced and runs only on the org's rows", async () => {
  notices.length = 0;
  const { rows, upstream } = await through("select x.id, x.p from (select c.id, public.peek(c.name, 'output') as p from shop.customers c) x where x.id < 40 order by 1");
  assert.not.ok(upstream.includes('OFFSET 0'), upstream);
  assert.is(rows.length, 19);
  assert.is(notices.length, 19, 'peek ran once per returned row');
  assert.ok(notices.every((n) => /AcmeName/.test(n)), notices.join('\n'));
});

test('B10 the oracle discriminates: the same leaky join without the fence shows other orgs\' rows', async () => {
  const { upstream } = await through("select o.id from shop.orders o join shop.customers c on c.id = o.customer_id and public.peek(c.name, 'on') where o.id < 200");
  const seen: string[] = [];
  const listen = (n: { message?: string }) => seen.push(n.message ?? '');
  su.on('notice', listen);
  try {
    await su.query(upstream.replaceAll(' OFFSET 0)', ')'));
  } finally {
    su.off('notice', listen);
  }
  assert.ok(seen.some((n) => /Globex/.test(n)), 'the planner runs the cheap function before the filter once the fence is gone');
});

test("B10 a masked column keeps its relation's fence (the mask is computed per scanned row, and seen, never the raw value)", async () => {
  const { rows, upstream } = await through('select c.email from shop.customers c join shop.orders o on o.customer_id = c.id where o.id < 10 order by o.id');
  const fenced = upstream.split('OFFSET 0)').length - 1;
  assert.is(fenced, 1, `customers keeps its fence, orders goes without: ${upstream}`);
  assert.ok(rows.length > 0 && rows.every((r) => /^c\*\*\*@example\.com$/.test((r as { email: string }).email)), JSON.stringify(rows));
  const whole = await through('select c from shop.customers c where c.id = 2');
  assert.ok(whole.upstream.includes('OFFSET 0'), 'a whole row holds the masked column');
});

test('B10 a parameter the client declares in Parse keeps its type: numeric keeps the fence and the condition above it', async () => {
  const raw = await RawClient.connect(h.proxy.port);
  try {
    await raw.login('alice@acme.com', clientConfig(h, 'alice@acme.com').password as string);
    const sql = 'select o.id from shop.orders o where o.customer_id = $1 order by o.placed desc limit 3';
    for (const [types, fenced] of [[[], false], [[23], false], [[1700], true]] as const) {
      log.clear();
      raw.send(
        frame('P', Buffer.concat([cstr(''), cstr(sql), int16(types.length), ...types.map(int32)])),
        frame('B', Buffer.concat([cstr(''), cstr(''), int16(0), int16(1), int32(1), Buffer.from('2'), int16(0)])),
        msg.execute(''), msg.sync(),
      );
      const answer = await raw.untilReady();
      const error = answer.find((m) => m.type === 'E');
      assert.not.ok(error, `declared ${types.join()}: ${error?.body.toString()}`);
      const upstream = await log.last();
      assert.is(upstream.includes('OFFSET 0'), fenced, `declared ${types.join() || 'none'}: ${upstream}`);
      if (fenced) assert.ok(upstream.indexOf('customer_id = $1') > upstream.indexOf('OFFSET 0'), `the numeric comparison stays above the filter: ${upstream}`);
    }
  } finally {
    raw.close();
  }
});

test.run();
