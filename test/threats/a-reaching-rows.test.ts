// docs/threat-model.md section A — reaching the protected rows by another name.
// Every test runs real clients (node-postgres, psql, a raw protocol client)
// through pgveil against a real PostgreSQL, with two oracles:
//   1. nothing the client receives (rows, column names, errors, notices)
//      contains a value of another organization (the canaries below);
//   2. probing a row of another organization answers exactly as probing a
//      row that does not exist.
// A refusal is always acceptable; a leak never is. The upstream schema is
// built so that a missed defence WOULD leak: every view, function, sequence,
// partition and trigger below is readable/executable by the service role.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';
import { psql, type RunResult } from '../helpers/run.js';
import { RawClient, frame, int16, int32, msg, sqlstate, startupPacket, type BackendMessage } from '../helpers/raw-client.js';
import { conninfo, connectRecording, observe, oracles, rows, writeAndReload, type Client } from './ac-support.js';
import { threatSchemaSql as extraSql, threatPolicy as basePolicy } from './a-schema.js';

/** The base policy with ssn fully masked: what a reload "tightens" to (A8). */
const tightenedPolicy = basePolicy.replace(
  '  crm.employees:\n    ownership:\n      - filter: "org_id = ${user.org}"\n',
  '  crm.employees:\n    ownership:\n      - filter: "org_id = ${user.org}"\n    redaction:\n      ssn: { mask: full }\n',
);

/** Values of organization globex (and the sequence's last_value): must never reach an acme user. */
const CANARIES: RegExp[] = [/secretx/i, /424242/, /434343/, /770013/];
/** Acme's raw SSNs: forbidden once the tightened policy (ssn: full) is active. */
const ACME_RAW_SSN: RegExp[] = [/111-22-3333/, /222-33-4444/];

const ALICE = 'alice@acme.com';
const BOB = 'bob@globex.com';
/** Row ids: 1 and 3 are acme's, 2 and 4 globex's, 9 does not exist. */
const OTHER_ORG_ID = 2;
const MISSING_ID = 9;

let h: Harness;
const open: pg.Client[] = [];

test.before(async () => {
  h = await startHarness({ extraSql, policyYaml: basePolicy, tlsMode: 'prefer' });
  if (!tightenedPolicy.includes('mask: full')) throw new Error('test setup: tightened policy not built');
});
test.after(async () => { await h?.close(); });
test.after.each(async () => {
  for (const c of open.splice(0)) await c.end().catch(() => {});
});

// ── observation helpers (ac-support.ts) ────────────────────────────────────

async function connect(user = ALICE, extra: Record<string, unknown> = {}): Promise<Client> {
  return connectRecording(clientConfig(h, user, extra), open);
}

const { assertClean, safe, refused, expectRows, probe } = oracles(CANARIES, [OTHER_ORG_ID, MISSING_ID]);

/** A refusal is acceptable; if it runs, exactly these rows. */
async function rowsOrRefusal(c: Client, q: string, expected: unknown[][]): Promise<void> {
  const seen = await safe(c, q);
  if (!seen.error) assert.equal(rows(seen), expected, q);
}

async function psqlAs(user: string, sql: string, extra = ''): Promise<RunResult> {
  const r = await psql(conninfo(h, user, extra), sql, passwords[user]);
  if (user !== BOB) assertClean(r.stdout + '\n' + r.stderr, `psql: ${sql}`);
  return r;
}

/** Writes policy.yaml and waits until every reload (explicit and the watcher's) has applied it. */
async function setPolicy(yaml: string): Promise<void> {
  await writeAndReload(h, 'policy.yaml', yaml, 'policy reload accepted');
}

async function withPolicy(yaml: string, fn: () => Promise<void>): Promise<void> {
  const before = readFileSync(join(h.dir, 'policy.yaml'), 'utf8');
  await setPolicy(yaml);
  try { await fn(); } finally { await setPolicy(before); }
}

async function rawLogin(user = ALICE): Promise<RawClient> {
  const c = await RawClient.connect(h.proxy.port);
  await c.login(user, passwords[user]);
  return c;
}

function rawText(ms: BackendMessage[]): string {
  return ms.map((m) => `${m.type}:${m.body.toString('utf8')}`).join('\n');
}

// ── functional baseline ─────────────────────────────────────────────────────

test('A1 baseline: the policy serves — each org sees exactly its own rows', async () => {
  const alice = await connect();
  const bob = await connect(BOB);
  await expectRows(alice, 'select id, name from crm.employees order by id', [[1, 'Ann'], [3, 'Carl']]);
  await expectRows(alice, 'select count(*)::int from crm.employees', [[2]]);
  const b = await observe(bob, 'select id, name from crm.employees order by id');
  assert.equal(rows(b), [[2, 'Gus SECRETX'], [4, 'Gina SECRETX']]);
  await probe(alice, (id) => `select name from crm.employees where id = ${id}`);
});

// ── A1 spelling of names ────────────────────────────────────────────────────

const spellings = [
  'crm.employees',
  '"crm"."employees"',
  'CRM.EMPLOYEES',
  'Crm.Employees',
  '"crm".employees',
  'crm."employees"',
  'U&"\\0063rm".employees',
  'U&"\\0063rm".U&"\\0065mployees"',
  'U&"!0063rm" UESCAPE \'!\' .employees',
  'crm . /**/ employees',
  'crm/* a */./* b */employees',
  'crm\n.\n-- comment\nemployees',
  'crm /* nested /* comment */ here */ . employees',
];

test('A1 every spelling of crm.employees returns only the user\'s rows', async () => {
  const alice = await connect();
  for (const name of spellings) {
    await expectRows(alice, `select id, name from ${name} order by id`, [[1, 'Ann'], [3, 'Carl']]);
    await expectRows(alice, `select count(*)::int from ${name}`, [[2]]);
    await probe(alice, (id) => `select name, ssn, salary from ${name} where id = ${id}`);
    await probe(alice, (id) => `select name from ${name} e where e.id = ${id}`);
  }
});

test('A1 spellings in every read position (join, subquery, EXISTS, set operation, LATERAL, TABLE)', async () => {
  const alice = await connect();
  for (const name of ['"crm"."employees"', 'U&"\\0063rm".employees', 'crm . /**/ employees']) {
    await probe(alice, (id) => `select e.name from public.lookup l join ${name} e on true where e.id = ${id}`);
    await probe(alice, (id) => `select (select name from ${name} where id = ${id}) as n`);
    await probe(alice, (id) => `select exists (select 1 from ${name} where id = ${id}) as e`);
    await probe(alice, (id) => `select label from public.lookup where false union all select name from ${name} where id = ${id}`);
    await probe(alice, (id) => `select x.name from public.lookup l, lateral (select name from ${name} where id = ${id}) x`);
    await probe(alice, (id) => `select * from (table ${name}) t where t.id = ${id}`);
    await probe(alice, (id) => `select name from ${name} where id in (select ${id})`);
  }
  await expectRows(alice, 'table crm.employees', [[1, 'acme', 'Ann', '111-22-3333', '90000'], [3, 'acme', 'Carl', '222-33-4444', '80000']]);
});

