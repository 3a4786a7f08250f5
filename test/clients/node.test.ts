// node-postgres and postgres.js corners through pgveil: binary
// results and parameters, arrays and JSON, COPY TO streams, savepoints
// around a refusal, notices, harmless SET/SHOW and version(), pipelined
// prepared queries, multi-statement sql.unsafe, ParameterStatus, and
// notifications on a channel the policy lists.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import postgres from 'postgres';
import { startHarness, clientConfig, employeesPolicy, passwords, type Harness } from '../helpers/harness.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({
    policyYaml: `${employeesPolicy}      salary: { mask: round, step: 1000 }
channels:
  listen: [dashboard_refresh]
`,
  });
});
test.after(async () => { await h?.close(); });

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  try { return await fn(c); } finally { await c.end(); }
}

test('binary result format and typed parameters: masked values keep their types', async () => {
  await withClient(async (c) => {
    const r = await c.query({ text: 'select id, salary, ssn from crm.employees where id = $1', values: [1], binary: true } as pg.QueryConfig);
    assert.is(r.rows.length, 1);
    assert.is(r.fields.map((f) => f.dataTypeID).join(','), '23,1700,25'); // int4, numeric, text
    const arrays = await c.query('select $1::int[] as a, $2::jsonb as j', [[1, 2, 3], JSON.stringify({ k: ['v'] })]);
    assert.equal(arrays.rows[0], { a: [1, 2, 3], j: { k: ['v'] } });
  });
});

test('postgres.js: COPY … TO STDOUT of a protected table streams the rewritten rows', async () => {
  const sql = postgres({
    host: '127.0.0.1', port: h.proxy.port, user: 'alice@acme.com', password: passwords['alice@acme.com'], database: 'analytics',
    ssl: { ca: readFileSync(h.caFile, 'utf8') }, max: 1, onnotice: () => {},
  });
  try {
    const chunks: Buffer[] = [];
    const stream = await sql`copy crm.employees (name, ssn, salary) to stdout with (format csv)`.readable();
    for await (const chunk of stream) chunks.push(Buffer.from(chunk));
    assert.is(Buffer.concat(chunks).toString().trim(), 'Ann,XXXXXXX3333,90000');
    const binary: Buffer[] = [];
    const bin = await sql`copy (select name from crm.employees) to stdout with (format binary)`.readable();
    for await (const chunk of bin) binary.push(Buffer.from(chunk));
    assert.is(Buffer.concat(binary).subarray(0, 11).toString('latin1'), 'PGCOPY\n\xff\r\n\0');
  } finally {
    await sql.end();
  }
});

test('a refusal inside a savepoint is undone by ROLLBACK TO; the transaction goes on', async () => {
  await withClient(async (c) => {
    await c.query('begin');
    await c.query('savepoint s1');
    const refused = await c.query('select * from pg_catalog.pg_stats').then(() => undefined, (e) => e as { code?: string });
    assert.is(refused?.code, '42501');
    await c.query('rollback to savepoint s1');
    assert.is((await c.query('select count(*)::int as n from crm.employees')).rows[0].n, 1);
    await c.query('commit');
  });
});

test('notices pass through; harmless SET and SHOW work; version() answers', async () => {
  await withClient(async (c) => {
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.query('rollback'); // outside a transaction: a WARNING from upstream
    assert.match(notices.join(' '), /no transaction in progress/);
    for (const set of ["set datestyle = 'ISO, DMY'", "set timezone = 'UTC'", 'set extra_float_digits = 3', "set statement_timeout = '5s'", "set application_name = 'dash'"]) await c.query(set);
    assert.is((await c.query('show datestyle')).rows[0].DateStyle, 'ISO, DMY');
    assert.is((await c.query('show application_name')).rows[0].application_name, 'pgveil:alice@acme.com:dash');
    assert.match((await c.query('select version() as v')).rows[0].v, new RegExp(`^PostgreSQL ${h.pg.major}\\.`));
  });
});

