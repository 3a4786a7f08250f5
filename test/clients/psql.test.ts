// psql's meta-commands through pgveil (issue 5): catalog browsing works,
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
      GRANT SELECT ON public.lookup_view, public.lookup_mv TO pgveil_service;`,
    policyYaml: employeesPolicy,
  });
});
test.after(async () => { await h.close(); });

const psqlAs = (args: string[]) => run('psql', [
  `host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=alice@acme.com sslmode=require`, '-X', ...args,
], { env: { ...process.env, PGPASSWORD: passwords['alice@acme.com'] } });

test('meta-commands answer without errors', async () => {
  // \\l is left out: psql 15 (Debian 12) asks PostgreSQL 18 for a column that was renamed, with or without pgveil.
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

test.run();
