// Threat C4 (docs/threat-model.md) on a reused upstream connection: pgveil
// keeps idle upstream connections of the service role and hands them to the
// next session (upstream.pool). Whatever a session leaves on its backend —
// prepared statements, WITH HOLD cursors, LISTENs, settings, search_path, an
// open or failed transaction, and (straight on the pool, as pgveil refuses
// them to clients) temp tables, advisory locks, another role, sequence
// state — must not reach the next user. Each test first proves the next
// session really got the same upstream backend, or the test could not fail.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, startProxyVariant, clientConfig, employeesPolicy, passwords, type Harness } from '../helpers/harness.js';
import { RawClient, msg, type BackendMessage } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/run.js';
import { UpstreamPool, CHECK_CLEAN, POOLED_APPLICATION_NAME, whatIsLeft } from '../../src/upstream/pool.js';
import { exchange } from '../../src/upstream/raw-exchange.js';
import { searchPathProbe } from '../../src/upstream/search-path-probe.js';
import { writeQuery } from '../../src/protocol/frontend-messages.js';
import type { UpstreamConnection } from '../../src/upstream/connect.js';
import type { UpstreamConfig } from '../../src/config/types.js';
import { ProxyMetrics } from '../../src/observe/metrics.js';
import { silentLogger } from '../../src/observe/log.js';
import { TxStatus } from '../../src/protocol/codes.js';
import type { ProxyHandle } from '../../src/session/server.js';

const ALICE = 'alice@acme.com';
const BOB = 'bob@globex.com';
let h: Harness;

test.before(async () => {
  h = await startHarness({
    policyYaml: `${employeesPolicy}channels:\n  listen: [dashboard_refresh]\n`,
    tlsMode: 'prefer', // the raw client logs in without TLS; node-postgres clients use it
    extraSql: `CREATE ROLE pool_other; GRANT pool_other TO pgveil_service; CREATE SEQUENCE public.pool_seq; GRANT USAGE ON SEQUENCE public.pool_seq TO pgveil_service;`,
  });
});
test.after(async () => { await h?.close(); });

interface Session { c: pg.Client; notifications: string[]; applicationNames: string[] }

async function open(user: string, proxy: ProxyHandle = h.proxy): Promise<Session> {
  const c = new pg.Client({ ...clientConfig(h, user), port: proxy.port });
  const s: Session = { c, notifications: [], applicationNames: [] };
  c.on('notification', (n) => s.notifications.push(`${n.channel}:${n.payload ?? ''}`));
  c.on('error', () => {});
  (c as unknown as { connection: { on(e: string, f: (m: { parameterName: string; parameterValue: string }) => void): void } }).connection
    .on('parameterStatus', (m) => { if (m.parameterName === 'application_name') s.applicationNames.push(m.parameterValue); });
  await c.connect();
  return s;
}

const one = async (c: pg.Client, sql: string): Promise<unknown> => Object.values((await c.query(sql)).rows[0])[0];
const errorCode = (c: pg.Client, sql: string): Promise<string | undefined> => c.query(sql).then(() => undefined, (e: { code?: string }) => e.code);
const backendPid = (c: pg.Client) => one(c, 'select pg_backend_pid()');

async function idleCount(proxy: ProxyHandle): Promise<number> {
  return (await proxy.metrics.upstreamIdle.get()).values[0]?.value ?? 0;
}

/** Ends the session and waits until its upstream connection is reset, checked and pooled. */
async function endAndPool(s: Session, proxy: ProxyHandle = h.proxy): Promise<void> {
  const before = await idleCount(proxy);
  await s.c.end();
  await waitFor('the upstream connection back in the pool', async () => (await idleCount(proxy)) > before)
    .catch(async (err: Error) => { throw new Error(`${err.message} (resets: ${JSON.stringify((await proxy.metrics.upstreamResets.get()).values)})`); });
}