test('A1 schema.table.column references are re-pointed at the guarded rows', async () => {
  const alice = await connect();
  await expectRows(alice, 'select crm.employees.name from crm.employees order by crm.employees.id', [['Ann'], ['Carl']]);
  await expectRows(alice, 'select "crm"."employees"."name" from "crm"."employees" order by 1', [['Ann'], ['Carl']]);
  await expectRows(alice, 'select crm.employees.* from crm.employees order by 1', [[1, 'acme', 'Ann', '111-22-3333', '90000'], [3, 'acme', 'Carl', '222-33-4444', '80000']]);
  await probe(alice, (id) => `select crm.employees.name from crm.employees where crm.employees.id = ${id}`);
  await probe(alice, (id) => `select CRM.EMPLOYEES.NAME from crm . employees where "crm"."employees".id = ${id}`);
});

test('A1 a different-case quoted name is a different relation (42P01 like Postgres), a database-qualified name leaks nothing', async () => {
  const alice = await connect();
  await refused(alice, 'select name from "CRM"."EMPLOYEES"', '42P01');
  await refused(alice, 'select name from "crm"."Employees"', '42P01');
  const seen = await safe(alice, 'select name from analytics.crm.employees order by 1');
  if (!seen.error) assert.equal(rows(seen), [['Ann'], ['Carl']]);
});

// ── A2 search_path ──────────────────────────────────────────────────────────

test('A2 SET search_path = crm, then unqualified names: only the user\'s rows', async () => {
  for (const set of ['SET search_path = crm', 'set SEARCH_PATH to "crm"', "SET search_path = 'crm'", 'SET search_path = crm, public', 'SET search_path = "$user", crm']) {
    const alice = await connect();
    await safe(alice, set);
    await expectRows(alice, 'select id, name from employees order by id', [[1, 'Ann'], [3, 'Carl']]);
    await probe(alice, (id) => `select name from employees where id = ${id}`);
    await probe(alice, (id) => `select name from EMPLOYEES e where e.id = ${id}`);
  }
});

test('A2 set_config(\'search_path\', …) then unqualified names: only the user\'s rows', async () => {
  for (const set of ["select set_config('search_path', 'crm', false)", "select pg_catalog.set_config('search_path', 'crm, public', false)"]) {
    const alice = await connect();
    await safe(alice, set);
    await expectRows(alice, 'select id, name from employees order by id', [[1, 'Ann'], [3, 'Carl']]);
    await probe(alice, (id) => `select name from employees where id = ${id}`);
  }
  const alice = await connect();
  // A value pgveil cannot know before it runs: later unqualified names must not be resolved with a guess.
  await safe(alice, "select set_config('search_path', 'cr' || 'm', false)");
  await probe(alice, (id) => `select name from employees where id = ${id}`);
});

test('A2 SET / set_config and the read in the same message (multi-statement)', async () => {
  for (const prefix of ['SET search_path = crm', "select set_config('search_path', 'crm', false)", 'SET LOCAL search_path = crm',
    "select set_config('search_path', 'crm', true)", "select set_config('search_path', 'cr' || 'm', false)"]) {
    const alice = await connect();
    await probe(alice, (id) => `${prefix}; select name from employees where id = ${id}`);
  }
});

test('A2 the same-named table in public vs crm resolves as Postgres does', async () => {
  const alice = await connect();
  await expectRows(alice, 'select name from employees', [['public-decoy']]);
  await safe(alice, 'SET search_path = public, crm');
  await expectRows(alice, 'select name from employees', [['public-decoy']]);
  await safe(alice, 'SET search_path = crm, public');
  await expectRows(alice, 'select name from employees order by id', [['Ann'], ['Carl']]);
});

test('A2 RESET ALL, RESET search_path, SET … TO DEFAULT and DISCARD ALL return to the default path', async () => {
  for (const reset of ['RESET ALL', 'RESET search_path', 'SET search_path TO DEFAULT', 'DISCARD ALL']) {
    const alice = await connect();
    await safe(alice, 'SET search_path = crm');
    await safe(alice, reset);
    await expectRows(alice, 'select name from employees', [['public-decoy']]);
    // and in one message with the read
    await safe(alice, 'SET search_path = crm');
    await probe(alice, (id) => `${reset}; select name from employees where id = ${id}`);
  }
});

// pgveil assumes a set_config it sees ran and resolves later unqualified names with the value it
// names; Postgres only changes search_path when the call executes (and SET LOCAL / a transaction's
// SETs are undone by COMMIT / ROLLBACK). A wrong guess towards the unprotected public.employees
// forwards `employees` untouched while Postgres reads crm.employees raw.
const notRunSetConfig: Array<[string, string]> = [
  ['WHERE false', "select set_config('search_path', 'public', false) where false"],
  ['CASE', "select case when false then set_config('search_path', 'public', false) end"],
  ['empty FROM', "select set_config('search_path', 'public', false) from public.lookup where code = 'none'"],
  ['PREPARE', "PREPARE sp2 AS select set_config('search_path', 'public', false)"],
  ['DECLARE without FETCH', "DECLARE sc2 CURSOR FOR select set_config('search_path', 'public', false)"],
];
for (const [name, noop] of notRunSetConfig) {
  test(`A2 a set_config that does not run (${name}) must not change how later names resolve`, async () => {
    const alice = await connect();
    await safe(alice, 'SET search_path = crm');
    await safe(alice, `${noop}; select name from employees`);
    await probe(alice, (id) => `${noop}; select name from employees where id = ${id}`, noop);
  });
}

const undoneInMessage: Array<[string, string]> = [
  ['SET LOCAL + COMMIT', 'begin; set local search_path = public; commit; select name from employees'],
  ['SET + ROLLBACK', 'begin; set search_path = public; rollback; select name from employees'],
  ['SET + ROLLBACK TO SAVEPOINT', 'begin; savepoint s; set search_path = public; rollback to savepoint s; commit; select name from employees'],
  ['set_config local + COMMIT', "begin; select set_config('search_path', 'public', true); commit; select name from employees"],
];
for (const [name, sql] of undoneInMessage) {
  test(`A2 ${name} undone in the same message: later unqualified names resolve with the restored path`, async () => {
    const alice = await connect();
    await safe(alice, 'SET search_path = crm');
    await safe(alice, sql);
    await probe(alice, (id) => `${sql} where id = ${id}`, name);
  });
}

