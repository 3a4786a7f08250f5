// psql's meta-commands through pgveil: catalog browsing works,
// protected tables show masked values, \copy streams only the user's rows.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHarness, employeesPolicy, passwords, type Harness } from '../helpers/harness.js';
import { run } from '../helpers/run.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({
    extraSql: `
      CREATE VIEW public.lookup_view AS SELECT code FROM public.lookup;
      CREATE MATERIALIZED VIEW public.lookup_mv AS SELECT code FROM public.lookup;
      CREATE INDEX employees_name ON crm.employees (name);
      CREATE TABLE crm.vault (id int, secret text);
      GRANT SELECT ON public.lookup_view, public.lookup_mv, crm.vault TO pgveil_service;`,
    policyYaml: `${employeesPolicy}  crm.vault:\n    access:\n      allow: { orgs: [globex] }\n`,
  });
});
test.after(async () => { await h?.close(); });

const psqlAs = (args: string[]) => run('psql', [
  `host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=alice@acme.com sslmode=require`, '-X', ...args,
], { env: { ...process.env, PGPASSWORD: passwords['alice@acme.com'] } });

test('meta-commands answer without errors', async () => {
  // \\l has a test of its own below.
  for (const cmd of ['\\dt', '\\dt+ crm.*', '\\d crm.employees', '\\d+ crm.employees', '\\dn', '\\df', '\\dv', '\\dm', '\\di', '\\dp', '\\du', '\\dx']) {
    const r = await psqlAs(['-c', cmd]);
    assert.is(r.stderr, '', `${cmd}: ${r.stderr}`);
    assert.is(r.status, 0, cmd);
  }
  const d = await psqlAs(['-c', '\\d crm.employees']);
  assert.match(d.stdout, /ssn/);
  assert.match(d.stdout, /employees_name/);
  assert.match((await psqlAs(['-c', '\\dv'])).stdout, /lookup_view/);
  assert.match((await psqlAs(['-c', '\\dm'])).stdout, /lookup_mv/);
});

test('\\l: the database list answers through pgveil as it does straight from upstream (psql 17+\'s query on PostgreSQL 17+; psql 15 fails the same way with and without pgveil there)', async () => {
  const viaPgveil = await psqlAs(['-c', '\\l']);
  const direct = await run('psql', [`host=127.0.0.1 port=${h.pg.port} dbname=analytics user=${h.pg.user}`, '-X', '-c', '\\l'], { env: { ...process.env, PGPASSWORD: h.pg.password } });
  if (h.pg.major < 17) {
    // psql 15 and 16 know how to list an older server's databases.
    assert.is(direct.stderr, '');
    assert.is(viaPgveil.stderr, '');
    assert.match(viaPgveil.stdout, /analytics/);
    return;
  }
  // The \\l query of psql 17 and later (datlocale, daticurules), as it reaches the server.
  const listDatabases = `SELECT d.datname as "Name", pg_catalog.pg_get_userbyid(d.datdba) as "Owner",
    pg_catalog.pg_encoding_to_char(d.encoding) as "Encoding",
    CASE d.datlocprovider WHEN 'b' THEN 'builtin' WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' END AS "Locale Provider",
    d.datcollate as "Collate", d.datctype as "Ctype", d.datlocale as "Locale", d.daticurules as "ICU Rules",
    pg_catalog.array_to_string(d.datacl, E'\\n') AS "Access privileges"
    FROM pg_catalog.pg_database d ORDER BY 1;`;
  const r = await psqlAs(['-A', '-c', listDatabases]);
  assert.is(r.stderr, '');
  assert.match(r.stdout, /^analytics\|/m);
  // Debian 12's psql 15 asks for daticulocale, which PostgreSQL 17 renamed: the same error straight to upstream.
  const version = (await run('psql', ['--version'])).stdout;
  if (/\) 1[0-6]\./.test(version)) {
    assert.match(direct.stderr, /daticulocale/);
    assert.is(viaPgveil.stderr.replace(/LINE.*[\s\S]*/, ''), direct.stderr.replace(/LINE.*[\s\S]*/, ''));
  } else {
    assert.is(viaPgveil.stderr, '');
    assert.match(viaPgveil.stdout, /analytics/);
  }
});

test('expanded output of a protected table shows masked values and the user\'s rows only', async () => {
  const r = await psqlAs(['-x', '-c', 'select name, ssn from crm.employees']);
  assert.is(r.stderr, '');
  assert.match(r.stdout, /name \| Ann/);
  assert.match(r.stdout, /ssn  \| XXXXXXX3333/);
  assert.not.match(r.stdout, /Gus|444-55-6666|111-22-3333/);
});

test('\\copy … to stdout streams the rewritten rows (text and CSV)', async () => {
  const text = await psqlAs(['-c', '\\copy crm.employees to stdout']);
  assert.is(text.stderr, '');
  assert.is(text.stdout.trim().split('\n').length, 1);
  assert.match(text.stdout, /Ann\tXXXXXXX3333/);
  const csv = await psqlAs(['-c', "\\copy (select name, ssn from crm.employees) to stdout with (format csv, header)"]);
  assert.is(csv.stdout.trim(), 'name,ssn\nAnn,XXXXXXX3333');
});

/**
 * Types `keys` into an interactive psql (a pseudo-terminal made by
 * script(1), so readline completes on TAB), then ends the line and resets
 * the query buffer; returns what the terminal showed after the banner.
 */
async function typeInto(user: string, keys: string): Promise<string> {
  const conninfo = `host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=${user} sslmode=require`;
  const r = await run('script', ['-q', '-e', '-c', `psql '${conninfo}' -X -P pager=off`, '/dev/null'], {
    input: `${keys}\n\\r\n\\q\n`, env: { ...process.env, PGPASSWORD: passwords[user], TERM: 'dumb' },
  });
  assert.is(r.status, 0, r.stdout + r.stderr);
  return r.stdout.slice(r.stdout.indexOf('analytics=>')).replace(/[\r\x07]/g, ''); // \x07: readline's bell on an ambiguous completion
}

const refusedSoFar = async () => (await h.proxy.metrics.statements.get()).values.find((v) => v.labels.outcome === 'refused')?.value ?? 0;

test('tab completion: relations, schemas and columns complete, and a denied table is not offered', async () => {
  const refusedBefore = await refusedSoFar();
  // alice (acme) may not use crm.vault: crm.<TAB> completes to the one table she may use
  assert.match(await typeInto('alice@acme.com', 'select * from crm.\t\t'), /^analytics=> select \* from crm\.employees $/m);
  // bob (globex) may: the same keys list both
  assert.match(await typeInto('bob@globex.com', 'select * from crm.\t\t'), /crm\.employees +crm\.vault/);
  assert.match(await typeInto('alice@acme.com', 'select * from cr\t'), /^analytics=> select \* from crm\.$/m);
  assert.match(await typeInto('alice@acme.com', 'select * from crm.employees where s\t\t'), /^salary +ssn/m);
  assert.match(await typeInto('alice@acme.com', 'select * from crm.employees where na\t'), /^analytics=> select \* from crm\.employees where name $/m);
  // \d also completes indexes (employees_name, employees_pkey): the common prefix, then the table
  assert.match(await typeInto('alice@acme.com', '\\d crm.emp\t'), /^analytics=> \\d crm\.employees\n +Table "crm\.employees"/m);
  assert.is(await refusedSoFar(), refusedBefore, 'no completion query was refused');
});

test.run();