test('C4 a pooled connection carries no prepared statement, cursor, LISTEN, setting or search_path to the next user', async () => {
  const alice = await open(ALICE);
  const pid = await backendPid(alice.c);
  const defaults = { workMem: await one(alice.c, 'show work_mem'), path: await one(alice.c, 'show search_path') };
  await alice.c.query('prepare cross_p as select name, ssn from crm.employees');
  await alice.c.query('declare cross_c cursor with hold for select name, ssn from crm.employees');
  await alice.c.query("set work_mem = '7MB'");
  await alice.c.query("set application_name = 'alice-app'");
  await alice.c.query('set search_path = crm, public');
  await alice.c.query('listen dashboard_refresh');
  await endAndPool(alice);

  const bob = await open(BOB);
  assert.is(await backendPid(bob.c), pid, 'bob got alice\'s upstream backend (else this test proves nothing)');
  assert.is(await errorCode(bob.c, 'execute cross_p'), '26000', 'alice\'s prepared statement is gone');
  assert.is(await errorCode(bob.c, 'fetch all from cross_c'), '34000', 'alice\'s WITH HOLD cursor is gone');
  assert.is(await one(bob.c, 'show work_mem'), defaults.workMem);
  assert.is(await one(bob.c, 'show search_path'), defaults.path);
  const appName = await one(bob.c, 'show application_name');
  assert.is(appName, `pgveil:${BOB}:`);
  assert.equal(bob.applicationNames, [`pgveil:${BOB}:`], 'the greeting names bob, never alice\'s application');
  const su = await h.pg.connect('analytics');
  await su.query("notify dashboard_refresh, 'for listeners only'");
  await su.end();
  await bob.c.query('select 1');
  assert.equal(bob.notifications, [], 'alice\'s LISTEN is gone');
  assert.equal((await bob.c.query('select name from crm.employees order by id')).rows, [{ name: 'Gus' }], 'bob sees his own org\'s rows');
  await bob.c.end();
});

test('C4 a session that ends inside a transaction (open or failed) leaves none to the next user', async () => {
  for (const failed of [false, true]) {
    const alice = await open(ALICE);
    const pid = await backendPid(alice.c);
    await alice.c.query('begin');
    await alice.c.query("set local work_mem = '9MB'");
    await alice.c.query('declare open_c cursor for select name from crm.employees');
    if (failed) assert.ok(await errorCode(alice.c, 'select 1/0'), 'the transaction is failed');
    await endAndPool(alice);
    const bob = await open(BOB);
    assert.is(await backendPid(bob.c), pid, 'same upstream backend');
    assert.is(await errorCode(bob.c, 'fetch all from open_c'), '34000');
    assert.is.not(await one(bob.c, 'show work_mem'), '9MB');
    assert.is(await errorCode(bob.c, 'declare c cursor for select 1'), '25P01', 'no transaction is open');
    await endAndPool(bob); // before the next round counts the pool
  }
});

test('C4 a session that ends right after changing search_path (pgveil\'s own question still in flight on 14–17) is pooled, and the next user starts from the default', async () => {
  for (const inTransaction of [false, true]) {
    const alice = await open(ALICE);
    const pid = await backendPid(alice.c);
    const defaultPath = await one(alice.c, 'show search_path');
    if (inTransaction) await alice.c.query('begin');
    await alice.c.query('set search_path = crm, public'); // on 14–17 pgveil then asks upstream for search_path itself
    await endAndPool(alice); // ends at once, while that question may still be answered
    const bob = await open(BOB);
    assert.is(await backendPid(bob.c), pid, 'pooled, not closed');
    assert.is(await one(bob.c, 'show search_path'), defaultPath);
    assert.equal((await bob.c.query('select name from employees order by id').then(() => 'ran', (e: { code?: string }) => e.code)), '42P01', 'alice\'s search_path is gone');
    await endAndPool(bob);
  }
});

/** The first column of the first DataRow, as text. */
function firstValue(messages: BackendMessage[]): string | undefined {
  const row = messages.find((m) => m.type === 'D');
  return row && row.body.subarray(6, 6 + row.body.readInt32BE(2)).toString();
}