const postgresJs = () => postgres({
  host: '127.0.0.1', port: h.proxy.port, user: 'alice@acme.com', password: passwords['alice@acme.com'], database: 'analytics',
  ssl: { ca: readFileSync(h.caFile, 'utf8') }, max: 1, onnotice: () => {},
});

test('postgres.js: 100 prepared queries pipelined on one connection each get their own masked row', async () => {
  const sql = postgresJs();
  try {
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => sql`select ${i}::int as i, ssn, salary from crm.employees where id = ${1}`));
    results.forEach((r, i) => assert.equal([...r], [{ i, ssn: 'XXXXXXX3333', salary: '90000' }]));
    const other = await Promise.all([sql`select count(*)::int as n from crm.employees`, sql`select ${'x'}::text as t`, sql`select count(*)::int as n from crm.employees where org_id <> ${'acme'}`]);
    assert.equal(other.map((r) => Object.values(r[0])[0]), [1, 'x', 0]);
  } finally {
    await sql.end();
  }
});

test('postgres.js: sql.unsafe with several statements runs them all, each rewritten', async () => {
  const sql = postgresJs();
  try {
    const r = await sql.unsafe('select 1 as one; select ssn from crm.employees; select count(*)::int as n from crm.employees') as unknown as Array<Array<Record<string, unknown>>>;
    assert.equal(r.map((x) => [...x]), [[{ one: 1 }], [{ ssn: 'XXXXXXX3333' }], [{ n: 1 }]]);
    const refused = await sql.unsafe('select 1; select * from pg_catalog.pg_stats').then(() => undefined, (e: { code?: string }) => e.code);
    assert.is(refused, '42501');
  } finally {
    await sql.end();
  }
});

test('ParameterStatus passes through: SET TimeZone and DateStyle reach the driver', async () => {
  const sql = postgresJs();
  try {
    await sql`set timezone = 'Europe/Paris'`;
    await sql`set datestyle = 'SQL, DMY'`;
    const parameters = (sql as unknown as { parameters: Record<string, string> }).parameters;
    assert.is(parameters.TimeZone, 'Europe/Paris');
    assert.is(parameters.DateStyle, 'SQL, DMY');
    assert.is(parameters.session_authorization, 'alice@acme.com', 'reported as the pgveil user, not the service role');
    await sql`set client_encoding = 'UTF8'`;
    const latin = await sql`set client_encoding = 'LATIN1'`.then(() => undefined, (e: { code?: string }) => e.code);
    assert.is(latin, '42501');
  } finally {
    await sql.end();
  }
});

test('current_user and session_user are the service role upstream (documented)', async () => {
  await withClient(async (c) => {
    const r = await c.query('select current_user as cu, session_user as su');
    assert.equal(r.rows[0], { cu: 'pgveil_service', su: 'pgveil_service' });
  });
});

test('C4 NotificationResponse passes through on a channel the policy lists; LISTEN elsewhere and NOTIFY are refused', async () => {
  await withClient(async (c) => {
    const got: Array<{ channel: string; payload?: string }> = [];
    c.on('notification', (n) => got.push({ channel: n.channel, payload: n.payload }));
    await c.query('listen dashboard_refresh');
    for (const sql of ['listen other_channel', 'listen "Dashboard_Refresh"', "notify dashboard_refresh, 'x'", "select pg_notify('dashboard_refresh', 'x')"]) {
      const code = await c.query(sql).then(() => undefined, (e: { code?: string }) => e.code);
      assert.is(code, '42501', sql);
    }
    const su = new pg.Client({ host: '127.0.0.1', port: h.pg.port, user: h.pg.user, password: h.pg.password, database: 'analytics' });
    await su.connect();
    await su.query("notify dashboard_refresh, 'sales updated'");
    await su.query("notify other_channel, 'not for alice'");
    await su.end();
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await c.query('select 1'); // any notification still in flight arrives before this answer
    assert.equal(got, [{ channel: 'dashboard_refresh', payload: 'sales updated' }]);
    await c.query('unlisten *');
  });
});

test.run();