test('A2 a transaction whose SET is undone by a ROLLBACK sent in the next message with the read', async () => {
  const alice = await connect();
  await safe(alice, 'SET search_path = crm');
  await safe(alice, 'begin');
  await safe(alice, 'set search_path = public'); // upstream now reports public
  await safe(alice, 'rollback; select name from employees'); // Postgres: search_path back to crm
});

test('A2 a ROLLBACK pipelined (separate Query messages, not awaited) before an unqualified read', async () => {
  const c = await rawLogin();
  c.send(msg.query('SET search_path = crm'));
  await c.untilReady();
  c.send(msg.query('begin; set search_path = public'));
  await c.untilReady();
  c.send(msg.query('rollback'), msg.query('select name from employees'));
  const replies = [...await c.untilReady(), ...await c.untilReady()];
  assertClean(rawText(replies), 'pipelined rollback + select name from employees');
  c.close();
});

test('A2 EXECUTE of a prepared set_config changes search_path for the rest of the message', async () => {
  const alice = await connect();
  await safe(alice, "PREPARE sp AS select set_config('search_path', 'crm', false)");
  await safe(alice, 'EXECUTE sp; select name from employees');
});

test('A2 FETCH from a cursor over set_config changes search_path for the rest of the message', async () => {
  const alice = await connect();
  await safe(alice, 'begin');
  await safe(alice, "DECLARE scf CURSOR FOR select set_config('search_path', 'crm', false)");
  await safe(alice, 'FETCH ALL FROM scf; select name from employees');
  await safe(alice, 'rollback');
});

test('A2 a protocol-level prepared set_config bound and executed in a pipeline before an unqualified Parse', async () => {
  const c = await rawLogin();
  c.send(msg.parse('sc2', "select set_config('search_path', 'crm', false)"), msg.sync());
  await c.untilReady();
  c.send(
    msg.bind('', 'sc2'), msg.execute(''),
    msg.parse('', 'select name from employees order by 1'), msg.bind('', ''), msg.execute(''),
    msg.sync(),
  );
  assertClean(rawText(await c.untilReady()), 'Bind/Execute sc2 then Parse "select name from employees" in one pipeline');
  c.close();
});

test('A2 a SQL cursor over set_config executed by a protocol Execute before an unqualified Parse in the same pipeline', async () => {
  const c = await rawLogin();
  // In a transaction block the cursor's query runs at the Execute, not at DECLARE.
  c.send(msg.query("begin; DECLARE scx CURSOR FOR select set_config('search_path', 'crm', false)"));
  await c.untilReady();
  c.send(
    msg.execute('scx'),
    msg.parse('', 'select name from employees order by 1'), msg.bind('', ''), msg.execute(''),
    msg.sync(),
  );
  assertClean(rawText(await c.untilReady()), 'Execute portal scx then Parse "select name from employees" in one pipeline');
  c.close();
});

test('A2 startup options and startup parameters that set search_path are refused', async () => {
  const viaOptions = await new pg.Client(clientConfig(h, ALICE, { options: '-csearch_path=crm' })).connect().then(() => undefined, (e) => e as { code?: string });
  assert.ok(viaOptions, 'options=-csearch_path=crm must be refused');
  const r = await psqlAs(ALICE, 'select name from employees', "options='-csearch_path=crm'");
  assert.is.not(r.status, 0, 'psql with options=-csearch_path=crm must fail');
  const startups: Array<Record<string, string>> = [{ search_path: 'crm' }, { options: '-c search_path=crm' }, { options: '--search_path=crm' }, { SEARCH_PATH: 'crm' }];
  for (const params of startups) {
    const c = await RawClient.connect(h.proxy.port);
    c.send(startupPacket({ user: ALICE, database: 'analytics', ...params }));
    const first = await c.message();
    assert.is(first?.type, 'E', `startup ${JSON.stringify(params)} refused before authentication`);
    c.close();
  }
});

test('A2 an extended-protocol pipeline: SET then an unqualified read before Sync', async () => {
  const c = await rawLogin();
  c.send(
    msg.parse('', 'SET search_path = crm'), msg.bind('', ''), msg.execute(''),
    msg.parse('', `select name from employees where id = ${OTHER_ORG_ID}`), msg.bind('', ''), msg.execute(''),
    msg.sync(),
  );
  const replies = await c.untilReady();
  assertClean(rawText(replies), 'pipeline SET search_path then read');
  c.send(msg.query('select name from employees order by id'));
  const after = await c.untilReady();
  assertClean(rawText(after), 'read after pipeline');
  c.close();
});

// ── A3 shadowing ────────────────────────────────────────────────────────────

test('A3 a CTE named like the table shadows it exactly as in Postgres; a CTE wrapping the table is guarded', async () => {
  const alice = await connect();
  await safe(alice, 'SET search_path = crm');
  await expectRows(alice, 'with employees as (select 42 as id, \'cte\' as name) select id, name from employees', [[42, 'cte']]);
  await expectRows(alice, 'with employees as (select * from crm.employees) select name from employees order by id', [['Ann'], ['Carl']]);
  // Non-recursive: the CTE body's `employees` is the table, not itself.
  await expectRows(alice, 'with employees as (select * from employees) select name from employees order by id', [['Ann'], ['Carl']]);
  await probe(alice, (id) => `with employees as (select * from employees) select name from employees where id = ${id}`);
  await probe(alice, (id) => `with x as (select * from crm.employees), employees as (select * from x) select name from employees where id = ${id}`);
  // The CTE is only visible in its own query: the outer reference is the table.
  await probe(alice, (id) => `select e.name from (with employees as (select 1 as id) select * from employees) s, employees e where e.id = ${id}`);
  await probe(alice, (id) => `(with employees as (select ${id} as id) select id from employees) union all select id from employees where id = ${id}`);
  // A CTE in a sibling subquery does not hide the table in another one.
  await probe(alice, (id) => `select (with employees as (select 1) select count(*) from employees) as c, (select name from employees where id = ${id}) as n`);
});

test('A3 recursive CTEs', async () => {
  const alice = await connect();
  await expectRows(alice, 'with recursive employees(id) as (select 1 union all select id + 1 from employees where id < 3) select * from employees', [[1], [2], [3]]);
  await expectRows(alice, 'with recursive r as (select id, name from crm.employees where id = 1 union all select e.id, e.name from crm.employees e join r on e.id = r.id + 2) select name from r order by id', [['Ann'], ['Carl']]);
  await probe(alice, (id) => `with recursive r(n) as (select ${id} union all select n + 1 from r where n < 5) select e.name from r join crm.employees e on e.id = r.n where r.n = ${id}`);
  await probe(alice, (id) => `with recursive r as (select id, name from crm.employees where id = ${id} union all select id, name from r where false) select * from r`);
});