test('C4 a session that ends while its cycles are still answered (an error already sent, its ReadyForQuery not yet) is drained, reset and pooled clean', async () => {
  for (const extended of [false, true]) {
    const alice = await RawClient.connect(h.proxy.port);
    await alice.login(ALICE, passwords[ALICE]);
    alice.send(msg.query('select pg_backend_pid()'));
    const pid = firstValue(await alice.untilReady());
    alice.send(msg.query("begin; set local work_mem = '9MB'"));
    await alice.untilReady();
    const before = await idleCount(h.proxy);
    // A statement still running and a failing one, each a whole cycle, then the Terminate, all in one write:
    // both cycles are in flight when pgveil handles the session's end.
    const running = 'select pg_sleep(0.3)';
    alice.send(
      ...(extended ? [msg.parse('', running), msg.bind('', ''), msg.execute(''), msg.sync()] : [msg.query(running)]),
      msg.query('select 1/0'), msg.terminate(),
    );
    await waitFor('the drained connection back in the pool', async () => (await idleCount(h.proxy)) > before);
    const bob = await open(BOB);
    assert.is(String(await backendPid(bob.c)), pid, `${extended ? 'extended' : 'simple'}: pooled, not closed`);
    assert.is(await errorCode(bob.c, 'declare c cursor for select 1'), '25P01', 'no transaction is open');
    assert.is.not(await one(bob.c, 'show work_mem'), '9MB');
    assert.equal((await bob.c.query('select name from crm.employees order by id')).rows, [{ name: 'Gus' }], 'bob sees his own org\'s rows');
    await endAndPool(bob);
  }
});

test('C4 a session that ends in the middle of a COPY … TO STDOUT is drained (its rows read and dropped) and pooled clean', async () => {
  const alice = await RawClient.connect(h.proxy.port);
  await alice.login(ALICE, passwords[ALICE]);
  alice.send(msg.query('select pg_backend_pid()'));
  const pid = firstValue(await alice.untilReady());
  const before = await idleCount(h.proxy);
  alice.send(msg.query('copy (select g, repeat(\'x\', 100) from generate_series(1, 200000) g) to stdout'), msg.terminate());
  await waitFor('the drained connection back in the pool', async () => (await idleCount(h.proxy)) > before);
  const bob = await open(BOB);
  assert.is(String(await backendPid(bob.c)), pid, 'pooled, not closed');
  assert.equal((await bob.c.query('select name from crm.employees order by id')).rows, [{ name: 'Gus' }]);
  await endAndPool(bob);
});

test('C4 a connection left mid-statement is handed to nobody while the statement runs, and one closed upstream while pooled is never handed out', async () => {
  const alice = await open(ALICE);
  const pid = await backendPid(alice.c);
  void alice.c.query('select pg_sleep(1)').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 100));
  (alice.c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  const bob = await open(BOB);
  assert.is.not(await backendPid(bob.c), pid, 'a busy connection is not handed out (and no session waits for it)');
  // Once answered, it is drained, reset and checked like any other.
  await waitFor('alice\'s connection pooled after its statement', async () => (await idleCount(h.proxy)) > 0);
  const carol = await open('carol@acme.com');
  assert.is(await backendPid(carol.c), pid, 'pooled after its answer was drained');
  assert.is(await errorCode(carol.c, 'declare c cursor for select 1'), '25P01', 'no transaction is open');
  await endAndPool(carol);
  const bobPid = await backendPid(bob.c);
  await endAndPool(bob);
  const su = await h.pg.connect('analytics');
  await su.query('select pg_terminate_backend($1)', [bobPid]);
  await su.end();
  const dave = await open('carol@acme.com');
  assert.is.not(await backendPid(dave.c), bobPid, 'a connection upstream closed is not handed out');
  assert.is(await one(dave.c, 'select count(*)::int from crm.employees'), 1);
  await dave.c.end();
});

