// `pgveil explain` as an operator runs it: a child process against a real
// PostgreSQL (the harness's upstream), exit codes and output. The child is
// spawned asynchronously: the harness's proxy lives in this process.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHarness, type Harness } from '../helpers/harness.js';
import { run, type RunResult } from '../helpers/run.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const policyYaml = `
layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow, writes: deny }
tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      ssn: { mask: partial, keepLast: 4 }
      salary: { mask: "null" }
  public.lookup:
    access:
      deny: { orgs: [globex] }
`;

let h: Harness;
test.before(async () => { h = await startHarness({ policyYaml, tlsMode: 'disable' }); });
test.after(async () => { await h?.close(); });

function explain(...args: string[]): Promise<RunResult> {
  return run(process.execPath, [join(repo, 'bin/pgveil.js'), 'explain', '--config', h.configFile, ...args], { timeoutMs: 30000 });
}

/** A bound text literal of `value`, however pgveil quotes it ('…' or $tag$…$tag$). */
function literal(value: string): RegExp {
  return new RegExp(`(?:'${value}'|\\$(\\w*)\\$${value}\\$\\1\\$)`);
}

/** The SQL between the `rewritten:` line and `rules applied:`. */
function rewrittenSql(stdout: string): string {
  const m = /^rewritten:\n([\s\S]*?)\nrules applied:/m.exec(stdout);
  assert.ok(m, `no rewritten SQL in:\n${stdout}`);
  return m![1];
}

test('a protected table is rewritten with the user\'s literal filter and masks', async () => {
  const r = await explain('--user', 'alice@acme.com', 'SELECT id, name, ssn, salary FROM crm.employees ORDER BY id');
  assert.is(r.status, 0, r.stderr + r.stdout);
  const sql = rewrittenSql(r.stdout);
  assert.match(sql, literal('acme'), 'the filter is bound to alice\'s org as a literal');
  assert.not.match(sql, /\$\{user/, 'no unbound placeholder');
  assert.match(sql, /NULL::[^,]*numeric/i, 'salary is nulled with its type');
  assert.match(sql, /pg_catalog\.right\(/, 'ssn keeps its last characters');
  assert.match(sql, /ORDER BY id$/, 'the rest of the text stays as written');
  assert.not.match(r.stdout, /globex/, 'no other org\'s filter appears');
  assert.match(r.stdout, /^rules applied:\n {2}crm\.employees: 1 ownership filter\(s\), 2 mask\(s\)$/m);
  assert.match(r.stdout, new RegExp(`^ {4}filter: .*${literal('acme').source}`, 'm'));
  assert.match(r.stdout, /^ {4}mask: ssn partial/m);
  assert.match(r.stdout, /^relations:\n {2}crm\.employees$/m);

  // The printed SQL is the real rewrite: run upstream, it shows alice's view only.
  const db = await h.pg.connect('analytics');
  try {
    const rows = (await db.query(sql)).rows;
    assert.equal(rows, [{ id: 1, name: 'Ann', ssn: 'XXXXXXX3333', salary: null }]);
  } finally {
    await db.end();
  }
});

test('another user gets their own literal, never alice\'s', async () => {
  const r = await explain('--user', 'bob@globex.com', 'SELECT count(*) FROM crm.employees');
  assert.is(r.status, 0, r.stderr + r.stdout);
  assert.match(rewrittenSql(r.stdout), literal('globex'));
  assert.not.match(r.stdout, /acme/);
});

test('a statement without protected relations is forwarded unchanged', async () => {
  const r = await explain('--user', 'alice@acme.com', 'SELECT 1 AS one');
  assert.is(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^forward: unchanged$/m);
  assert.match(r.stdout, /^rules applied:\n {2}\(none\)$/m);
});

test('a refused function exits 1 with 42501 and the reason', async () => {
  const r = await explain('--user', 'alice@acme.com', "SELECT pg_read_file('/etc/passwd')");
  assert.is(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stdout, /^refused: 42501 .*pg_read_file/m);
});

test('a table the access layer denies is refused with 42501', async () => {
  const r = await explain('--user', 'bob@globex.com', 'SELECT * FROM public.lookup');
  assert.is(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stdout, /^refused: 42501 permission denied for table lookup/m);
});

test('a syntax error is refused with 42601 and its position', async () => {
  const r = await explain('--user', 'alice@acme.com', 'SELEC 1');
  assert.is(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stdout, /^refused: 42601 syntax error/m);
  assert.match(r.stdout, /position: 1/);
});

test('an unknown user is a usage error: exit 2', async () => {
  const r = await explain('--user', 'mallory@nowhere.com', 'SELECT 1');
  assert.is(r.status, 2, r.stderr + r.stdout);
  assert.match(r.stderr, /unknown user "mallory@nowhere.com"/);
  assert.is(r.stdout, '');
});

test('missing SQL or --user is a usage error: exit 2', async () => {
  const noSql = await explain('--user', 'alice@acme.com');
  assert.is(noSql.status, 2);
  assert.match(noSql.stderr, /usage: pgveil explain/);
  const noUser = await explain('SELECT 1');
  assert.is(noUser.status, 2);
  assert.match(noUser.stderr, /missing --user/);
});

test('--search-path crm resolves an unqualified name; without it the name does not resolve', async () => {
  const r = await explain('--user', 'alice@acme.com', '--search-path', 'crm', 'SELECT name FROM employees');
  assert.is(r.status, 0, r.stderr + r.stdout);
  const sql = rewrittenSql(r.stdout);
  assert.match(sql, new RegExp(`FROM (?:ONLY )?"crm"\\."employees" WHERE .*${literal('acme').source}`));
  assert.match(r.stdout, /^relations:\n {2}crm\.employees$/m);

  const without = await explain('--user', 'alice@acme.com', 'SELECT name FROM employees');
  assert.is(without.status, 1, without.stderr + without.stdout);
  assert.match(without.stdout, /^refused: 42P01 relation "employees" does not exist/m);
});

test('"-" reads the statement from stdin', async () => {
  const r = await run(process.execPath, [join(repo, 'bin/pgveil.js'), 'explain', '--config', h.configFile, '--user', 'alice@acme.com', '-'],
    { input: 'SELECT org_id FROM crm.employees', timeoutMs: 30000 });
  assert.is(r.status, 0, r.stderr + r.stdout);
  assert.match(rewrittenSql(r.stdout), literal('acme'));
});

test.run();