test('A3 temp tables, temp views and SELECT INTO that could shadow a protected table are refused', async () => {
  const alice = await connect();
  for (const sql of [
    'create temp table employees (id int, name text)',
    'create temporary table employees as select 1 as id',
    'create temp view employees as select 1 as id',
    'select * into temp employees from public.lookup',
    'create temp sequence employees_id_seq',
    'create table public.shadow (id int)',
  ]) await refused(alice, sql);
  await expectRows(alice, 'select name from employees', [['public-decoy']]);
  await safe(alice, 'SET search_path = pg_temp, crm');
  await expectRows(alice, 'select name from employees order by id', [['Ann'], ['Carl']]);
});

// ── A4 inheritance and partitions ───────────────────────────────────────────

test('A4 per-org counts through the partitioned parent; partitions read directly take the root\'s policy', async () => {
  const alice = await connect();
  const bob = await connect(BOB);
  await expectRows(alice, 'select org_id, count(*)::int from crm.events group by 1 order by 1', [['acme', 3]]);
  const b = await observe(bob, 'select org_id, count(*)::int from crm.events group by 1 order by 1');
  assert.equal(rows(b), [['globex', 2]]);
  await expectRows(alice, 'select count(*)::int from crm.events_acme', [[3]]);
  for (const rel of ['crm.events_globex', 'crm.events_globex_low', 'crm.events_globex*', 'ONLY crm.events_globex_low', 'crm."events_globex_low"']) {
    await expectRows(alice, `select count(*)::int from ${rel}`, [[0]]);
    await probe(alice, (id) => `select detail from ${rel} where id = ${id}`, rel, [10, 17]);
  }
  await expectRows(alice, 'select count(*)::int from only crm.events', [[0]]);
  await expectRows(alice, 'select count(*)::int from crm.events*', [[3]]);
  await safe(alice, 'table crm.events_globex');
  await safe(alice, 'select * from crm.events_globex tablesample system (100)');
});

test('A4 inheritance: parent with and without ONLY / *, the child directly', async () => {
  const alice = await connect();
  await expectRows(alice, 'select name from crm.people order by id', [['acme-person'], ['acme-contractor']]);
  await expectRows(alice, 'select name from crm.people* order by id', [['acme-person'], ['acme-contractor']]);
  await expectRows(alice, 'select name from only crm.people', [['acme-person']]);
  await expectRows(alice, 'select name, agency from crm.contractors', [['acme-contractor', 'AgencyA']]);
  await probe(alice, (id) => `select name, agency from crm.contractors where id = ${id}`, 'crm.contractors', [4, 7]);
  await probe(alice, (id) => `select name from only crm.contractors where id = ${id}`, 'only crm.contractors', [4, 7]);
  await probe(alice, (id) => `select name from crm.people where id = ${id}`, 'crm.people', [4, 7]);
});

test('A4 an unprotected parent over a protected child never shows the child\'s other-org rows', async () => {
  const alice = await connect();
  await rowsOrRefusal(alice, 'select body from crm.notes_base order by id', [['acme-public-note'], ['acme-private-note']]);
  await rowsOrRefusal(alice, 'select body from crm.notes_base* order by id', [['acme-public-note'], ['acme-private-note']]);
  await rowsOrRefusal(alice, 'select body from only crm.notes_base', [['acme-public-note']]);
  await safe(alice, 'COPY (select * from crm.notes_base) TO STDOUT');
  await expectRows(alice, 'select body from crm.notes_private', [['acme-private-note']]);
  await probe(alice, (id) => `select body from crm.notes_base where id = ${id}`);
});

test('A4 COPY of a partition and of the partitioned parent', async () => {
  const r1 = await psqlAs(ALICE, 'COPY crm.events_globex TO STDOUT');
  assert.not.match(r1.stdout, /globex/);
  const r2 = await psqlAs(ALICE, 'COPY (select * from crm.events order by id) TO STDOUT');
  assert.is(r2.stdout.trim().split('\n').length, 3, r2.stdout + r2.stderr);
});

// ── A5 indirect readers ─────────────────────────────────────────────────────

test('A5 views, views over views and materialized views that read the table are refused', async () => {
  const alice = await connect();
  for (const rel of ['crm.emp_view', 'public.emp_view2', 'crm.emp_mv']) {
    await refused(alice, `select * from ${rel}`);
    await refused(alice, `select count(*) from ${rel}`);
    if (rel !== 'crm.emp_mv') await probe(alice, (id) => `select name from ${rel} where id = ${id}`, rel);
    await refused(alice, `select 1 from public.lookup where exists (select 1 from ${rel})`);
  }
  await refused(alice, 'refresh materialized view crm.emp_mv');
});

test('A5 a view the policy covers is served with the filter', async () => {
  const alice = await connect();
  await expectRows(alice, 'select id, name from crm.emp_covered order by id', [[1, 'Ann'], [3, 'Carl']]);
  await probe(alice, (id) => `select name from crm.emp_covered where id = ${id}`);
});

test('A5 SQL, BEGIN ATOMIC and PL/pgSQL functions reading the table, also in ROWS FROM and LATERAL', async () => {
  const alice = await connect();
  for (const fn of ['public.emp_names_sql()', 'public.emp_names_atomic()', 'public.emp_names_plpgsql()', 'emp_names_sql()', 'PUBLIC.EMP_NAMES_SQL()']) {
    await refused(alice, `select ${fn}`);
    await refused(alice, `select * from ${fn}`);
    await refused(alice, `select * from rows from (${fn}) as t(n)`);
    await refused(alice, `select * from public.lookup l, lateral ${fn} as x`);
    await refused(alice, `select 1 where 'x' in (select ${fn})`);
  }
  await refused(alice, 'select (public.emp_row(2)).name');
  await refused(alice, 'select * from public.emp_row(2)');
  await probe(alice, (id) => `select (public.emp_row(${id})).name`);
});

test('A5 a generic dynamic-SQL function given the table name at run time', async () => {
  const alice = await connect();
  await safe(alice, "select * from public.dump_rows('crm.employees')");
  await probe(alice, (id) => `select * from public.dump_rows('crm.employees') d where d like '(${id},%'`);
});

test('A5 a reader function called in functional notation (l.lookup_extra) is refused', async () => {
  const alice = await connect();
  await safe(alice, 'select l.lookup_extra from public.lookup l');
  await safe(alice, 'select (l).lookup_extra from public.lookup l');
});