test('C4 a pooled connection that started before ALTER ROLE … SET is not reused: the new session gets the setting', async () => {
  const alice = await open(ALICE);
  const pid = await backendPid(alice.c);
  await endAndPool(alice);
  const su = await h.pg.connect('analytics');
  await su.query("ALTER ROLE pgveil_service SET work_mem = '3MB'");
  try {
    const bob = await open(BOB);
    assert.is.not(await backendPid(bob.c), pid);
    assert.is(await one(bob.c, 'show work_mem'), '3MB');
    await bob.c.end();
  } finally {
    await su.query('ALTER ROLE pgveil_service RESET work_mem');
    await su.end();
  }
});

test('C4 with upstream.pool.maxIdle 0 every session gets its own upstream connection', async () => {
  const proxy = await startProxyVariant(h, { upstreamPool: { maxIdle: 0, idleTimeoutSeconds: 60 } });
  try {
    const alice = await open(ALICE, proxy);
    const pid = await backendPid(alice.c);
    await alice.c.end();
    await new Promise((r) => setTimeout(r, 200));
    const bob = await open(BOB, proxy);
    assert.is.not(await backendPid(bob.c), pid);
    assert.is(await idleCount(proxy), 0);
    await bob.c.end();
  } finally {
    await proxy.close();
  }
});

// ── the pool itself, with the leftovers pgveil refuses to clients ──────────

function upstreamConfig(): UpstreamConfig {
  return {
    host: '127.0.0.1', port: h.pg.port, database: 'analytics', user: 'pgveil_service', password: h.servicePassword,
    tls: { mode: 'disable' }, connectTimeoutMs: 20000, pool: { maxIdle: 2, idleTimeoutSeconds: 60 }, statements: { maxPerConnection: 100 },
  };
}
const params = { standard_conforming_strings: 'on', client_encoding: 'UTF8', application_name: POOLED_APPLICATION_NAME };
const run = (conn: UpstreamConnection, sql: string[]) => exchange(conn, sql, 20000);

test('C4 the pool\'s check finds each leftover (temp table, advisory lock, role, LISTEN, prepared, cursor, setting) and its reset removes them', async () => {
  const metrics = new ProxyMetrics();
  const pool = new UpstreamPool(upstreamConfig(), upstreamConfig().pool, () => h.servicePassword, metrics, silentLogger);
  try {
    const conn = await pool.acquire(params, 'pgveil:test:first');
    const pid = (await run(conn, ['select pg_backend_pid()'])).rows[0][0];
    await run(conn, [
      'PREPARE p AS SELECT 1', 'BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT 1; COMMIT', 'LISTEN somewhere', 'SELECT pg_advisory_lock(42)',
      'CREATE TEMP TABLE t (x int)', "SET work_mem = '7MB'", "SELECT set_config('myapp.org', 'acme', false)", "SELECT nextval('public.pool_seq')",
      'SET ROLE pool_other',
    ]);
    const dirty = await run(conn, [CHECK_CLEAN]);
    const found = whatIsLeft(dirty.txStatus, dirty.rows) ?? '';
    for (const kind of ['prepared statements', 'cursors', 'LISTEN channels', 'advisory locks', 'temp relations', 'changed settings', 'a role other than the service role']) {
      assert.ok(found.includes(kind), `the check finds ${kind}: ${found}`);
    }
    pool.release(conn, TxStatus.Idle);
    await waitFor('the connection pooled', () => pool.idleCount === 1);
    const again = await pool.acquire(params, 'pgveil:test:second');
    assert.is(again, conn, 'the pooled connection is handed out');
    const after = await run(again, [
      CHECK_CLEAN, "SELECT string_agg(name, ',') FROM pg_settings WHERE source = 'session'", "SELECT coalesce(current_setting('myapp.org', true), '')",
      'SHOW work_mem', 'SELECT current_user', 'SELECT pg_backend_pid()', 'SHOW application_name',
    ]);
    // Clean but for the one setting the claim makes: the new session's application_name.
    assert.is(whatIsLeft([after.txStatus[0]], [after.rows[0]]), '1 changed settings');
    assert.equal(after.rows.slice(1).map((r) => r[0]), ['application_name', '', '4MB', 'pgveil_service', pid, 'pgveil:test:second']);
    const currval = await run(again, ["SELECT currval('public.pool_seq')"]).then(() => 'ran', (e: Error) => e.message);
    assert.match(currval, /55000/, 'sequence state is gone');
  } finally {
    pool.close();
  }
});

