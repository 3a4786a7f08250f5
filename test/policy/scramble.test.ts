// The upstream scramble helpers (scramble-sql.ts) on a real PostgreSQL, used
// as the non-superuser service role: the key cannot be read, outputs are
// deterministic and keyed, integers are permuted within their type, and the
// key appears in no EXPLAIN, function definition or activity text (B7, B8).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import pgLib from 'pg';
import type pg from 'pg';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/demo/embedded-postgres.js';
import { scrambleInstallSql, scrambleKeyFromSecret, scrambleKeyId } from '../../src/policy/scramble-sql.js';
import { installedKeyProblem, scrambleInstallSqlForConfig } from '../../src/policy/scramble-install.js';
import { generateMasterKey } from '../../src/secrets/master-key.js';
import { seal } from '../../src/secrets/seal.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SECRET = 'the scramble secret of this test';
const key = scrambleKeyFromSecret(SECRET);
const svcPassword = 'svc-' + Math.random().toString(36).slice(2);

let server: RunningPostgres;
let admin: pg.Client;
let svc: pg.Client;

async function connectSvc(): Promise<pg.Client> {
  const c = new pgLib.Client({ host: server.host, port: server.port, user: 'svc', password: svcPassword, database: 'postgres' });
  await c.connect();
  return c;
}