test('A5 a reader function behind an operator (0 ##> 2) is refused', async () => {
  const alice = await connect();
  await safe(alice, 'select 0 ##> 2');
  await safe(alice, 'select 0 OPERATOR(public.##>) 4');
  await probe(alice, (id) => `select coalesce(0 ##> ${id}, 'none') as n`);
});

test('A5 a reader behind a user operator used in ANY / ALL (subquery) is refused', async () => {
  const alice = await connect();
  await refused(alice, "select 2 @@@ 'globex'");
  await probe(alice, (id) => `select ${id} @@@ ANY (select 'globex') as hit`);
  await probe(alice, (id) => `select ${id} @@@ ALL (select 'globex') as hit`);
  await probe(alice, (id) => `select 1 as x where ${id} @@@ SOME (select 'globex')`);
});

test('A5 a reader function behind a user-defined cast (l::text) is refused', async () => {
  const alice = await connect();
  await safe(alice, 'select l::text from public.lookup l');
  await safe(alice, 'select cast(l as text) from public.lookup l');
});

test('A5 a reader function in a domain CHECK (2::globex_emp_id) is refused', async () => {
  const alice = await connect();
  await probe(alice, (id) => `select ${id}::public.globex_emp_id as v`);
  await probe(alice, (id) => `select cast(${id} as globex_emp_id) as v`);
});

test('A5 the serial sequence of the table is refused as a relation', async () => {
  const alice = await connect();
  await refused(alice, 'select last_value from crm.employees_id_seq');
  await refused(alice, 'select * from crm.employees_id_seq');
  await safe(alice, "select currval('crm.employees_id_seq')");
  await safe(alice, "select nextval('crm.employees_id_seq')");
});

const sequenceReaders: Array<[string, string]> = [
  ['pg_sequence_last_value()', "select pg_sequence_last_value('crm.employees_id_seq')"],
  ['pg_catalog.pg_sequences', "select last_value from pg_catalog.pg_sequences where sequencename = 'employees_id_seq'"],
  ['pg_get_sequence_data()', "select * from pg_get_sequence_data('crm.employees_id_seq')"],
];
for (const [name, sql] of sequenceReaders) {
  test(`A5 the sequence's last_value (counts rows of every org) through ${name}`, async () => {
    const alice = await connect();
    await safe(alice, sql);
  });
}

const writeSideEffects: Array<[string, string, string?]> = [
  ['a BEFORE INSERT trigger (RAISE NOTICE)', "insert into public.audit values (1, 'x')"],
  ['a column DEFAULT calling a reader function', 'insert into public.inbox (id) values (1) returning msg'],
  ['a DO ALSO rule copying rows into a readable table', 'insert into public.req values (1)', 'select * from public.req_log'],
];
for (const [name, sql, after] of writeSideEffects) {
  test(`A5 a write to an unprotected table with ${name} that reads the protected table`, async () => {
    const alice = await connect();
    await safe(alice, sql);
    if (after) await safe(alice, after);
  });
}

test('A5 a function created upstream after pgveil read its catalog is refused (fail closed), not run', async () => {
  const admin = await h.pg.connect('analytics');
  try {
    await admin.query("CREATE FUNCTION public.late_report() RETURNS SETOF text LANGUAGE sql STABLE AS $$ SELECT name || ' ' || ssn FROM crm.employees $$");
  } finally {
    await admin.end();
  }
  const alice = await connect();
  await safe(alice, 'select * from public.late_report()');
  await safe(alice, 'select late_report()');
});

// ── A6 SQL from strings ─────────────────────────────────────────────────────

const q = "'select name, ssn from crm.employees'";
const stringSqlFunctions: Array<[string, string]> = [
  ['query_to_xml', `select query_to_xml(${q}, true, false, '')`],
  ['query_to_xml_and_xmlschema', `select query_to_xml_and_xmlschema(${q}, true, false, '')`],
  ['query_to_xmlschema', `select query_to_xmlschema(${q}, true, false, '')`],
  ['table_to_xml', "select table_to_xml('crm.employees', true, false, '')"],
  ['table_to_xml_and_xmlschema', "select table_to_xml_and_xmlschema('crm.employees'::regclass, true, false, '')"],
  ['table_to_xmlschema', "select table_to_xmlschema('crm.employees', true, false, '')"],
  ['schema_to_xml', "select schema_to_xml('crm', true, false, '')"],
  ['schema_to_xml_and_xmlschema', "select schema_to_xml_and_xmlschema('crm', true, false, '')"],
  ['schema_to_xmlschema', "select schema_to_xmlschema('crm', true, false, '')"],
  ['database_to_xml', "select database_to_xml(true, false, '')"],
  ['database_to_xml_and_xmlschema', "select database_to_xml_and_xmlschema(true, false, '')"],
  ['database_to_xmlschema', "select database_to_xmlschema(true, false, '')"],
  ['ts_stat', "select * from ts_stat('select to_tsvector(''simple'', name) from crm.employees')"],
  ['ts_stat (2 args)', "select * from ts_stat('select to_tsvector(''simple'', name) from crm.employees', 'a')"],
  ['xpath over query_to_xml', `select xpath('//name/text()', query_to_xml(${q}, true, false, ''))`],
  ['xmltable over query_to_xml', `select x.* from xmltable('/table/row' passing query_to_xml(${q}, true, false, '') columns name text) x`],
  ['xmlexists over table_to_xml', "select xmlexists('//row[org_id=\"globex\"]' passing by value table_to_xml('crm.employees', true, false, ''))"],
  ['qualified', `select pg_catalog.query_to_xml(${q}, true, false, '')`],
  ['quoted upper', `select PG_CATALOG."query_to_xml"(${q}, true, false, '')`],
  ['in a CTE', `with x as (select query_to_xml(${q}, true, false, '') as v) select * from x`],
  ['in WHERE', `select 1 from public.lookup where query_to_xml(${q}, true, false, '')::text like '%globex%'`],
  ['in ORDER BY', `select code from public.lookup order by query_to_xml(${q}, true, false, '')::text`],
  ['in LATERAL', `select v from public.lookup, lateral query_to_xml(${q}, true, false, '') as v`],
  ['in PREPARE', `prepare px as select query_to_xml(${q}, true, false, '')`],
  ['in EXPLAIN', `explain select query_to_xml(${q}, true, false, '')`],
  ['in a DECLARE', `begin; declare cx cursor for select query_to_xml(${q}, true, false, ''); fetch all from cx; commit`],
  ['dblink', "select * from dblink('dbname=analytics', 'select name from crm.employees') as t(name text)"],
  ['dblink_exec', "select dblink_exec('dbname=analytics', 'select 1')"],
];

for (const [name, sql] of stringSqlFunctions) {
  test(`A6 ${name} is refused`, async () => {
    const alice = await connect();
    await refused(alice, sql);
  });
}

