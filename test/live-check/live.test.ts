// `pgveil check --live` against a real PostgreSQL: every weakness it knows
// is set up on one server, the check names each one (exit 2: the policy
// does not fit the schema), then the policy is corrected (exit 1: only the
// upstream is left), the SQL the check printed is run as a superuser and
// the helpers installed, and the check passes (exit 0).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHarness, policyDefaults, type Harness } from '../helpers/harness.js';
import { run, type RunResult } from '../helpers/run.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const pgveil = (...args: string[]): Promise<RunResult> => run(process.execPath, [join(repo, 'bin/pgveil.js'), ...args], { timeoutMs: 60000 });

let h: Harness;
let configFile: string;
let policyFile: string;

const weaknesses = `
  CREATE ROLE data_owner NOLOGIN;
  CREATE ROLE etl_group NOLOGIN;
  ALTER ROLE pgveil_service SUPERUSER BYPASSRLS;
  GRANT pg_read_all_data, pg_read_server_files TO pgveil_service;
  GRANT pg_execute_server_program TO etl_group;
  GRANT etl_group TO pgveil_service;
  GRANT CREATE ON SCHEMA crm TO pgveil_service;
  CREATE TABLE crm.payroll (id int, org_id text, amount numeric);
  ALTER TABLE crm.payroll OWNER TO pgveil_service;
  ALTER TABLE crm.payroll ENABLE ROW LEVEL SECURITY;
  CREATE EXTENSION pg_stat_statements;
  CREATE EXTENSION dblink;
  ANALYZE crm.employees;
  CREATE VIEW crm.emp_names AS SELECT id, name, org_id FROM crm.employees;
  GRANT SELECT ON crm.emp_names TO pgveil_service;
  CREATE FUNCTION public.emp_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM crm.employees; END;
  CREATE SEQUENCE crm.emp_ids OWNED BY crm.employees.id;
  GRANT SELECT ON SEQUENCE crm.emp_ids TO pgveil_service;
  CREATE TABLE crm.events (org_id text, at date, what text) PARTITION BY LIST (org_id);
  CREATE TABLE crm.events_acme PARTITION OF crm.events FOR VALUES IN ('acme');
  GRANT SELECT ON crm.events, crm.events_acme TO pgveil_service;
`;

const goodTables = `
secrets: { scrambleKey: "live-check test scramble key" }
tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      ssn: { mask: scramble }
  crm.payroll:
    ownership:
      - filter: "org_id = \${user.org}"
  crm.events_acme:
    ownership:
      - filter: "org_id = \${user.org}"
`;

// A misspelled table, an unknown column and a mask that does not fit its column.
const badTables = goodTables.replace('ssn: { mask: scramble }', 'ssn: { mask: scramble }\n      salary: { mask: truncate, to: year }\n      nickname: { mask: full }') + `  crm.employes:
    ownership:
      - filter: "org_id = \${user.org}"
`;

test.before(async () => {
  h = await startHarness({ tlsMode: 'disable' });
  const db = await h.pg.connect('analytics');
  await db.query(weaknesses);
  await db.end();
  // The harness's own config, pointed at a policy this test rewrites.
  configFile = join(h.dir, 'live.yaml');
  policyFile = join(h.dir, 'policy-live.yaml');
  writeFileSync(configFile, readFileSync(h.configFile, 'utf8').replace('policy: policy.yaml', 'policy: policy-live.yaml'));
  writeFileSync(policyFile, policyDefaults + badTables);
});
test.after(async () => { await h?.close(); });

/** The FIX blocks of the text output: check id → the block's lines. */
function blocks(stdout: string): Array<{ check: string; lines: string[] }> {
  const out: Array<{ check: string; lines: string[] }> = [];
  for (const line of stdout.split('\n')) {
    if (line.startsWith('FIX ')) out.push({ check: line.slice(4, line.indexOf(':')), lines: [line] });
    else if (line.startsWith('  ') && out.length) out[out.length - 1].lines.push(line);
  }
  return out;
}

function block(stdout: string, check: string, includes: string): string {
  const found = blocks(stdout).find((b) => b.check === check && b.lines[0].includes(includes));
  assert.ok(found, `no ${check} finding naming ${includes} in:\n${stdout}`);
  return found!.lines.join('\n');
}