test('C4 the reset first reads and drops the answers to questions still in flight (a probe after a failed statement): then the connection is clean', async () => {
  const pool = new UpstreamPool(upstreamConfig(), upstreamConfig().pool, () => h.servicePassword, new ProxyMetrics(), silentLogger);
  try {
    const conn = await pool.acquire(params, 'pgveil:test:a');
    await run(conn, ['BEGIN', 'PREPARE in_flight_p AS SELECT 1']);
    // A failing statement and a probe, both unanswered when the session ends: the probe fails too (aborted transaction).
    conn.socket.write(Buffer.concat([writeQuery('SELECT 1/0'), searchPathProbe]));
    pool.release(conn, TxStatus.InBlock, 2);
    await waitFor('the connection pooled', () => pool.idleCount === 1);
    const again = await pool.acquire(params, 'pgveil:test:b');
    assert.is(again, conn);
    const left = await run(again, [CHECK_CLEAN]);
    assert.is(whatIsLeft(left.txStatus, left.rows), '1 changed settings', 'clean but for the new application_name');
  } finally {
    pool.close();
  }
});

test('C4 a drain that meets an answer it cannot read past (COPY FROM STDIN waits for data nobody sends) closes the connection', async () => {
  const metrics = new ProxyMetrics();
  const pool = new UpstreamPool(upstreamConfig(), upstreamConfig().pool, () => h.servicePassword, metrics, silentLogger);
  try {
    const conn = await pool.acquire(params, 'pgveil:test:a');
    await run(conn, ['CREATE TEMP TABLE drain_in (a int)']);
    conn.socket.write(writeQuery('COPY drain_in FROM STDIN')); // the session ended with this cycle in flight
    pool.release(conn, TxStatus.Idle, 1, true);
    await waitFor('the connection dropped', async () => (await metrics.upstreamResets.get()).values.some((v) => v.labels.outcome === 'dropped' && v.value === 1));
    assert.is(pool.idleCount, 0);
    await waitFor('its socket closed', () => conn.socket.destroyed);
  } finally {
    pool.close();
  }
});

test('C4 a session that starts while a connection is being reset waits for it and gets it clean', async () => {
  const pool = new UpstreamPool(upstreamConfig(), upstreamConfig().pool, () => h.servicePassword, new ProxyMetrics(), silentLogger);
  try {
    const conn = await pool.acquire(params, 'pgveil:test:a');
    await run(conn, ['PREPARE waiting_p AS SELECT 1']);
    pool.release(conn, TxStatus.Idle);
    const next = await pool.acquire(params, 'pgveil:test:b'); // at once: the reset is still under way
    assert.is(next, conn);
    const left = await run(next, [CHECK_CLEAN]);
    assert.is(whatIsLeft(left.txStatus, left.rows), '1 changed settings', 'reset before it was handed over (only the new application_name)');
  } finally {
    pool.close();
  }
});

test('C4 the pool hands a connection only to sessions with the same startup parameters', async () => {
  const pool = new UpstreamPool(upstreamConfig(), upstreamConfig().pool, () => h.servicePassword, new ProxyMetrics(), silentLogger);
  try {
    const conn = await pool.acquire({ ...params, DateStyle: 'SQL, DMY' }, 'pgveil:test:a');
    pool.release(conn, TxStatus.Idle);
    await waitFor('pooled', () => pool.idleCount === 1);
    const other = await pool.acquire(params, 'pgveil:test:b');
    assert.is.not(other, conn);
    assert.equal((await run(other, ['SHOW DateStyle'])).rows[0][0], 'ISO, MDY');
    const same = await pool.acquire({ ...params, DateStyle: 'SQL, DMY' }, 'pgveil:test:c');
    assert.is(same, conn);
  } finally {
    pool.close();
  }
});

test.run();