test('A6 cursor_to_xml and cursor_to_xmlschema are refused', async () => {
  const alice = await connect();
  await safe(alice, 'begin');
  await safe(alice, 'declare c6 cursor for select name, ssn from crm.employees');
  await refused(alice, "select cursor_to_xml('c6', 10, true, false, '')");
  await safe(alice, 'rollback');
  await safe(alice, 'begin');
  await safe(alice, 'declare c7 cursor for select name from crm.employees');
  await refused(alice, "select cursor_to_xmlschema('c7', true, false, '')");
  await safe(alice, 'rollback');
});

test('A6 ts_rewrite runs the SELECT given as a string and is refused', async () => {
  const alice = await connect();
  await refused(alice, "select ts_rewrite('a'::tsquery, 'select ''a''::tsquery, to_tsquery(''simple'', regexp_replace(name, ''[^a-zA-Z]'', '''', ''g'')) from crm.employees where id = 2')");
  await refused(alice, "select ts_rewrite(to_tsquery('simple', 'a'), 'select to_tsquery(''simple'', ''a''), to_tsquery(''simple'', ssn::text) from crm.employees where org_id <> ''acme'' limit 1')");
});

test('A6 DO, CREATE FUNCTION, CREATE PROCEDURE and CALL are refused', async () => {
  const alice = await connect();
  await refused(alice, "DO $$ BEGIN RAISE NOTICE '%', (select string_agg(name, ',') from crm.employees); END $$");
  await refused(alice, "DO $$ DECLARE r text; BEGIN EXECUTE 'select string_agg(name, '','') from crm.' || 'employees' INTO r; RAISE EXCEPTION '%', r; END $$");
  await refused(alice, "do language plpgsql $$ begin perform pg_notify('x', (select string_agg(name, ',') from crm.employees)); end $$");
  await refused(alice, "create function public.f6() returns text language sql as $$ select string_agg(name, ',') from crm.employees $$");
  await refused(alice, "create or replace function pg_temp.f6() returns text language sql as $$ select string_agg(name, ',') from crm.employees $$");
  await refused(alice, "create procedure public.p6() language sql as $$ select 1 $$");
  await refused(alice, 'call public.leak_proc()');
  await refused(alice, 'CALL leak_proc()');
});

// ── A7 multi-statement ──────────────────────────────────────────────────────

test('A7 every statement of a multi-statement Query is rewritten', async () => {
  const alice = await connect();
  const seen = await safe(alice, 'select 1; select name from crm.employees order by id');
  assert.equal(seen.results.map((r) => r.rows), [[[1]], [['Ann'], ['Carl']]]);
  await probe(alice, (id) => `select 1; select name from crm.employees where id = ${id}`);
  await probe(alice, (id) => `select 1; commit; select name from crm.employees where id = ${id}`);
  await probe(alice, (id) => `begin; select 1; commit; select name from crm.employees where id = ${id}`);
  await probe(alice, (id) => `select name from crm.employees where id = ${id}; select name from "crm".employees where id = ${id}`);
  const r = await psqlAs(ALICE, 'select 1; commit; select name from crm.employees order by id');
  assert.match(r.stdout, /Ann\nCarl/);
});

test('A7 one refused statement refuses the whole message: nothing before it runs', async () => {
  const alice = await connect();
  const seen = await refused(alice, "select set_config('application_name', 'a7-ran', false); select name from crm.employees; select query_to_xml('select name from crm.employees', true, false, '')");
  assert.is(seen.results.length, 0);
  const app = rows(await observe(alice, 'show application_name'));
  assert.is.not(app?.[0]?.[0], 'a7-ran', 'the statement before the refused one must not have run');
  const r = await psqlAs(ALICE, 'select name from crm.employees; select * from crm.emp_view');
  assert.is(r.stdout.trim(), '', `no rows from the first statement: ${r.stdout}`);
  assert.is.not(r.status, 0);
});

// ── A8 cursors and prepared statements ──────────────────────────────────────

test('A8 DECLARE CURSOR, SCROLL and WITH HOLD cursors return only the user\'s rows', async () => {
  const alice = await connect();
  await safe(alice, 'begin');
  await safe(alice, 'declare c1 cursor for select id, name from crm.employees order by id');
  await expectRows(alice, 'fetch all from c1', [[1, 'Ann'], [3, 'Carl']]);
  await safe(alice, 'declare c2 scroll cursor for select id from "crm"."employees" order by id');
  await expectRows(alice, 'fetch absolute 2 from c2', [[3]]);
  await safe(alice, 'move backward all in c2');
  await expectRows(alice, 'fetch next from c2', [[1]]);
  await safe(alice, `declare c3 cursor for select name from crm.employees where id = ${OTHER_ORG_ID}`);
  await expectRows(alice, 'fetch all c3', []);
  await safe(alice, 'commit');
  await safe(alice, 'declare h1 cursor with hold for select id, name, ssn from crm.employees order by id');
  await expectRows(alice, 'fetch all from h1', [[1, 'Ann', '111-22-3333'], [3, 'Carl', '222-33-4444']]);
  await safe(alice, 'close h1');
  await probe(alice, (id) => `begin; declare cp${id} cursor for select name from crm.employees where id = ${id}; fetch all from cp${id}; commit`);
});

test('A8 PREPARE / EXECUTE and protocol-level named statements return only the user\'s rows', async () => {
  const alice = await connect();
  await safe(alice, 'prepare p1(int) as select name from crm.employees where id = $1');
  await expectRows(alice, 'execute p1(1)', [['Ann']]);
  await probe(alice, (id) => `execute p1(${id})`);
  await expectRows(alice, { name: 'n1', text: 'select name from crm.employees where id = $1', values: [3] }, [['Carl']]);
  await probe(alice, (id) => ({ name: 'n1', text: 'select name from crm.employees where id = $1', values: [id] }), 'named n1');
  await probe(alice, (id) => ({ text: 'select name from crm.employees where id = $1', values: [id] }), 'unnamed');
  await safe(alice, 'deallocate p1');
  await refused(alice, 'execute p1(1)');
});

test('A8 after a reload: an old SQL prepared statement, protocol statement and WITH HOLD cursor are refused or follow the new policy', async () => {
  const alice = await connect();
  const q8 = 'select ssn from crm.employees order by id';
  await safe(alice, `prepare old_p as ${q8}`);
  await expectRows(alice, { name: 'old_n', text: q8 }, [['111-22-3333'], ['222-33-4444']]);
  await safe(alice, `declare old_c cursor with hold for ${q8}`);
  await withPolicy(tightenedPolicy, async () => {
    // The new policy serves new statements…
    await expectRows(alice, q8, [['XXXX'], ['XXXX']]);
    // …and the old ones must not run with the old policy.
    await safe(alice, 'execute old_p', ACME_RAW_SSN);
    await safe(alice, { name: 'old_n', text: q8 }, ACME_RAW_SSN);
    await safe(alice, 'fetch all from old_c', ACME_RAW_SSN);
    await safe(alice, 'explain execute old_p', ACME_RAW_SSN);
  });
});