test('every weakness is named with why and fix; the policy problems make it exit 2', async () => {
  const r = await pgveil('check', '--config', configFile, '--live');
  assert.is(r.status, 2, r.stdout + r.stderr);
  const out = r.stdout;
  assert.match(block(out, 'policy-unknown-table', 'crm.employes'), /no such table upstream: crm\.employes/);
  assert.match(block(out, 'policy-unknown-column', 'nickname'), /no such column upstream: crm\.employees\.nickname/);
  block(out, 'policy-mask-type', 'salary');
  assert.match(block(out, 'role-superuser', 'pgveil_service'), /sql: ALTER ROLE pgveil_service NOSUPERUSER;/);
  const bypass = block(out, 'role-bypassrls', 'pgveil_service');
  assert.match(bypass, /sql: ALTER ROLE pgveil_service NOBYPASSRLS;/);
  assert.match(bypass, /the row security enabled on crm\.payroll does not apply to it/);
  assert.match(block(out, 'role-pg-read-all-data', 'pg_read_all_data'), /sql: REVOKE pg_read_all_data FROM pgveil_service;/);
  assert.match(block(out, 'role-pg-read-server-files', 'pg_read_server_files'), /sql: REVOKE pg_read_server_files FROM pgveil_service;/);
  assert.match(block(out, 'role-pg-execute-server-program', 'through etl_group'), /sql: REVOKE pg_execute_server_program FROM etl_group;/);
  const owns = block(out, 'role-owns-protected-table', 'crm.payroll');
  assert.match(owns, /row security policies do not apply to its owner/);
  assert.match(owns, /sql: ALTER TABLE crm\.payroll OWNER TO <owner>;/);
  assert.match(block(out, 'privilege-create-schema', 'schema crm'), /sql: REVOKE CREATE ON SCHEMA crm FROM pgveil_service;/);
  // Until 15, PUBLIC may create in schema public.
  if (h.pg.major < 15) assert.match(block(out, 'privilege-create-schema', 'schema public (through PUBLIC)'), /sql: REVOKE CREATE ON SCHEMA public FROM PUBLIC;/);
  else assert.not.match(out, /CREATE in schema public/);
  assert.match(block(out, 'privilege-temp-database', 'analytics'), /sql: REVOKE TEMPORARY ON DATABASE analytics FROM PUBLIC;/);
  const exec = block(out, 'privilege-execute-sql-functions', 'query_to_xml');
  assert.match(exec, /sql: REVOKE EXECUTE ON FUNCTION pg_catalog\.query_to_xml\(query text, nulls boolean, tableforest boolean, targetns text\) FROM PUBLIC;/);
  assert.match(exec, /pg_catalog\.ts_rewrite\(tsquery, text\)/);
  assert.not.match(exec, /ts_rewrite\(tsquery, tsquery/);
  assert.match(exec, /public\.dblink_exec/);
  assert.match(block(out, 'extension-pg-stat-statements', 'pg_stat_statements'), /sql: DROP EXTENSION pg_stat_statements;/);
  assert.match(block(out, 'extension-dblink', 'dblink'), /sql: DROP EXTENSION dblink;/);
  assert.match(block(out, 'dependent-reads-protected', 'view crm.emp_names'), /sql: REVOKE ALL ON TABLE crm\.emp_names FROM pgveil_service;/);
  assert.match(block(out, 'dependent-reads-protected', 'sequence crm.emp_ids'), /sql: REVOKE ALL ON SEQUENCE crm\.emp_ids FROM pgveil_service;/);
  assert.match(block(out, 'dependent-reads-protected', 'partitioned table (a parent) crm.events'), /reads protected crm\.events_acme/);
  assert.match(block(out, 'dependent-reads-protected', 'function public.emp_count()'), /sql: REVOKE EXECUTE ON FUNCTION public\.emp_count\(\) FROM PUBLIC;/);
  const stats = block(out, 'statistics-readable', 'pg_stats');
  assert.match(stats, /crm\.employees/);
  assert.match(stats, /sql: REVOKE SELECT ON TABLE pg_catalog\.pg_stats FROM PUBLIC;/);
  block(out, 'statistics-catalog-readable', 'pg_catalog.pg_statistic');
  assert.match(block(out, 'scramble-helpers', 'helper schema is not installed'), /fix: pgveil install-helpers --config /);
  // A superuser service role can read the toast tables too, but those are no policy-less reader a DBA could list.
  assert.not.match(out, /pg_toast/);
  assert.match(out.trim().split('\n').pop()!, /^live check: \d+ to fix upstream, 3 in the policy file \(serve refuses it\) \(PostgreSQL \d+\.\d+, database analytics, service role pgveil_service, \d+ protected relations\)$/);
  // Nothing from the helpers' key or the upstream password.
  assert.not.ok(out.includes(h.servicePassword));
  assert.not.ok(out.includes('live-check test scramble key'));
});

test('--format json carries the same findings and the exit code', async () => {
  const r = await pgveil('check', '--config', configFile, '--live', '--format', 'json');
  assert.is(r.status, 2, r.stderr);
  const doc = JSON.parse(r.stdout) as { exitCode: number; upstream: { role: string; versionNum: number }; findings: Array<{ check: string; kind: string; sql: string[] }> };
  assert.is(doc.exitCode, 2);
  assert.is(doc.upstream.role, 'pgveil_service');
  assert.is(Math.floor(doc.upstream.versionNum / 10000), h.pg.major);
  assert.equal(doc.findings.filter((f) => f.kind === 'policy').map((f) => f.check).sort(), ['policy-mask-type', 'policy-unknown-column', 'policy-unknown-table']);
  assert.ok(doc.findings.some((f) => f.check === 'role-superuser' && f.sql[0] === 'ALTER ROLE pgveil_service NOSUPERUSER;'));
});

test('with the policy corrected only the upstream is left (exit 1); its printed SQL and the helpers make it pass (exit 0)', async () => {
  writeFileSync(policyFile, policyDefaults + goodTables);
  const before = await pgveil('check', '--config', configFile, '--live');
  assert.is(before.status, 1, before.stdout + before.stderr);
  assert.not.match(before.stdout, /^FIX policy-/m);

  const db = await h.pg.connect('analytics');
  try {
    const statements = before.stdout.split('\n').filter((l) => l.startsWith('  sql: ')).map((l) => l.slice('  sql: '.length).replaceAll('<owner>', 'data_owner'));
    for (const sql of statements) await db.query(sql);
    const helpers = await pgveil('install-helpers', '--config', configFile);
    assert.is(helpers.status, 0, helpers.stderr);
    await db.query(helpers.stdout);
  } finally {
    await db.end();
  }
  const after = await pgveil('check', '--config', configFile, '--live');
  assert.is(after.stdout.trim().split('\n').pop(), `live check: clean (PostgreSQL ${h.pg.version}, database analytics, service role pgveil_service, 3 protected relations)`);
  assert.is(after.status, 0, after.stdout + after.stderr);
});

test('the recommended service-role setup of docs/operations/live-check.md passes the check on a fresh database', async () => {
  const doc = readFileSync(join(repo, 'docs/operations/live-check.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## The recommended service role'));
  const setup = section.slice(section.indexOf('```sql\n') + 7, section.indexOf('```\n', section.indexOf('```sql\n') + 7));
  assert.match(setup, /CREATE ROLE pgveil_service LOGIN/);
  // Roles are per cluster and this server has the ones above already: the same SQL under other names.
  const renamed = setup.replaceAll('pgveil_service', 'warehouse_service').replaceAll('data_owner', 'warehouse_owner')
    .replaceAll('analytics', 'warehouse').replaceAll('<password>', 'warehouse-pass-1');
  const admin = await h.pg.connect();
  await admin.query('CREATE DATABASE warehouse');
  await admin.end();
  const db = await h.pg.connect('warehouse');
  try {
    await db.query(`CREATE SCHEMA crm;
      CREATE TABLE crm.employees (id int primary key, org_id text not null, name text, ssn text);
      INSERT INTO crm.employees VALUES (1, 'acme', 'Ann', '111-22-3333'), (2, 'globex', 'Gus', '444-55-6666');
      ANALYZE crm.employees;`);
    await db.query(renamed);
  } finally {
    await db.end();
  }
  const file = join(h.dir, 'live-warehouse.yaml');
  writeFileSync(join(h.dir, 'policy-warehouse.yaml'), `${policyDefaults}tables:\n  crm.employees:\n    ownership:\n      - filter: "org_id = \${user.org}"\n`);
  writeFileSync(file, readFileSync(configFile, 'utf8').replace('database: analytics', 'database: warehouse').replace('user: pgveil_service', 'user: warehouse_service')
    .replace(/^  password: .*$/m, '  password: "warehouse-pass-1"').replace('policy: policy-live.yaml', 'policy: policy-warehouse.yaml'));
  const r = await pgveil('check', '--config', file, '--live');
  assert.is(r.stdout.trim().split('\n').pop(), `live check: clean (PostgreSQL ${h.pg.version}, database warehouse, service role warehouse_service, 1 protected relation)`);
  assert.is(r.status, 0, r.stdout + r.stderr);
});

test.run();
