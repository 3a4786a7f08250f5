// node-postgres and postgres.js corners through pgveil (issue 5): binary
// results and parameters, arrays and JSON, COPY TO streams, savepoints
// around a refusal, notices, harmless SET/SHOW and version().
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import postgres from 'postgres';
import { startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({
    policyYaml: `
tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      ssn: { mask: partial, keepLast: 4 }
      salary: { mask: round, step: 1000 }
`,
  });
});
test.after(async () => { await h.close(); });

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
    assert.match((await c.query('select version() as v')).rows[0].v, /^PostgreSQL 18/);
  });
});

test.run();