test('A8 after a reload: a SQL-PREPAREd statement bound at protocol level (Bind without Parse)', async () => {
  const c = await rawLogin();
  c.send(msg.query('PREPARE sp8 AS select ssn from crm.employees order by id'));
  await c.untilReady();
  await withPolicy(tightenedPolicy, async () => {
    c.send(msg.bind('', 'sp8'), msg.execute(''), msg.sync());
    const replies = await c.untilReady();
    assertClean(rawText(replies), 'Bind to SQL prepared statement sp8 after reload', ACME_RAW_SSN);
  });
  c.close();
});

test('A8 after a reload: a protocol-level named statement run with SQL EXECUTE', async () => {
  const c = await rawLogin();
  c.send(msg.parse('pp8', 'select ssn from crm.employees order by id'), msg.sync());
  await c.untilReady();
  await withPolicy(tightenedPolicy, async () => {
    c.send(msg.query('EXECUTE pp8'));
    const replies = await c.untilReady();
    assertClean(rawText(replies), 'SQL EXECUTE of protocol statement pp8 after reload', ACME_RAW_SSN);
  });
  c.close();
});

test('A8 after a reload: a WITH HOLD cursor read by a protocol Execute of its portal', async () => {
  const c = await rawLogin();
  c.send(msg.query('DECLARE hc8 CURSOR WITH HOLD FOR select ssn from crm.employees order by id'));
  await c.untilReady();
  await withPolicy(tightenedPolicy, async () => {
    c.send(msg.execute('hc8'), msg.sync());
    const replies = await c.untilReady();
    assertClean(rawText(replies), 'protocol Execute of SQL cursor hc8 after reload', ACME_RAW_SSN);
  });
  c.close();
});

test('A8 after a reload: a protocol portal bound before the reload and executed (again) after it', async () => {
  const c = await rawLogin();
  c.send(msg.query('begin'));
  await c.untilReady();
  const executeRows = (portal: string, maxRows: number) => frame('E', Buffer.concat([Buffer.from(portal + '\0'), int32(maxRows)]));
  c.send(msg.parse('', 'select ssn from crm.employees order by id'), msg.bind('pt8', ''), executeRows('pt8', 1), msg.sync());
  const first = await c.untilReady();
  assert.match(rawText(first), /111-22-3333/, 'the first row under the old policy');
  await withPolicy(tightenedPolicy, async () => {
    c.send(executeRows('pt8', 0), msg.sync());
    const replies = await c.untilReady();
    assertClean(rawText(replies), 'protocol Execute of portal pt8 bound before the reload', ACME_RAW_SSN);
  });
  c.send(msg.query('rollback'));
  await c.untilReady();
  c.close();
});

// PREPARE under the default path: `employees` is public.employees (unprotected, forwarded as is).
// Postgres re-analyses a cached statement when search_path changes, so it then reads crm.employees.
test('A8 a SQL PREPAREd statement with an unqualified name, EXECUTEd after SET search_path = crm', async () => {
  const alice = await connect();
  await safe(alice, 'prepare rp as select name from employees order by 1');
  await safe(alice, 'SET search_path = crm, public');
  await safe(alice, 'execute rp');
});

test('A8 a protocol-level named statement with an unqualified name, bound again after set_config(search_path)', async () => {
  const alice = await connect();
  await safe(alice, { name: 'rn', text: 'select name from employees order by 1' });
  await safe(alice, "select set_config('search_path', 'crm', false)");
  await safe(alice, { name: 'rn', text: 'select name from employees order by 1' });
});

test('A8 PREPARE, SET search_path and EXECUTE in one message', async () => {
  const alice = await connect();
  await safe(alice, 'prepare rp1 as select name from employees order by 1; SET search_path = crm, public; execute rp1');
  const alice2 = await connect();
  await safe(alice2, "prepare rp2 as select name from employees order by 1; select set_config('search_path', 'crm', false); execute rp2");
});

test('A8 a pipeline: named Parse, SET search_path, then Bind of the named statement before Sync', async () => {
  const c = await rawLogin();
  c.send(
    msg.parse('rpp', 'select name from employees order by 1'),
    msg.parse('', 'SET search_path = crm, public'), msg.bind('', ''), msg.execute(''),
    msg.bind('', 'rpp'), msg.execute(''),
    msg.sync(),
  );
  assertClean(rawText(await c.untilReady()), 'Parse rpp; SET search_path; Bind rpp in one pipeline');
  c.close();
});

for (const discard of ['DISCARD PLANS', 'DISCARD SEQUENCES', 'DISCARD TEMP']) {
  test(`A8 ${discard} after a reload does not unlock old prepared statements and cursors`, async () => {
    const alice = await connect();
    const q8 = 'select ssn from crm.employees order by id';
    await safe(alice, `prepare dp8 as ${q8}`);
    await safe(alice, `declare dc8 cursor with hold for ${q8}`);
    await expectRows(alice, { name: 'dn8', text: q8 }, [['111-22-3333'], ['222-33-4444']]);
    await withPolicy(tightenedPolicy, async () => {
      await safe(alice, discard);
      await safe(alice, 'execute dp8', ACME_RAW_SSN);
      await safe(alice, 'fetch all from dc8', ACME_RAW_SSN);
      await safe(alice, { name: 'dn8', text: q8 }, ACME_RAW_SSN);
    });
  });
}

test('A8 after a reload, a failed re-PREPARE of the same name does not unlock the old statement', async () => {
  const alice = await connect();
  await safe(alice, 'prepare fp8 as select ssn from crm.employees order by id');
  await withPolicy(tightenedPolicy, async () => {
    const again = await safe(alice, 'prepare fp8 as select 1');
    assert.is(again.error?.code, '42P05', 'Postgres keeps the old statement: "prepared statement already exists"');
    await safe(alice, 'execute fp8', ACME_RAW_SSN);
  });
});

test('A8 after a reload, a failed re-DECLARE of the same cursor name does not unlock the old cursor', async () => {
  const alice = await connect();
  await safe(alice, 'declare fc8 cursor with hold for select ssn from crm.employees order by id');
  await withPolicy(tightenedPolicy, async () => {
    const again = await safe(alice, 'declare fc8 cursor with hold for select 1');
    assert.is(again.error?.code, '42P03', 'Postgres keeps the old cursor: "cursor already exists"');
    await safe(alice, 'fetch all from fc8', ACME_RAW_SSN);
  });
});