async function sqlState(client: pg.Client, sql: string): Promise<string | undefined> {
  try {
    await client.query(sql);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

// A reference implementation in JS of what the SQL computes, to pin the construction.
function hmac(k: Buffer, msg: Buffer): Buffer {
  return createHmac('sha256', k).update(msg).digest();
}

function feistel(k: Buffer, u: bigint, h: number, tag: number): bigint {
  const hb = BigInt(h);
  const m = (1n << hb) - 1n;
  let l = (u >> hb) & m;
  let r = u & m;
  for (let i = 0; i < 6; i++) {
    const msg = Buffer.alloc(2 + 4 + 8);
    msg.write('F:', 0, 'latin1');
    msg.writeInt32BE(tag * 256 + i, 2);
    msg.writeBigInt64BE(r, 6);
    const t = r;
    r = l ^ (BigInt(hmac(k, msg).readUInt32BE(0)) & m);
    l = t;
  }
  return (l << hb) | r;
}

const refInt2 = (k: Buffer, v: number) => Number(BigInt.asIntN(16, feistel(k, BigInt.asUintN(16, BigInt(v)), 8, 2)));
const refInt4 = (k: Buffer, v: number) => Number(BigInt.asIntN(32, feistel(k, BigInt.asUintN(32, BigInt(v)), 16, 4)));
const refInt8 = (k: Buffer, v: bigint) => BigInt.asIntN(64, feistel(k, BigInt.asUintN(64, v), 32, 8));
const refText = (k: Buffer, v: string) => hmac(k, Buffer.from('S:' + v, 'utf8')).toString('hex').slice(0, 16);

/** Every spelling of the key material that must never show up anywhere the service role can read. */
function keyForms(k: Buffer): string[] {
  const pad = Buffer.alloc(64);
  k.copy(pad);
  const ipad = Buffer.from(pad.map((b) => b ^ 0x36));
  const opad = Buffer.from(pad.map((b) => b ^ 0x5c));
  return [k.toString('hex'), k.toString('base64'), k.toString('base64url'), ipad.toString('hex'), opad.toString('hex'),
    ipad.toString('base64'), opad.toString('base64'), SECRET, k.toString('hex').slice(0, 16), ipad.toString('hex').slice(0, 16)]
    .map((s) => s.toLowerCase());
}

function assertNoKey(text: string, what: string): void {
  const lower = text.toLowerCase();
  for (const form of keyForms(key)) assert.not.ok(lower.includes(form), `${what} contains key material`);
}

test.before(async () => {
  server = await startEmbeddedPostgres();
  admin = await server.connect();
  await admin.query(`CREATE ROLE svc LOGIN PASSWORD '${svcPassword}'`);
  await admin.query('CREATE TABLE public.people (id int4 PRIMARY KEY, big int8, small int2, name text, email varchar(40))');
  await admin.query("INSERT INTO public.people SELECT i, i::int8 * 1000003, (i % 30000)::int2, 'name ' || i, 'u' || i || '@example.com' FROM generate_series(1, 2000) i");
  await admin.query('GRANT SELECT ON public.people TO svc');
  const install = scrambleInstallSql(key, { serviceRole: 'svc' });
  await admin.query(install);
  await admin.query(install); // idempotent
  svc = await connectSvc();
});

test.after(async () => {
  await svc?.end();
  await admin?.end();
  await server?.stop();
});

test('the install SQL is the only place the key appears, and it refuses unsafe options', () => {
  const sql = scrambleInstallSql(key, { serviceRole: 'svc' });
  assert.ok(sql.includes(keyForms(key)[3]), 'the install SQL carries the inner pad');
  assert.throws(() => scrambleInstallSql(key, { serviceRole: 'svc', ownerRole: 'svc' }), /must not be the service role/);
  assert.throws(() => scrambleInstallSql(Buffer.alloc(8), { serviceRole: 'svc' }), /at least 16 bytes/);
});

test('B8: the service role cannot read the key table nor call the internal functions', async () => {
  assert.is(await sqlState(svc, 'SELECT * FROM pgveil.scramble_key'), '42501');
  assert.is(await sqlState(svc, "SELECT pgveil._mac('S:', '\\x00'::bytea)"), '42501');
  assert.is(await sqlState(svc, 'SELECT pgveil._feistel(1, 16, 4)'), '42501');
  assert.is(await sqlState(svc, "SELECT pgveil._hmac('\\x00'::bytea, '\\x00'::bytea, '\\x00'::bytea)"), '42501');
  assert.is(await sqlState(svc, 'SELECT pgveil._signed(1, 8)'), '42501');
  await admin.query('ANALYZE pgveil.scramble_key');
  const stats = await admin.query("SELECT count(*)::int AS n FROM pg_catalog.pg_statistic WHERE starelid = 'pgveil.scramble_key'::regclass");
  assert.is(stats.rows[0].n, 0, 'no statistics are gathered on the key');
  // What the service role may call.
  const r = await svc.query("SELECT pgveil.scramble('x'::text) AS a, pgveil.scramble(1) AS b, pgveil.hash('x') AS c, pgveil.key_id() AS d");
  assert.is(r.rows[0].d, scrambleKeyId(key));
  // Nobody else may call even those.
  await admin.query('CREATE ROLE stranger LOGIN');
  await admin.query('SET ROLE stranger');
  try {
    assert.is(await sqlState(admin, 'SELECT pgveil.scramble(1)'), '42501');
  } finally {
    await admin.query('RESET ROLE');
  }
});

test('deterministic across sessions, and equal to the reference construction', async () => {
  const q = "SELECT pgveil.scramble(42) AS i4, pgveil.scramble(42::int8)::text AS i8, pgveil.scramble(42::int2) AS i2, pgveil.scramble('alice'::text) AS t, pgveil.hash('alice') AS h";
  const a = (await svc.query(q)).rows[0];
  const other = await connectSvc();
  try {
    await other.query('SET search_path = public'); // a session's settings do not matter
    await other.query('SET standard_conforming_strings = off');
    assert.equal((await other.query(q)).rows[0], a);
  } finally {
    await other.end();
  }
  assert.is(a.i4, refInt4(key, 42));
  assert.is(a.i8, refInt8(key, 42n).toString());
  assert.is(a.i2, refInt2(key, 42));
  assert.is(a.t, refText(key, 'alice'));
  assert.is(a.h, hmac(key, Buffer.from('H:alice')).toString('hex'));
  const edges = await svc.query<{ v: string; s: string }>(`SELECT v::text AS v, pgveil.scramble(v)::text AS s
    FROM unnest(ARRAY[-9223372036854775808, 9223372036854775807, -1, 0, 1]::int8[]) v`);
  for (const row of edges.rows) assert.is(row.s, refInt8(key, BigInt(row.v)).toString(), row.v);
  const i4 = await svc.query<{ v: number; s: number }>('SELECT v, pgveil.scramble(v) AS s FROM unnest(ARRAY[-2147483648, 2147483647, -1, 0]::int4[]) v');
  for (const row of i4.rows) assert.is(row.s, refInt4(key, row.v), String(row.v));
});

test('int4: 200,000 distinct inputs (and the extremes) give 200,000 distinct int4 outputs', async () => {
  const r = await svc.query<{ n: string; lo: number; hi: number; moved: string }>(`
    SELECT count(DISTINCT s) AS n, min(s) AS lo, max(s) AS hi, count(*) FILTER (WHERE s <> v) AS moved
      FROM (SELECT v, pgveil.scramble(v) AS s
              FROM (SELECT generate_series(-100000, 99997) AS v UNION ALL SELECT -2147483648 UNION ALL SELECT 2147483647) g) x`);
  assert.is(r.rows[0].n, '200000');
  assert.ok(r.rows[0].lo >= -2147483648 && r.rows[0].hi <= 2147483647);
  assert.ok(Number(r.rows[0].moved) > 199_900, 'the permutation moves (almost) every value');
});

test('int2 is a permutation of the whole smallint range; int8 stays distinct', async () => {
  const r = await svc.query<{ n: string; lo: number; hi: number }>(
    'SELECT count(DISTINCT pgveil.scramble(v::int2)) AS n, min(pgveil.scramble(v::int2)) AS lo, max(pgveil.scramble(v::int2)) AS hi FROM generate_series(-32768, 32767) v');
  assert.equal(r.rows[0], { n: '65536', lo: -32768, hi: 32767 });
  const r8 = await svc.query<{ n: string }>('SELECT count(DISTINCT pgveil.scramble(v * 7919)) AS n FROM generate_series(-25000::int8, 24999::int8) v');
  assert.is(r8.rows[0].n, '50000');
});

test('text: 20,000 distinct inputs give distinct 16-hex outputs; NULL stays NULL', async () => {
  const r = await svc.query<{ n: string; lens: number[] }>(
    "SELECT count(DISTINCT pgveil.scramble('user-' || v)) AS n, array_agg(DISTINCT length(pgveil.scramble('user-' || v))) AS lens FROM generate_series(1, 20000) v");
  assert.is(r.rows[0].n, '20000');
  assert.equal(r.rows[0].lens, [16]);
  const n = await svc.query('SELECT pgveil.scramble(NULL::text) AS t, pgveil.scramble(NULL::int4) AS i, pgveil.hash(NULL) AS h');
  assert.equal(n.rows[0], { t: null, i: null, h: null });
});

test('joins and GROUP BY still work on scrambled values', async () => {
  const r = await svc.query<{ n: string }>(`
    SELECT count(*) AS n FROM (SELECT pgveil.scramble(id) AS k FROM public.people) a
      JOIN (SELECT pgveil.scramble(id) AS k FROM public.people WHERE id % 2 = 0) b USING (k)`);
  assert.is(r.rows[0].n, '1000');
  const g = await svc.query<{ groups: string }>('SELECT count(*) AS groups FROM (SELECT pgveil.scramble(small) FROM public.people GROUP BY 1) x');
  assert.is(g.rows[0].groups, '2000');
});

test('B7: EXPLAIN (VERBOSE, ANALYZE), function definitions and pg_stat_activity never show the key', async () => {
  const query = `SELECT pgveil.scramble(p.id), pgveil.scramble(p.big), pgveil.scramble(p.small), pgveil.scramble(p.name), pgveil.hash(p.email::text), pgveil.key_id()
                   FROM public.people p WHERE pgveil.scramble(p.id) = 5 OR pgveil.scramble(p.name) = 'x' ORDER BY pgveil.scramble(p.big)`;
  for (const opts of ['', '(VERBOSE)', '(VERBOSE, ANALYZE)', '(VERBOSE, COSTS OFF, FORMAT JSON)', '(VERBOSE, FORMAT XML)']) {
    const r = await svc.query(`EXPLAIN ${opts} ${query}`);
    const text = r.rows.map((row) => JSON.stringify(row)).join('\n');
    assert.ok(text.includes('scramble'), 'the plan shows the helper call');
    assertNoKey(text, `EXPLAIN ${opts}`);
  }
  const defs = await svc.query(`SELECT p.proname, pg_catalog.pg_get_functiondef(p.oid) AS def, p.prosrc, p.prosqlbody::text AS body
    FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'pgveil'::regnamespace`);
  assert.ok(defs.rows.length >= 11);
  for (const row of defs.rows) assertNoKey(JSON.stringify(row), `definition of ${row.proname}`);
  // A long-running scrambled query, watched from another session.
  const watcher = await connectSvc();
  try {
    const running = svc.query('SELECT pg_catalog.pg_sleep(0.3), pgveil.scramble(id) FROM public.people LIMIT 1');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const act = await watcher.query("SELECT query FROM pg_catalog.pg_stat_activity WHERE usename = 'svc'");
    await running;
    assertNoKey(JSON.stringify(act.rows), 'pg_stat_activity');
  } finally {
    await watcher.end();
  }
});

test('a different key gives different outputs (rotation by re-running the install), and key_id follows it', async () => {
  const before = (await svc.query<{ a: number; b: string }>("SELECT pgveil.scramble(7) AS a, pgveil.scramble('alice'::text) AS b")).rows[0];
  const other = scrambleKeyFromSecret('another secret');
  await admin.query(scrambleInstallSql(other, { serviceRole: 'svc' }));
  try {
    const after = (await svc.query<{ a: number; b: string; id: string }>("SELECT pgveil.scramble(7) AS a, pgveil.scramble('alice'::text) AS b, pgveil.key_id() AS id")).rows[0];
    assert.is.not(after.a, before.a);
    assert.is.not(after.b, before.b);
    assert.is(after.a, refInt4(other, 7));
    assert.is(after.id, scrambleKeyId(other));
    assert.is.not(scrambleKeyId(other), scrambleKeyId(key));
  } finally {
    await admin.query(scrambleInstallSql(key, { serviceRole: 'svc' }));
  }
});

test('the install warns when the service role could read the key (a superuser)', async () => {
  const notices: string[] = [];
  const onNotice = (n: { message?: string }) => notices.push(String(n.message));
  admin.on('notice', onNotice);
  try {
    await admin.query(scrambleInstallSql(key, { serviceRole: 'postgres' }));
  } finally {
    admin.off('notice', onNotice);
    await admin.query('REVOKE USAGE ON SCHEMA pgveil FROM postgres');
  }
  assert.ok(notices.some((m) => /service role postgres is a superuser/.test(m)), notices.join('\n'));
});

test('install SQL from a config: the sealed policy key is opened with the master key, granted to upstream.user', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-scramble-'));
  const master = generateMasterKey();
  writeFileSync(join(dir, 'master.key'), master + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'pgveil.yaml'), `tls: { mode: disable }
upstream: { host: 127.0.0.1, database: analytics, user: pgveil_service }
secrets: { masterKeyFile: master.key }
users: users.yaml
policy: policy.yaml
`);
  writeFileSync(join(dir, 'users.yaml'), 'organizations: {}\nusers: {}\n');
  writeFileSync(join(dir, 'policy.yaml'), `defaults: { unlistedRelations: allow }\nsecrets: { scrambleKey: "${seal(SECRET, Buffer.from(master, 'base64'))}" }\ntables: {}\n`);
  const sql = scrambleInstallSqlForConfig(join(dir, 'pgveil.yaml'));
  assert.is(sql, scrambleInstallSql(key, { serviceRole: 'pgveil_service' }));
  writeFileSync(join(dir, 'policy.yaml'), 'defaults: { unlistedRelations: allow }\ntables: {}\n');
  assert.throws(() => scrambleInstallSqlForConfig(join(dir, 'pgveil.yaml')), /scrambleKey is not set/);
});

test('installedKeyProblem: the right key passes; another key, missing grants or a missing schema are named', async () => {
  assert.is(await installedKeyProblem(svc, key), undefined);
  assert.match(String(await installedKeyProblem(svc, scrambleKeyFromSecret('not it'))), /is not policy.secrets.scrambleKey/);
  await admin.query('CREATE ROLE nogrant LOGIN');
  await admin.query('SET ROLE nogrant');
  try {
    assert.match(String(await installedKeyProblem(admin, key)), /may not use/);
  } finally {
    await admin.query('RESET ROLE');
  }
  await admin.query('CREATE DATABASE bare');
  const bare = await server.connect('bare');
  try {
    assert.match(String(await installedKeyProblem(bare, key)), /not installed/);
  } finally {
    await bare.end();
  }
});

test.run();
