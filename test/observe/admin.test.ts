// The admin endpoint: /healthz, /readyz (follows upstream), /metrics counts
// what happened, and never carries a secret.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';

let h: Harness;
test.before(async () => { h = await startHarness({ admin: true }); });
test.after(async () => { await h?.close(); });

const get = async (path: string) => {
  const res = await fetch(`http://127.0.0.1:${h.proxy.adminPort}${path}`);
  return { status: res.status, text: await res.text() };
};

test('healthz and readyz answer 200 while upstream is up', async () => {
  assert.is((await get('/healthz')).status, 200);
  assert.is((await get('/readyz')).status, 200);
  assert.is((await get('/nope')).status, 404);
});

test('D4 metrics count connections, auth outcomes and statements, and hold no secret', async () => {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  await c.query('select 1');
  await c.query('select * from pg_catalog.pg_stats').catch(() => {});
  await c.query('select name from crm.employees');
  await c.query('selec 1').catch(() => {});
  await c.end();
  const bad = new pg.Client(clientConfig(h, 'alice@acme.com', { password: 'wrong-wrong-wrong' }));
  await bad.connect().catch(() => {});
  const { status, text } = await get('/metrics');
  assert.is(status, 200);
  assert.match(text, /pgveil_connections_total \d+/);
  assert.match(text, /pgveil_auth_total\{outcome="success"\} [1-9]/);
  assert.match(text, /pgveil_auth_total\{outcome="failure"\} [1-9]/);
  assert.match(text, /pgveil_statements_total\{outcome="forwarded"\} [1-9]/);
  assert.match(text, /pgveil_statements_total\{outcome="refused"\} [1-9]/);
  assert.match(text, /pgveil_statements_total\{outcome="rewritten"\} [1-9]/);
  assert.match(text, /pgveil_cache_misses_total [1-9]/);
  assert.match(text, /pgveil_statements_total\{outcome="syntax_error"\} [1-9]/);
  assert.match(text, /pgveil_rewrite_seconds_bucket/);
  assert.match(text, /pgveil_process_cpu_seconds_total/);
  assert.not.match(text, new RegExp(h.servicePassword));
  assert.not.match(text, /SCRAM-SHA-256\$/);
});

test('E5 readyz turns 503 while upstream is down and 200 again after it returns', async () => {
  await h.pg.stop();
  const down = await get('/readyz');
  assert.is(down.status, 503);
  assert.match(down.text, /upstream unreachable/);
  await h.pg.start();
  assert.is((await get('/readyz')).status, 200);
});

test.run();