test('A8 after a reload, a failed protocol Parse of an existing statement name does not unlock the old statement', async () => {
  const c = await rawLogin();
  c.send(msg.query('PREPARE fn8 AS select ssn from crm.employees order by id'));
  await c.untilReady();
  await withPolicy(tightenedPolicy, async () => {
    c.send(msg.parse('fn8', 'select 1'), msg.sync());
    const parse = await c.untilReady();
    assert.is(sqlstate(parse.find((m) => m.type === 'E')), '42P05');
    c.send(msg.bind('', 'fn8'), msg.execute(''), msg.sync());
    assertClean(rawText(await c.untilReady()), 'Bind fn8 after a failed re-Parse', ACME_RAW_SSN);
  });
  c.close();
});

test('A8 a failed re-PREPARE under a new search_path does not unlock re-analysis of the old statement', async () => {
  const alice = await connect();
  await safe(alice, 'prepare fr8 as select name from employees order by 1');
  await safe(alice, 'SET search_path = crm, public');
  const again = await safe(alice, 'prepare fr8 as select 1');
  assert.is(again.error?.code, '42P05');
  await safe(alice, 'execute fr8');
});

// ── A9 COPY and files ───────────────────────────────────────────────────────

test('A9 COPY … TO STDOUT of the protected table (psql COPY and \\copy) carries only the user\'s rows', async () => {
  for (const sql of [
    'COPY crm.employees TO STDOUT',
    'copy "crm"."employees" to stdout with (format csv, header)',
    'COPY crm.employees (id, name, ssn) TO STDOUT',
    'COPY crm . /**/ employees TO STDOUT',
    '\\copy crm.employees to stdout',
    '\\copy (select * from crm.employees) to stdout',
    'COPY (select name from crm.employees order by id) TO STDOUT',
    'COPY (with e as (select * from crm.employees) select name from e) TO STDOUT',
    'COPY crm.people TO STDOUT',
    'COPY crm.contractors TO STDOUT',
  ]) {
    const r = await psqlAs(ALICE, sql);
    assert.is(r.status, 0, `${sql}: ${r.stderr}`);
    assert.match(r.stdout, /acme|Ann/, `${sql} returns the user's rows`);
  }
  const bob = await psqlAs(BOB, 'COPY crm.employees (name) TO STDOUT');
  assert.equal(bob.stdout.trim().split('\n').sort(), ['Gina SECRETX', 'Gus SECRETX']);
  const r = await psqlAs(ALICE, `COPY (select name from crm.employees where id = ${OTHER_ORG_ID}) TO STDOUT`);
  const m = await psqlAs(ALICE, `COPY (select name from crm.employees where id = ${MISSING_ID}) TO STDOUT`);
  assert.is(r.stdout, m.stdout);
});

test('A9 COPY to/from server files and programs, and COPY FROM into the protected table, are refused', async () => {
  const alice = await connect();
  for (const sql of [
    "COPY crm.employees TO '/tmp/pgveil-a9.txt'",
    "COPY (select * from crm.employees) TO '/tmp/pgveil-a9.txt'",
    "COPY public.lookup TO '/tmp/pgveil-a9.txt'",
    "COPY crm.employees TO PROGRAM 'cat > /tmp/pgveil-a9.txt'",
    "COPY public.lookup FROM PROGRAM 'id'",
    "COPY public.lookup FROM '/etc/passwd'",
    'COPY crm.employees FROM STDIN',
  ]) await refused(alice, sql);
  const r = await psqlAs(ALICE, '\\copy crm.employees from stdin');
  assert.is.not(r.status, 0);
});

test('A9 file and large-object functions are refused', async () => {
  const alice = await connect();
  for (const sql of [
    "select pg_read_file('/etc/passwd')",
    "select pg_read_file('postgresql.conf', 0, 100, true)",
    "select pg_read_binary_file('/etc/passwd')",
    "select * from pg_ls_dir('.')",
    "select pg_stat_file('postgresql.conf')",
    'select * from pg_ls_logdir()',
    'select * from pg_ls_waldir()',
    "select lo_import('/etc/passwd')",
    "select lo_export(1, '/tmp/pgveil-a9.txt')",
    "select lo_from_bytea(0, 'x')",
    'select lo_get(1)',
    'select * from pg_catalog.pg_largeobject',
    "select pg_catalog.pg_read_file('/etc/hostname')",
  ]) await refused(alice, sql);
  const r = await psqlAs(ALICE, "\\lo_import /etc/hostname");
  assert.is.not(r.status, 0, 'psql \\lo_import (fast-path lo_* calls) must fail');
});

// ── A10 fast-path and replication ───────────────────────────────────────────

test('A10 a protocol FunctionCall (F) of query_to_xml by OID is refused', async () => {
  const alice = await connect();
  const oid = Number(rows(await safe(alice, "select 'pg_catalog.query_to_xml'::regproc::oid::int"))?.[0]?.[0]);
  assert.ok(oid > 0);
  const c = await rawLogin();
  const text = (s: string) => Buffer.concat([int32(Buffer.byteLength(s)), Buffer.from(s)]);
  const bool = (b: boolean) => Buffer.concat([int32(1), Buffer.from(b ? 't' : 'f')]);
  const body = Buffer.concat([
    int32(oid), int16(1), int16(0), int16(4),
    text('select name, ssn from crm.employees'), bool(true), bool(false), text(''),
    int16(0),
  ]);
  c.send(frame('F', body));
  const replies = await c.untilReady();
  assertClean(rawText(replies), 'FunctionCall query_to_xml');
  assert.ok(replies.some((m) => m.type === 'E'), 'an ErrorResponse');
  assert.is(sqlstate(replies.find((m) => m.type === 'E')), '42501');
  c.send(msg.query('select 1'));
  const after = await c.untilReady();
  assert.ok(after.some((m) => m.type === 'D'), 'the session stays usable');
  c.close();
});

test('A10 replication connections are refused (node-postgres, psql, raw startup)', async () => {
  for (const value of ['database', 'true', 'on', '1']) {
    const err = await new pg.Client(clientConfig(h, ALICE, { replication: value })).connect().then(() => undefined, (e) => e as { code?: string });
    assert.ok(err, `replication=${value} must be refused`);
  }
  const r = await psqlAs(ALICE, 'IDENTIFY_SYSTEM', 'replication=database');
  assert.is.not(r.status, 0);
  const c = await RawClient.connect(h.proxy.port);
  c.send(startupPacket({ user: ALICE, database: 'analytics', replication: 'database' }));
  const first = await c.message();
  assert.is(first?.type, 'E', 'refused before authentication');
  c.close();
});

test.run();
