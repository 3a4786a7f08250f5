// Real clients (node-postgres, postgres.js, psql) through pgveil over TLS
// with SCRAM, against a real PostgreSQL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import pg from 'pg';
import postgres from 'postgres';
import { startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';
import { psql } from '../helpers/run.js';

let h: Harness;

test.before(async () => { h = await startHarness(); });
test.after(async () => { await h?.close(); });

async function connect(user = 'alice@acme.com', extra: Record<string, unknown> = {}): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(h, user, extra));
  await client.connect();
  return client;
}

async function errorOf(p: Promise<unknown>): Promise<{ code?: string; message: string; position?: string; hint?: string }> {
  try { await p; } catch (e) { return e as { code?: string; message: string }; }
  throw new Error('expected an error');
}

test('node-postgres connects over TLS with SCRAM and queries', async () => {
  const c = await connect();
  const r = await c.query('select 1 as one, current_setting(\'application_name\') as app');
  assert.is(r.rows[0].one, 1);
  assert.match(r.rows[0].app, /^pgveil:alice@acme\.com:/);
  const enc = await c.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
  assert.is(enc.rows.length, 1); // upstream link is plain in this config; the client link is TLS
  assert.ok((c as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream.encrypted);
  await c.end();
});

test('extended protocol with parameters works and keeps order', async () => {
  const c = await connect();
  const results = await Promise.all([1, 2, 3, 4, 5].map((i) => c.query('select $1::int * 2 as v', [i])));
  assert.equal(results.map((r) => r.rows[0].v), [2, 4, 6, 8, 10]);
  const lookup = await c.query({ text: 'select label from public.lookup where code = $1', values: ['b'], name: 'lk' });
  assert.is(lookup.rows[0].label, 'Beta');
  const again = await c.query({ text: 'select label from public.lookup where code = $1', values: ['a'], name: 'lk' });
  assert.is(again.rows[0].label, 'Alpha');
  await c.end();
});

const refusedSql = 'select * from pg_catalog.pg_stats'; // B5: refused for everyone

test('ownership: every spelling of a protected table returns only the user\'s org rows', async () => {
  const alice = await connect();
  const bob = await connect('bob@globex.com');
  for (const sql of ['select name from crm.employees', 'SELECT name FROM "crm"."employees"', 'select name from CRM.EMPLOYEES', 'select 1; select name from crm.employees']) {
    const a = await alice.query(sql);
    const rows = (Array.isArray(a) ? a[a.length - 1] : a).rows.map((r: { name: string }) => r.name);
    assert.equal(rows, ['Ann'], sql);
    const b = await bob.query(sql);
    assert.equal((Array.isArray(b) ? b[b.length - 1] : b).rows.map((r: { name: string }) => r.name), ['Gus'], sql);
  }
  const byId = await alice.query('select name from crm.employees where id = $1', [2]);
  assert.is(byId.rows.length, 0, 'a row of another org answers like a missing row');
  const ok = await alice.query('select count(*)::int as n from public.lookup');
  assert.is(ok.rows[0].n, 2);
  await alice.end();
  await bob.end();
});

test('A6 query_to_xml with a protected table in the string is refused', async () => {
  const c = await connect();
  const err = await errorOf(c.query("select query_to_xml('select * from crm.employees', true, true, '')"));
  assert.is(err.code, '42501');
  await c.end();
});

test('a refusal inside a transaction block aborts it, as a Postgres error would', async () => {
  const c = await connect();
  await c.query('begin');
  await c.query('select 1');
  const err = await errorOf(c.query(refusedSql));
  assert.is(err.code, '42501');
  const aborted = await errorOf(c.query('select 1'));
  assert.is(aborted.code, '25P02');
  await c.query('rollback');
  const r = await c.query('select 2 as two');
  assert.is(r.rows[0].two, 2);
  await c.end();
});

test('an extended-protocol refusal mid-transaction is reported in order and aborts the block', async () => {
  const c = await connect();
  await c.query('begin');
  const [a, b, d] = await Promise.allSettled([
    c.query('select $1::int as v', [1]),
    c.query(`${refusedSql} where attname = $1`, ['x']),
    c.query('select $1::int as v', [3]),
  ]);
  assert.is(a.status, 'fulfilled');
  assert.is(b.status, 'rejected');
  assert.is((b as PromiseRejectedResult).reason.code, '42501');
  assert.is(d.status, 'rejected');
  assert.is((d as PromiseRejectedResult).reason.code, '25P02');
  await c.query('rollback');
  await c.end();
});

test('a syntax error is 42601 with the position, answered by pgveil', async () => {
  const c = await connect();
  const err = await errorOf(c.query('select * frm lookup'));
  assert.is(err.code, '42601');
  assert.is(err.position, '10');
  await c.end();
});

test('postgres.js connects over TLS and runs simple and extended queries', async () => {
  const sql = postgres({
    host: '127.0.0.1', port: h.proxy.port, user: 'bob@globex.com', password: passwords['bob@globex.com'], database: 'analytics',
    ssl: { ca: readFileSync(h.caFile, 'utf8'), rejectUnauthorized: true }, max: 1, onnotice: () => {},
  });
  try {
    const [row] = await sql`select ${41}::int + 1 as answer`;
    assert.is(row.answer, 42);
    // The client sees its pgveil identity, not the shared service role.
    assert.is((sql as unknown as { parameters: Record<string, string> }).parameters.session_authorization, 'bob@globex.com');
    const multi = await sql.unsafe('select 1 as a; select 2 as b');
    assert.is(multi.length, 2);
    let refused: { code?: string } | undefined;
    try { await sql.unsafe(refusedSql); } catch (e) { refused = e as { code?: string }; }
    assert.is(refused?.code, '42501');
  } finally {
    await sql.end();
  }
});

test('psql connects with sslmode=verify-full against the test CA and channel_binding=require', async () => {
  const info = `host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=alice@acme.com sslmode=verify-full sslrootcert=${h.caFile} channel_binding=require`;
  const r = await psql(info, 'select 40 + 2', passwords['alice@acme.com']);
  assert.is(r.stderr, '');
  assert.is(r.stdout.trim(), '42');
  // The certificate names localhost and 127.0.0.1 only: another name must fail verification.
  const wrongHost = await psql(info.replace('host=127.0.0.1', 'host=db.example.com hostaddr=127.0.0.1'), 'select 1', passwords['alice@acme.com']);
  assert.is.not(wrongHost.status, 0);
  assert.match(wrongHost.stderr, /does not match host name/);
});

test('D3 plaintext is refused under tls.mode require', async () => {
  const err = await errorOf(connect('alice@acme.com', { ssl: false }));
  assert.match(err.message, /encrypted connection/);
  const r = await psql(`host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=alice@acme.com sslmode=disable`, 'select 1', passwords['alice@acme.com']);
  assert.is.not(r.status, 0);
  assert.match(r.stderr, /encrypted connection/);
});

test('D1 wrong password and unknown user give the same 28P01', async () => {
  const wrong = await errorOf(connect('alice@acme.com', { password: 'nope-nope-nope' }));
  assert.is(wrong.code, '28P01');
  const unknown = await errorOf(connect('mallory@evil.com', { password: 'whatever-123' }));
  assert.is(unknown.code, '28P01');
  assert.is(unknown.message, 'password authentication failed for user "mallory@evil.com"');
  assert.is(wrong.message, 'password authentication failed for user "alice@acme.com"');
});

test('A2 C1 startup options and replication connections are refused', async () => {
  const opt = await errorOf(connect('alice@acme.com', { options: '-c search_path=crm' }));
  assert.is(opt.code, '42501');
  const rep = await errorOf(connect('alice@acme.com', { replication: 'database' }));
  assert.is(rep.code, '42501');
  const r = await psql(`host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=alice@acme.com sslmode=require options='-csearch_path=crm'`, 'select 1', passwords['alice@acme.com']);
  assert.is.not(r.status, 0);
});

test('C2 standard_conforming_strings stays on: SET and the startup parameter are refused, upstream runs with it on', async () => {
  const c = await connect();
  assert.is((await c.query('show standard_conforming_strings')).rows[0].standard_conforming_strings, 'on');
  const set = await errorOf(c.query('set standard_conforming_strings = off'));
  assert.is(set.code, '42501');
  // The statement that leaks with the setting off parses as two harmless literals with it on.
  const r = await c.query("SELECT 'x\\' || ' , (SELECT 1) -- ' as v");
  assert.is(r.rows[0].v, "x\\ , (SELECT 1) -- ");
  await c.end();
  // postgres.js sends `connection` entries as startup parameters.
  const sql = postgres({
    host: '127.0.0.1', port: h.proxy.port, user: 'bob@globex.com', password: passwords['bob@globex.com'], database: 'analytics',
    ssl: { ca: readFileSync(h.caFile, 'utf8') }, max: 1, connection: { standard_conforming_strings: 'off' },
  });
  const startup = await errorOf(sql`select 1`);
  assert.is(startup.code, '42501');
  await sql.end();
});

test('a constant the analysis depends on never shares a cache entry with another value (set_config)', async () => {
  const c = await connect();
  // Same shape; the first value is allowed, the second puts a schema before pg_catalog (C5) and must be refused.
  const ok = await c.query("select set_config('search_path', 'crm', false) as v");
  assert.is(ok.rows[0].v, 'crm');
  const refused = await errorOf(c.query("select set_config('search_path', 'public, pg_catalog', false) as v"));
  assert.is(refused.code, '42501');
  // And the other way round, on a fresh session.
  const d = await connect('carol@acme.com');
  const first = await errorOf(d.query("select set_config('search_path', 'public, pg_catalog', false)"));
  assert.is(first.code, '42501');
  assert.is((await d.query("select set_config('search_path', 'crm', false) as v")).rows[0].v, 'crm');
  await c.end();
  await d.end();
});

test('an unknown database is 3D000', async () => {
  const err = await errorOf(connect('alice@acme.com', { database: 'other' }));
  assert.is(err.code, '3D000');
});

test('cancel of pg_sleep(10) returns 57014 within a second', async () => {
  const c = await connect();
  const started = Date.now();
  const running = errorOf(c.query('select pg_sleep(10)'));
  await new Promise((r) => setTimeout(r, 200));
  // The CancelRequest carries the key pgveil handed out, on a new connection, as libpq sends it.
  const key = c as unknown as { processID: number; secretKey: number };
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(h.proxy.port, '127.0.0.1', () => {
      const msg = Buffer.alloc(16);
      msg.writeInt32BE(16, 0); msg.writeInt32BE(80877102, 4); msg.writeInt32BE(key.processID, 8); msg.writeInt32BE(key.secretKey, 12);
      s.end(msg);
    });
    s.on('close', () => resolve());
    s.on('error', reject);
  });
  const err = await running;
  assert.is(err.code, '57014');
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  const after = await c.query('select 1 as ok');
  assert.is(after.rows[0].ok, 1);
  await c.end();
});

test.run();
