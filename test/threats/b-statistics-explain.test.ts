// docs/threat-model.md section B, rows B5 (statistics), B6 (other sessions' text), B7
// (EXPLAIN), B10 (predicates evaluated before the ownership filter) and B9
// with `defaults.writes: allow` (the deny case is in b-redacted-values.test.ts).
//
// Same oracles as b-redacted-values.test.ts: every answer the client gets
// (rows, column names, errors with all fields, notices, EXPLAIN text) is
// scanned for forbidden values (Conn.q does it for every statement), and a
// probe about another org's rows must answer exactly like one about rows
// that do not exist — here also "before and after another org's rows
// changed" (differential probes for row counts and estimates).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import postgres from 'postgres';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';
import { UpstreamLog, explainAsSuperuser } from '../helpers/upstream-log.js';
import { run } from '../helpers/run.js';
import { scrambleInstallSql, scrambleKeyFromSecret } from '../../src/policy/scramble-sql.js';
import {
  Conn as BConn, LeakScanner, closeAll, errorSummary, fieldName, openClient, rawTypes, resText, staffInsertSql, strings, superuser,
  type Cell, type Res as BRes,
} from './b-support.js';

// ── fixture ──────────────────────────────────────────────────────────────────

const SECRET = 'B-threats second file scramble secret 55d0e1';
const KEY = scrambleKeyFromSecret(SECRET);
const BIG_ROWS = 20000;

/** Even ids acme, odd ids globex everywhere. */
const fixtureSql = `
CREATE SCHEMA hr;
CREATE TABLE hr.staff (id int PRIMARY KEY, org_id text NOT NULL, name text NOT NULL, ssn text, salary numeric(10,2), emp_no int4, email text, code text);
${staffInsertSql("  'CODE-' || i")}
CREATE INDEX staff_ssn ON hr.staff (ssn);
CREATE INDEX staff_emp_no ON hr.staff (emp_no);
CREATE STATISTICS hr.staff_ext (mcv, ndistinct) ON org_id, ssn, salary FROM hr.staff;

CREATE TABLE hr.big (id int PRIMARY KEY, org_id text NOT NULL, val text NOT NULL, tag text NOT NULL);
INSERT INTO hr.big SELECT i, CASE WHEN i % 2 = 0 THEN 'acme' ELSE 'globex' END,
  CASE WHEN i % 2 = 0 THEN (1000000 + i * 3)::text ELSE 'GlobexCanaryBig' || i END,
  CASE WHEN i % 2 = 0 THEN 'a-' || i WHEN i % 4 = 1 THEN 'GLOBEX-SECRET-TAG' ELSE 'g-' || i END
  FROM generate_series(1, ${BIG_ROWS}) i;
CREATE INDEX big_tag ON hr.big (tag);

CREATE TABLE hr.counted (id int PRIMARY KEY, org_id text NOT NULL, v text);
INSERT INTO hr.counted SELECT i, CASE WHEN i % 2 = 0 THEN 'acme' ELSE 'globex' END, 'v' || i FROM generate_series(1, 100) i;

CREATE TABLE hr.ledger (id int PRIMARY KEY, org_id text NOT NULL, ssn text UNIQUE, salary numeric(10,2), emp_no int4, note text);
INSERT INTO hr.ledger SELECT i, CASE WHEN i % 2 = 0 THEN 'acme' ELSE 'globex' END,
  CASE WHEN i % 2 = 0 THEN '910' ELSE '911' END || '-00-' || lpad(i::text, 4, '0'),
  50000 + i * 123.45, 60000 + i, 'n' || i
  FROM generate_series(1, 40) i;
ALTER TABLE hr.ledger ADD CONSTRAINT ledger_note_check CHECK (note IS DISTINCT FROM 'forbidden-note');

GRANT USAGE ON SCHEMA hr TO pgveil_service;
GRANT SELECT ON ALL TABLES IN SCHEMA hr TO pgveil_service;
GRANT INSERT, UPDATE, DELETE ON hr.ledger TO pgveil_service;
-- No unique column but its identity key: INSERT with writes: allow is possible here (B9).
CREATE TABLE hr.notes (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, org_id text NOT NULL, ssn text, salary numeric(10,2), emp_no int4, note text);
GRANT SELECT, INSERT ON hr.notes TO pgveil_service;
CREATE TABLE hr.note_refs (note_id int REFERENCES hr.notes (id));
ANALYZE hr.staff, hr.big, hr.counted, hr.ledger;

-- B10: a cheap, leaky function and operator (created by the DBA, callable by the service role)
CREATE FUNCTION public.peek(a text, b text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
  AS $$ BEGIN RAISE NOTICE 'peek: % %', a, b; RETURN true; END $$;
CREATE FUNCTION public.peek_op(a text, b text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
  AS $$ BEGIN RAISE NOTICE 'peek_op: % %', a, b; RETURN true; END $$;
CREATE OPERATOR public.<~> (LEFTARG = text, RIGHTARG = text, FUNCTION = public.peek_op);
CREATE FUNCTION public.peek_unlisted(a text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
  AS $$ BEGIN RAISE NOTICE 'peek_unlisted: %', a; RETURN true; END $$;
GRANT EXECUTE ON FUNCTION public.peek(text, text), public.peek_op(text, text), public.peek_unlisted(text) TO pgveil_service;
`;

const owned = '    ownership:\n      - filter: "org_id = ${user.org}"\n';
const policyYaml = `
layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow, writes: allow }
secrets: { scrambleKey: "${SECRET}" }
functions: { allow: ["public.peek", "public.peek_op", "public.<~>"] }
tables:
  crm.employees:
${owned}  hr.staff:
${owned}    redaction:
      ssn:    { mask: partial, keepLast: 4 }
      salary: { mask: round, step: 1000 }
      emp_no: { mask: scramble }
      email:  { mask: email }
      code:   { mask: scramble }
  hr.big:
${owned}  hr.counted:
${owned}  hr.ledger:
${owned}    redaction:
      ssn:    { mask: partial, keepLast: 4 }
      salary: { mask: round, step: 1000 }
      emp_no: { mask: scramble }
  hr.notes:
${owned}    redaction:
      ssn:    { mask: partial, keepLast: 4 }
      salary: { mask: round, step: 1000 }
      emp_no: { mask: scramble }
`;

// ── forbidden values (see b-redacted-values.test.ts for the reasoning) ───────

type Org = 'acme' | 'globex';
const viewers: Record<string, Org> = { 'alice@acme.com': 'acme', 'carol@acme.com': 'acme', 'bob@globex.com': 'globex' };
const SHAPES = [
  /\d{3}-\d{2}-\d{4}/g,
  /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+/g,
  /(?<![0-9A-Za-z.])\d+(?:\.\d+)?(?![0-9A-Za-z])/g,
];
const scanner = new LeakScanner(SECRET, KEY, SHAPES);
const { forbidden } = scanner;

type Row = Record<string, string | null>;
let staffRaw: Row[] = [];
let ledgerRaw: Row[] = [];

function buildForbidden(): void {
  for (const [user, org] of Object.entries(viewers)) {
    const exact = new Set<string>();
    const add = (...xs: (string | null)[]) => xs.forEach((x) => { if (x !== null) exact.add(x.toLowerCase()); });
    for (const r of staffRaw) {
      add(r.ssn, r.salary, r.emp_no, r.email, r.code);
      if (r.org_id !== org) add(r.name);
    }
    for (const r of ledgerRaw) add(r.ssn, r.salary, r.emp_no);
    const other = org === 'acme'
      ? [/GlobexCanary/i, /globex-inc/i, /'globex'/i]
      : [/AcmeName/i, /acme-corp/i, /'acme'/i];
    forbidden.set(user, { exact, patterns: [/CODE-\d/, ...other] });
  }
}

// ── clients (columns are described by their names) ───────────────────────────

type Res = BRes<string>;
type Conn = BConn<string>;
/** The whole answer, for "answers exactly alike". */
const answer = (r: Res) => JSON.stringify({ e: r.error ? strings(r.error).sort() : null, rows: r.rows, n: r.rowCount, notices: r.notices });

let h: Harness;
const upstreamLog = new UpstreamLog();
let su: pg.Client;
const open: pg.Client[] = [];

async function connect(user: string): Promise<Conn> {
  return new BConn(user, await openClient(clientConfig(h, user, { types: rawTypes }), open), scanner, fieldName);
}
async function suRows(sql: string): Promise<Cell[][]> {
  const r = await su.query({ text: sql, rowMode: 'array' } as pg.QueryConfig);
  return r.rows as unknown as Cell[][];
}
const ledgerRow = async (id: number) => JSON.stringify(await suRows(`select * from hr.ledger where id = ${id}`));

test.before(async () => {
  h = await startHarness({ extraSql: fixtureSql + scrambleInstallSql(KEY, { serviceRole: 'pgveil_service' }), policyYaml, postgresSettings: upstreamLog.settings, onPostgresLog: upstreamLog.onLog });
  su = await superuser(h);
  staffRaw = (await su.query('SELECT * FROM hr.staff ORDER BY id')).rows as Row[];
  ledgerRaw = (await su.query('SELECT * FROM hr.ledger ORDER BY id')).rows as Row[];
  buildForbidden();
});
test.after.each(async () => {
  await closeAll(open);
});
test.after(async () => {
  await su?.end().catch(() => undefined);
  await h?.close();
});

const ALICE = 'alice@acme.com';
const BOB = 'bob@globex.com';
const MISSING_ID = 999999;
const INDEX_SCAN = /Index Scan|Index Only Scan|Bitmap Index Scan/;

function failures(list: string[], what: string): void {
  assert.equal(list, [], what);
}

// ── B5 statistics ────────────────────────────────────────────────────────────

test('B5 pg_stats, pg_statistic, pg_stats_ext and their spellings are refused', async () => {
  const c = await connect(ALICE);
  // the leak is real: upstream, the service role's pg_stats lists raw values of every org
  const svc = new pg.Client({ host: '127.0.0.1', port: h.pg.port, user: 'pgveil_service', password: h.servicePassword, database: 'analytics' });
  await svc.connect();
  const mcv = await svc.query("select most_common_vals::text, histogram_bounds::text from pg_stats where schemaname = 'hr' and tablename = 'staff' and attname in ('ssn', 'name')");
  await svc.end();
  assert.match(JSON.stringify(mcv.rows), /901-|GlobexCanary/, 'fixture: pg_stats holds raw values for the service role');
  const open: string[] = [];
  for (const sql of [
    "select most_common_vals, histogram_bounds from pg_stats where tablename = 'staff'",
    "select * from pg_catalog.pg_stats where schemaname = 'hr'",
    'select * from "pg_stats"',
    'select * from PG_CATALOG.PG_STATS',
    'table pg_stats',
    "select (select histogram_bounds::text from pg_stats where attname = 'ssn' limit 1)",
    'with s as (select * from pg_stats) select * from s',
    'select * from public.lookup l, lateral (select * from pg_stats where attname = l.code) x',
    'select * from pg_statistic',
    'select stavalues1 from pg_catalog.pg_statistic',
    'select * from pg_stats_ext',
    'select most_common_vals from pg_stats_ext where statistics_name = \'staff_ext\'',
    'select * from pg_stats_ext_exprs',
    'select * from pg_statistic_ext_data',
    'select m.* from pg_statistic_ext_data d, pg_mcv_list_items(d.stxdmcv) m',
    "select * from pg_stats where tablename = 'employees'",
  ]) {
    const r = await c.q(sql);
    if (!r.error && r.rows.length > 0) open.push(`${sql} → ${JSON.stringify(r.rows).slice(0, 200)}`);
  }
  failures(open, 'statistics views answered with rows');
});

test('B5 pg_stat_user_tables.n_live_tup and the other per-table activity views are refused', async () => {
  const c = await connect(ALICE);
  const open: string[] = [];
  for (const sql of [
    "select n_live_tup from pg_stat_user_tables where relname = 'staff'",
    'select relname, n_live_tup, n_tup_ins from pg_stat_all_tables',
    'select * from pg_catalog.pg_stat_user_tables',
    'select * from pg_stat_xact_user_tables',
    'select * from pg_stat_xact_all_tables',
    'select heap_blks_read from pg_statio_user_tables',
    'select * from pg_statio_all_tables',
  ]) {
    const r = await c.q(sql);
    if (!r.error) open.push(sql);
  }
  failures(open, 'not refused');
});

test('B5 per-index statistics of protected tables (pg_stat_user_indexes.idx_tup_read, pg_statio_user_indexes) are refused or hidden', async () => {
  const c = await connect(ALICE);
  // an index scan over every org's rows: idx_tup_read counts them all, though alice sees half
  await c.q('select count(*) from hr.big where id > 0 and id <= 600');
  await c.q('select count(*) from hr.staff where id > 0');
  await new Promise((r) => setTimeout(r, 1100)); // let the counters reach shared memory
  await c.q('select 1');
  const keys = new Set(['relid', 'indexrelid', 'schemaname', 'relname', 'indexrelname']);
  const open: string[] = [];
  for (const sql of [
    "select * from pg_stat_user_indexes where schemaname = 'hr'",
    "select * from pg_stat_all_indexes where schemaname = 'hr'",
    "select * from pg_statio_user_indexes where schemaname = 'hr'",
    "select * from pg_statio_all_indexes where schemaname = 'hr'",
  ]) {
    const r = await c.q(sql);
    if (r.error) continue;
    const shown = r.rows.flatMap((row) => row
      .map((v, i) => [r.fields[i], v] as const)
      .filter(([f, v]) => !keys.has(f) && v !== null && v !== '0')
      .map(([f, v]) => `${row[r.fields.indexOf('indexrelname')]}.${f}=${v}`));
    if (shown.length) open.push(`${sql} → ${shown.slice(0, 8).join(', ')}`);
  }
  failures(open, 'index activity counters of protected tables count other orgs\' rows');
});

test('B5 pg_class.reltuples, relpages, stat functions and relation sizes do not give total row counts of protected tables', async () => {
  const c = await connect(ALICE);
  const open: string[] = [];
  for (const [sql, total] of [
    ["select reltuples::int from pg_class where oid = 'hr.staff'::regclass", '600'],
    ["select reltuples::int from pg_class where relname = 'staff_pkey'", '600'],
    ["select c.reltuples::int from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'hr' and c.relname = 'big'", String(BIG_ROWS)],
    ["select reltuples::int from pg_catalog.pg_class where relname = 'big_pkey'", String(BIG_ROWS)],
    ["select pg_stat_get_live_tuples('hr.staff'::regclass)", '600'],
    ["select pg_stat_get_tuples_inserted('hr.staff'::regclass)", '600'],
    ["select pg_stat_get_live_tuples('hr.big'::regclass)", String(BIG_ROWS)],
    ["select reltuples::int from pg_class where oid = 'crm.employees'::regclass", '2'],
  ] as const) {
    const r = await c.q(sql);
    if (!r.error && r.rows[0]?.[0] === total) open.push(`${sql} → ${total} (rows of every org)`);
  }
  failures(open, 'total row counts of protected tables are readable');
});

test('B5 row counts, sizes and EXPLAIN estimates do not change when only another org\'s rows change', async () => {
  const c = await connect(ALICE);
  const probes = [
    "select reltuples, relpages from pg_class where oid = 'hr.counted'::regclass",
    "select reltuples, relpages from pg_class where relname = 'counted_pkey'",
    "select c.relname, c.reltuples, c.relpages, c.relallvisible from pg_class c where c.relnamespace = 'hr'::regnamespace and c.relname like 'counted%' order by 1",
    "select pg_relation_size('hr.counted')",
    "select pg_total_relation_size('hr.counted'), pg_table_size('hr.counted'), pg_indexes_size('hr.counted')",
    "select pg_relation_size('hr.counted_pkey')",
    "select pg_stat_get_live_tuples('hr.counted'::regclass), pg_stat_get_tuples_inserted('hr.counted'::regclass)",
    'select count(*) from hr.counted',
    'select * from hr.counted order by id',
    'explain select * from hr.counted',
    'explain select count(*) from hr.counted where id > 10',
    'explain (format json) select * from hr.counted c join hr.counted d using (id)',
  ];
  const before = [];
  for (const p of probes) before.push(answer(await c.q(p)));
  // another org's rows change (and statistics catch up)
  await su.query("insert into hr.counted select i, 'globex', 'g' || i from generate_series(1001, 9001, 2) i");
  if (Number((await su.query("select current_setting('server_version_num') as v")).rows[0].v) >= 150000) {
    await su.query('select pg_stat_force_next_flush()');
  } else {
    // PostgreSQL 14 sends statistics at most every 500 ms, at the end of a transaction, to its collector.
    await su.query('select pg_sleep(0.6)');
    await su.query('select 1');
    await su.query('select pg_sleep(0.6)');
  }
  await su.query('analyze hr.counted');
  await su.query('select 1');
  const changed: string[] = [];
  for (let i = 0; i < probes.length; i++) {
    const after = answer(await c.q(probes[i]));
    if (after !== before[i]) changed.push(`${probes[i]}\n      before ${before[i].slice(0, 300)}\n      after  ${after.slice(0, 300)}`);
  }
  failures(changed, 'answers that reveal how many rows another org has');
});

// ── B6 other sessions' text ──────────────────────────────────────────────────

test('B6 pg_stat_activity, current_query(), pg_prepared_statements, pg_cursors, pg_stat_statements are refused', async () => {
  const alice = await connect(ALICE);
  const bob = await connect(BOB);
  // bob's session is busy with a rewritten statement (its text carries bob's filter) while alice looks
  const busy = bob.client.query("select /* bob-marker */ pg_sleep(1.5), count(*) from hr.staff where ssn like 'X%'");
  await new Promise((r) => setTimeout(r, 200));
  await alice.q('prepare mine as select * from hr.staff where id = $1');
  const open: string[] = [];
  for (const sql of [
    'select query from pg_stat_activity',
    'select pid, usename, application_name, query from pg_catalog.pg_stat_activity where query like \'%marker%\'',
    'select current_query()',
    'select pg_catalog.current_query()',
    'select * from pg_prepared_statements',
    'select statement from pg_catalog.pg_prepared_statements',
    'select * from pg_cursors',
    'select statement from pg_catalog.pg_cursors',
    'select * from pg_stat_get_activity(null)',
    'select pg_stat_get_backend_activity(s) from pg_stat_get_backend_idset() s',
    'select * from pg_stat_statements',
    'select * from pg_stat_statements(true)',
    'select * from pg_prepared_statement()',
    'select * from pg_cursor()',
    'with a as (select * from pg_stat_activity) select query from a',
  ]) {
    await alice.q('begin');
    await alice.q('declare cur cursor for select * from hr.staff');
    const r = await alice.q(sql);
    if (!r.error) open.push(`${sql} → ${JSON.stringify(r.rows).slice(0, 300)}`);
    await alice.q('rollback');
  }
  await busy.catch(() => undefined);
  failures(open, 'statement text of sessions is readable');
});

test('B6 no view or function shows the rewritten statement text (memory contexts, own session)', async () => {
  const c = await connect(ALICE);
  await c.q('select * from hr.staff where id = 2');
  const open: string[] = [];
  for (const sql of [
    'select ident from pg_backend_memory_contexts where ident is not null',
    'select * from pg_get_backend_memory_contexts()',
    "select pg_log_backend_memory_contexts(pg_backend_pid())",
    "select * from pg_stat_activity where pid = pg_backend_pid()",
  ]) {
    const r = await c.q(sql);
    const text = resText(r);
    if (/OFFSET 0|"pgveil"|pgveil\.|org_id\s*=\s*\(?'acme'/i.test(text)) open.push(`${sql} → ${text.slice(0, 300)}`);
  }
  failures(open, 'rewritten SQL (filters, masks) visible');
});

// ── B7 EXPLAIN ───────────────────────────────────────────────────────────────

test('B7 EXPLAIN VERBOSE shows neither the scramble key nor another org\'s data', async () => {
  const c = await connect(ALICE);
  for (const sql of [
    'explain (verbose, costs off) select * from hr.staff',
    'explain (verbose, costs off) select emp_no, code from hr.staff where emp_no = 1',
    'explain (costs off) select * from hr.staff where emp_no = 1',
    "explain (verbose, format json, costs off) select * from hr.staff where code = 'x'",
    'explain (verbose, format xml, costs off) select count(*) from hr.staff group by emp_no',
    'explain (verbose, format yaml, settings, buffers, costs off) select * from hr.staff s join hr.ledger l on l.emp_no = s.emp_no',
    'explain (verbose, generic_plan, costs off) select * from hr.staff where id = $1',
    'explain (verbose, costs off) select * from crm.employees',
    'explain (verbose, costs off) update hr.ledger set note = note where emp_no = 1 returning *',
  ]) {
    const r = await c.q(sql); // scanned for the key, raw values, other orgs' filters and names
    // A refusal (42501) is always acceptable; anything else must answer without error.
    if (!sql.includes('update') && r.error) assert.is((r.error as { code?: string }).code, '42501', `${sql}: ${r.error.message}`);
  }
});

test('B7 EXPLAIN ANALYZE of a statement reading a protected table is refused', async () => {
  const c = await connect(ALICE);
  await c.q('prepare p as select * from hr.staff where id > $1');
  await c.q('prepare p2 as select count(*) from hr.big');
  const open: string[] = [];
  for (const sql of [
    'explain analyze select * from hr.staff',
    'explain (analyze) select count(*) from hr.staff',
    'explain (analyze true, costs off, timing off, summary off) select * from hr.staff',
    'explain (analyze, format json) select * from hr.big where id = 5',
    'explain analyze select * from public.lookup where exists (select 1 from hr.staff)',
    'explain analyze with x as materialized (select * from hr.staff) select * from x',
    'explain analyze select * from public.lookup l join hr.counted c on true',
    'explain analyze execute p(0)',
    'explain (analyze, buffers) execute p2',
    'explain analyze update hr.ledger set note = note',
    'explain analyze delete from hr.ledger where id = 3',
  ]) {
    const r = await c.q(sql);
    if (!r.error) open.push(`${sql} →\n${c.text(r).split('\n').filter((l) => /Rows Removed|actual/.test(l)).slice(0, 4).join('\n')}`);
  }
  failures(open, 'EXPLAIN ANALYZE ran on a protected table (Rows Removed by Filter counts other orgs\' rows)');
  const ok = await c.q('explain analyze select * from public.lookup');
  assert.not.ok(ok.error, 'EXPLAIN ANALYZE of an unprotected table still serves');
});

test('B7 EXPLAIN of another org\'s row or value answers like EXPLAIN of a missing one', async () => {
  const c = await connect(ALICE);
  const open: string[] = [];
  for (const [probe, theirs, missing] of [
    ['explain (costs off) select * from hr.staff where id = $V', '451', String(MISSING_ID)],
    ['explain (costs off) select * from hr.big where id = $V', '7', String(MISSING_ID)], // 7: a globex row (odd ids)
    ['explain select * from hr.big where id = $V', '7', String(MISSING_ID)],
    // tag is unmasked; a quarter of the table (all globex) has this value: the estimate counts it
    ["explain (costs off) select * from hr.big where tag = '$V'", 'GLOBEX-SECRET-TAG', 'NO-SUCH-TAG-XYZ'],
    ["explain (costs off) select * from hr.big where tag = '$V' or id < 0", 'GLOBEX-SECRET-TAG', 'NO-SUCH-TAG-XYZ'],
    ["explain (costs off) select count(*) from hr.big b join public.lookup l on l.code = b.tag where b.tag = '$V'", 'GLOBEX-SECRET-TAG', 'NO-SUCH-TAG-XYZ'],
    ["explain (format json, costs off) select * from hr.big where tag > '$V'", 'GLOBEX-SECRET-TAG', 'NO-SUCH-TAG-XYZ'],
  ]) {
    const a = answer(await c.q(probe.replace('$V', theirs))).replaceAll(theirs, 'V');
    const b = answer(await c.q(probe.replace('$V', missing))).replaceAll(missing, 'V');
    if (a !== b) open.push(`${probe}\n      ${theirs}: ${a.slice(0, 400)}\n      ${missing}: ${b.slice(0, 400)}`);
  }
  failures(open, 'EXPLAIN estimates tell another org\'s values from missing ones');
});

// ── B10 predicates evaluated before the ownership filter ─────────────────────

test('B10 functions outside pg_catalog that the policy does not list are refused', async () => {
  const c = await connect(ALICE);
  for (const sql of [
    'select id from hr.staff where public.peek_unlisted(name)',
    'select id from hr.staff where peek_unlisted(name)',
    'select public.peek_unlisted(ssn) from hr.staff',
    'select count(*) from public.lookup where public.peek_unlisted(label)',
  ]) {
    const r = await c.q(sql);
    assert.ok(r.error, `${sql} must be refused (not in functions.allow)`);
    assert.equal(r.notices, [], `${sql} must not have run`);
  }
});

test('B10 a cheap leaky function or operator in WHERE never sees another org\'s row', async () => {
  const c = await connect(ALICE);
  // the policy lists peek and <~> under functions.allow, so these run and must still see only acme's rows
  const ran = await c.q('select id from hr.staff where public.peek(name, ssn)');
  assert.not.ok(ran.error, `allowed function refused: ${ran.error?.message}`);
  assert.is(ran.notices.length, 300, 'peek ran once per acme row');
  for (const sql of [
    'select id from hr.staff where public.peek(name, ssn)',
    'select id from hr.staff where id = 451 and public.peek(name, ssn)',
    'select id from hr.staff where public.peek(name, ssn) and id = 451',
    "select id from hr.staff where name operator(public.<~>) 'x'",
    "select id from hr.staff where name OPERATOR(public.<~>) 'x' and id = 451",
    'select s.id from hr.staff s join public.lookup l on public.peek(s.name, l.code)',
    'select s.id from public.lookup l join hr.staff s on public.peek(s.name, s.ssn) and s.id = 451',
    'select s.id from hr.staff s left join hr.staff t on t.id = s.id + 1 and public.peek(t.name, t.email)',
    'select id from hr.staff s where exists (select 1 where public.peek(s.name, s.email))',
    'select id from (select * from hr.staff) x where public.peek(x.name, x.ssn)',
    'select id from (select * from hr.staff where id > 400) x where public.peek(x.name, x.salary::text)',
    'select s.id from hr.staff s, lateral (select 1 where public.peek(s.name, s.code)) l',
    'with x as materialized (select * from hr.staff where public.peek(name, ssn)) select count(*) from x',
    'select count(*) from hr.staff where id = any(array[451, 453, 2]) and public.peek(name, emp_no::text)',
    'select id from hr.staff where public.peek(name, ssn) order by id limit 1',
    'select id from hr.big where id in (5, 7, 9) and public.peek(val, org_id)',
    'select id from hr.big where id = 5 and public.peek(val, val)',
    'select count(*) from hr.staff where ssn like \'9%\' and public.peek(name, ssn)',
    'select id from hr.staff where public.peek(name, ssn) union all select id from hr.big where id < 20 and public.peek(val, val)',
  ]) {
    await c.q(sql); // a NOTICE naming a GlobexCanary row or a raw ssn fails here
  }
  // writes (allowed by this policy): the WHERE of UPDATE/DELETE is just as exposed
  for (const sql of [
    'update hr.ledger set note = note where public.peek(ssn, note)',
    'update hr.ledger set note = note where id = 3 and public.peek(ssn, org_id)',
    'delete from hr.ledger where public.peek(ssn, salary::text) and false',
  ]) {
    await c.q('begin');
    await c.q(sql);
    await c.q('rollback');
  }
});

test('B10 errors in predicates never depend on whether another org\'s row exists', async () => {
  const alice = await connect(ALICE);
  const bob = await connect(BOB);
  // the probe discriminates: bob (whose rows are not numbers) gets the error
  assert.ok((await bob.q('select count(*) from hr.big where val::int > 0')).error, 'fixture: globex vals are not numbers');
  const r = await alice.q('select count(*) from hr.big where val::int > 0');
  assert.not.ok(r.error, `acme's vals are numbers: an error can only come from a globex row: ${r.error?.message}`);
  assert.is(r.rows[0][0], String(BIG_ROWS / 2));
  for (const [a, b] of [
    ["select count(*) from hr.staff where 1/(case when name = 'GlobexCanary0451' then 0 else 1 end) = 1",
      "select count(*) from hr.staff where 1/(case when name = 'NoSuchName' then 0 else 1 end) = 1"],
    ["select count(*) from hr.big where 1/(case when val = 'GlobexCanaryBig5' then 0 else 1 end) = 1",
      "select count(*) from hr.big where 1/(case when val = 'NoSuchVal' then 0 else 1 end) = 1"],
    ['select count(*) from hr.staff where id = 451 and name::int = 1', `select count(*) from hr.staff where id = ${MISSING_ID} and name::int = 1`],
    ['select count(*) from hr.big where id = 5 and val::int = 1', `select count(*) from hr.big where id = ${MISSING_ID} and val::int = 1`],
    ["select * from hr.big where id = 5 and 1/(case when val like 'Globex%' then 0 else 1 end) = 1", `select * from hr.big where id = ${MISSING_ID} and 1/(case when val like 'Globex%' then 0 else 1 end) = 1`],
    ["select * from hr.staff s join public.lookup l on 1/(case when s.name = 'GlobexCanary0451' then 0 else 1 end) = 1 and l.code = 'a' where s.id = 451",
      `select * from hr.staff s join public.lookup l on 1/(case when s.name = 'NoSuchName' then 0 else 1 end) = 1 and l.code = 'a' where s.id = ${MISSING_ID}`],
  ]) {
    const ra = await alice.q(a);
    const rb = await alice.q(b);
    assert.is(errorSummary(ra), errorSummary(rb), `${a}\n   vs ${b}`);
    assert.equal(ra.rows, rb.rows, a);
  }
  const nameInt = await alice.q('select count(*) from hr.staff where name::int = 1');
  if (nameInt.error) assert.match(nameInt.error.message, /AcmeName/, 'the failing value is one of acme\'s own');
});

test('B10 leakproof predicates still reach the index: select * from hr.big where id = 5 runs as an index scan upstream', async () => {
  const c = await connect(ALICE);
  await c.q('prepare byid(int) as select * from hr.big where id = $1');
  const upstream = (await suRows('explain select * from hr.big where id = 5')).map((x) => x[0]).join('\n');
  assert.match(upstream, INDEX_SCAN, 'fixture: the planner prefers the index on the bare table');
  // EXPLAIN itself is refused through pgveil (B7), so the plan of what pgveil sent is read upstream.
  const su = await h.pg.connect('analytics');
  const open: string[] = [];
  try {
    for (const [sql, values] of [
      ['select * from hr.big where id = 5', undefined],
      ['select * from hr.big where id = 4', undefined],
      ['select val from hr.big b where b.id = 4', undefined],
      ['select * from hr.big where id = $1', [4]],
      ['select * from hr.big where id in (4, 6, 8)', undefined],
      ['select b.* from public.lookup l join hr.big b on b.id = 4 where l.code = \'a\'', undefined],
    ] as const) {
      upstreamLog.clear();
      const r = await c.q(sql, values as unknown[] | undefined);
      const plan = r.error ? '' : await explainAsSuperuser(su, (await upstreamLog.last()), values as unknown[] | undefined);
      if (r.error || !INDEX_SCAN.test(plan)) open.push(`${sql}${values ? ` [$1=${values[0]}]` : ''} →\n${r.error?.message ?? plan}`);
    }
    upstreamLog.clear();
    const executed = await c.q('execute byid(4)');
    const prepared = await upstreamLog.last();
    const plan = executed.error ? '' : await explainAsSuperuser(su, prepared, [4]);
    if (executed.error || !INDEX_SCAN.test(plan)) open.push(`execute byid(4) →\n${executed.error?.message ?? plan}`);
  } finally {
    await su.end();
  }
  failures(open, 'the ownership fence keeps the leakproof id = N from the primary key index (full scan of 20k rows)');
  const refused = await c.q('explain (costs off) select * from hr.big where id = 5');
  assert.ok(refused.error, 'B7: EXPLAIN over a protected table is refused through pgveil');
});

test('B10 moving leakproof predicates inside the guard keeps results exact (outer joins, set ops, lateral, parameters)', async () => {
  const c = await connect(ALICE);
  const ref = "(SELECT id, org_id, val, tag FROM ONLY hr.big WHERE org_id = 'acme' OFFSET 0)";
  const wrong: string[] = [];
  for (const t of [
    "select l.code, b.id from public.lookup l left join {big} b on l.code = 'a' where b.id = 4 order by 1, 2",
    "select l.code, b.id from public.lookup l left join {big} b on b.id = 4 order by 1, 2",
    'select l.code, b.id from {big} b right join public.lookup l on b.id = 4 order by 1, 2',
    'select l.code, x.id from (select * from {big} b where b.id < 10) x full join public.lookup l on x.id = 4 * length(l.code) order by 1, 2',
    "select l.code, b.id from public.lookup l left join {big} b on true where b.id = 4 and l.code = 'b' order by 1, 2",
    'select b.id, count(*) over () from {big} b where b.id < 50 order by 1',
    'select id from {big} b where b.id = 4 union all select id from {big} c where c.id = 6 order by 1',
    "select * from public.lookup l, lateral (select b.id from {big} b where b.id = 4 and l.code = 'a') x order by 1",
    "select * from public.lookup l left join lateral (select b.id from {big} b where b.id = 4 and l.code = 'a') x on true order by 1",
    'select b.id, c.id from {big} b join {big} c on c.id = b.id + 2 where b.id = 4 and c.id = 6',
    "select count(*) from {big} b where b.id >= 100 and b.id <= 200 and b.val <> '300'",
    'select count(*) from {big} b where 4 = b.id',
    "select count(*) from {big} big where id = '4'",
    'select count(*) from {big} b where b.id = 4 and exists (select 1 from {big} big where id = 6)',
    "select count(*) from {big} b where b.tag = 'a-4'",
    'select b.id from {big} b where b.id = 4 group by b.id having count(*) = 1',
    'select b.id from {big} b where b.id = 5',
    "select count(*) from {big} b where b.id = 4 or b.tag = 'GLOBEX-SECRET-TAG'",
    "select count(*) from {big} b where not (b.id <> 4)",
    // a column alias list renames the columns: b.id below is the val column, not the real id
    "select count(*) from {big} b(x, o, id) where b.id = '1000012'",
    "select count(*) from {big} b(x, o, id) where id = '1000012'",
    "select b.x, b.id from {big} b(x, o, id, tag) where b.x = 4",
  ]) {
    const got = await c.q(t.replaceAll('{big}', 'hr.big'));
    const want = await suRows(t.replaceAll('{big}', ref));
    if (got.error || JSON.stringify(got.rows) !== JSON.stringify(want)) wrong.push(`${t}\n      pgveil ${got.error?.message ?? JSON.stringify(got.rows).slice(0, 200)}\n      want   ${JSON.stringify(want).slice(0, 200)}`);
  }
  for (const id of [4, 5, MISSING_ID]) {
    const got = await c.q('select count(*), min(val) from hr.big where id = $1', [id]);
    const want = await suRows(`select count(*), min(val) from ${ref} big where id = ${id}`);
    if (got.error || JSON.stringify(got.rows) !== JSON.stringify(want)) wrong.push(`id = $1 [${id}] → ${got.error?.message ?? JSON.stringify(got.rows)}, want ${JSON.stringify(want)}`);
  }
  failures(wrong, 'results differ from the filter-then-predicate reference');
});

test('B10 pushed-down predicates never compare a masked column\'s raw value', async () => {
  const c = await connect(ALICE);
  const acme = staffRaw.filter((x) => x.org_id === 'acme');
  for (const sql of [
    `select count(*) from hr.staff where ssn = '${acme[0].ssn}'`,
    `select count(*) from hr.staff where ssn in ('${acme[1].ssn}', '${acme[2].ssn}')`,
    `select count(*) from hr.staff where emp_no = ${acme[0].emp_no}`,
    `select count(*) from hr.staff where emp_no between ${acme[0].emp_no} and ${acme[5].emp_no}`,
    `select count(*) from hr.staff where salary = ${acme[0].salary}`,
    `select count(*) from hr.staff where code = '${acme[0].code}'`,
    `select count(*) from hr.staff where email = '${acme[0].email}'`,
  ]) {
    const r = await c.q(sql);
    if (!r.error) assert.is(r.rows[0][0], '0', sql);
  }
  const emp = await c.q('select count(*) from hr.staff where emp_no = $1', [Number(acme[0].emp_no)]);
  if (!emp.error) assert.is(emp.rows[0][0], '0');
});

// ── B9 writes with writes: allow ─────────────────────────────────────────────
// UPDATE and DELETE are rewritten (target joined to the guarded rows);
// INSERT and COPY FROM are checked row by row against the filter; MERGE and
// upserts are refused.

test('B9 UPDATE/DELETE predicates see masked values (raw ssn or salary match nothing)', async () => {
  const c = await connect(ALICE);
  const a = ledgerRaw.filter((x) => x.org_id === 'acme');
  const maskedOver52k = (await suRows("select count(*) from hr.ledger where org_id = 'acme' and round(salary / 1000) * 1000 > 52000"))[0][0];
  const rawOver52k = (await suRows("select count(*) from hr.ledger where org_id = 'acme' and salary > 52000"))[0][0];
  assert.is.not(maskedOver52k, rawOver52k, 'fixture: the probe discriminates');
  const results: string[] = [];
  await c.q('begin');
  for (const [sql, want] of [
    ["update hr.ledger set note = 'p' where ssn like '910-%'", 0],
    ["update hr.ledger set note = 'p' where ssn like '911-%'", 0],
    [`update hr.ledger set note = 'p' where ssn = '${a[0].ssn}'`, 0],
    [`update hr.ledger set note = 'p' where salary = ${a[0].salary}`, 0],
    [`delete from hr.ledger where emp_no = ${a[0].emp_no}`, 0],
    ["update hr.ledger set note = 'p' where ssn like 'XXXXXXX%'", 20],
    ['delete from hr.ledger where salary > 52000', Number(maskedOver52k)],
  ] as const) {
    const r = await c.q(sql);
    if (r.error || r.rowCount !== want) results.push(`${sql} → ${r.error ? `${r.error.code} ${r.error.message}` : `${r.rowCount} rows`}, want ${want} rows`);
  }
  await c.q('rollback');
  failures(results, 'writes with masked predicates');
});

test('B9 UPDATE/DELETE touch only own rows; another org\'s row answers like a missing row', async () => {
  const c = await connect(ALICE);
  const globexBefore = await suRows("select * from hr.ledger where org_id = 'globex' order by id");
  const results: string[] = [];
  for (const probe of [
    "update hr.ledger set note = 'x' where id = $ID",
    "update hr.ledger set note = 'x' where id = $ID returning *",
    'delete from hr.ledger where id = $ID returning ssn',
    "update hr.ledger set note = 'x' where id = $ID and ssn like '911%'",
  ]) {
    const g = await c.q(probe.replace('$ID', '3'));
    const m = await c.q(probe.replace('$ID', String(MISSING_ID)));
    if (g.error || answer(g) !== answer(m)) results.push(`${probe}: globex row → ${answer(g).slice(0, 200)} / missing → ${answer(m).slice(0, 200)}`);
  }
  const all = await c.q("update hr.ledger set note = 'all-acme'");
  if (all.error || all.rowCount !== 20) results.push(`update without WHERE → ${all.error?.message ?? all.rowCount}, want 20 (acme's rows)`);
  const globexAfter = await suRows("select * from hr.ledger where org_id = 'globex' order by id");
  if (JSON.stringify(globexAfter) !== JSON.stringify(globexBefore)) results.push('globex rows were modified');
  failures(results, 'ownership on the write target');
});

test('B9 write predicates that error only see masked values', async () => {
  const c = await connect(ALICE);
  const results: string[] = [];
  for (const sql of [
    "update hr.ledger set note = 'e' where ssn::int = 1",
    'delete from hr.ledger where 1/(emp_no - 60002) = 1',
    'update hr.ledger set note = salary::text::int::text where id = 2',
  ]) {
    await c.q('begin');
    const r = await c.q(sql); // scanned for raw values
    await c.q('rollback');
    if (r.error?.code === '22012') results.push(`${sql} → division by zero: the raw emp_no 60002 was seen`);
    if (r.error?.code === '22P02' && !/X{7}|000\.00/.test(r.error.message)) results.push(`${sql} → ${r.error.message}`);
    if (r.error?.code === '42501') results.push(`${sql} → refused (${r.error.message}) although writes: allow`);
  }
  failures(results, 'write predicates');
});

test('B9 RETURNING shows masked new values, for listed columns and for *', async () => {
  const c = await connect(ALICE);
  const x = ledgerRaw.find((r) => r.id === '2')!;
  const masked = ['2', 'XXXXXXX' + x.ssn!.slice(-4), (Math.round(Number(x.salary) / 1000) * 1000).toFixed(2),
    (await suRows('select pgveil.scramble(60002::int4)'))[0][0]];
  const results: string[] = [];
  for (const sql of [
    "update hr.ledger set note = 'r' where id = 2 returning id, ssn, salary, emp_no /* trailing */ -- comments",
    "update hr.ledger l set note = 'r' where l.id = 2 returning l.id, l.ssn, l.salary, l.emp_no",
    'delete from hr.ledger where id = 2 returning id, ssn, salary, emp_no',
  ]) {
    await c.q('begin');
    const r = await c.q(sql);
    await c.q('rollback');
    if (r.error || JSON.stringify(r.rows) !== JSON.stringify([masked])) results.push(`${sql} → ${r.error?.message ?? JSON.stringify(r.rows)}, want ${JSON.stringify([masked])}`);
  }
  for (const sql of ["update hr.ledger set note = 'r' where id = 2 returning *", 'delete from hr.ledger where id = 2 returning *']) {
    await c.q('begin');
    const rr = await c.q(sql); // scanned: raw ssn/salary/emp_no of row 2 must not appear
    await c.q('rollback');
    if (rr.error || rr.rows.length !== 1) results.push(`${sql} → ${rr.error?.message ?? `${rr.rows.length} rows`}`);
  }
  failures(results, 'RETURNING');
});

test('B9 INSERT: own rows go in with masked RETURNING; a row of another org fails the whole statement', async () => {
  const c = await connect(ALICE);
  const results: string[] = [];
  await c.q('begin');
  const own = await c.q("insert into hr.notes (org_id, ssn, salary, emp_no, note) values ('acme', '910-99-0100', 51234.56, 61000, 'ins') returning ssn, salary, emp_no, note -- trailing comment");
  if (own.error || own.rows[0]?.[0] !== 'XXXXXXX0100' || own.rows[0]?.[1] !== '51000.00' || own.rows[0]?.[2] === '61000' || own.rows[0]?.[3] !== 'ins') {
    results.push(`own insert → ${own.error?.message ?? JSON.stringify(own.rows)}`);
  }
  await c.q('rollback');
  for (const sql of [
    "insert into hr.notes (org_id, ssn, salary, emp_no, note) values ('globex', '910-99-0101', 1, 1, 'x')",
    "insert into hr.notes (org_id, ssn, salary, emp_no, note) values ('acme', '910-99-0102', 1, 1, 'x'), ('globex', '910-99-0103', 1, 1, 'x')",
    "insert into hr.notes (org_id, ssn, salary, emp_no, note) select 'globex', '910-99-0104', 1, 1, 'x'",
  ]) {
    const before = (await suRows('select count(*) from hr.notes'))[0][0];
    const r = await c.q(sql);
    const after = (await suRows('select count(*) from hr.notes'))[0][0];
    if (!r.error || after !== before) results.push(`${sql} → ${r.error ? 'error but rows changed' : `${r.rowCount} rows inserted`}`);
  }
  failures(results, 'INSERT with writes: allow');
});

/** psql's \copy … from stdin through pgveil as a user, fed `input`. */
function copyIn(user: string, command: string, input: string) {
  const conninfo = `host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=${user} sslmode=verify-full sslrootcert=${h.caFile}`;
  return run('psql', [conninfo, '-X', '-v', 'ON_ERROR_STOP=1', '-c', command], { input, env: { ...process.env, PGPASSWORD: passwords[user] } });
}

test('B9 COPY FROM STDIN: own rows go in (text, CSV, binary, postgres.js); one row of another org fails the whole COPY', async () => {
  const results: string[] = [];
  const count = async (note: string) => Number((await suRows(`select count(*) from hr.notes where note = '${note}'`))[0][0]);
  const text = await copyIn(ALICE, '\\copy hr.notes (org_id, ssn, salary, emp_no, note) from stdin', 'acme\t910-88-0001\t1.50\t1\tcopy-text\nacme\t910-88-0002\t\\N\t2\tcopy-text\n');
  if (text.status !== 0 || await count('copy-text') !== 2) results.push(`text COPY → ${text.stderr.trim()} (${await count('copy-text')} rows)`);
  const csv = await copyIn(ALICE, '\\copy hr.notes (org_id, note) from stdin with (format csv, header true)', 'org_id,note\nacme,copy-csv\n');
  if (csv.status !== 0 || await count('copy-csv') !== 1) results.push(`CSV COPY → ${csv.stderr.trim()}`);
  // binary, through postgres.js: the bytes are made by upstream itself (COPY TO as superuser)
  const direct = postgres({ host: '127.0.0.1', port: h.pg.port, user: h.pg.user, password: h.pg.password, database: 'analytics', max: 1, onnotice: () => {} });
  const viaPgveil = postgres({ ...clientConfig(h, ALICE), max: 1, onnotice: () => {} } as postgres.Options<Record<string, never>>);
  try {
    for (const [org, note] of [['acme', 'copy-bin'], ['globex', 'copy-bin-globex']]) {
      const chunks: Buffer[] = [];
      for await (const chunk of await direct.unsafe(`copy (select '${org}'::text, '${note}'::text) to stdout (format binary)`).readable()) chunks.push(chunk as Buffer);
      const error = await pipeline(Readable.from([Buffer.concat(chunks)]), await viaPgveil`copy hr.notes (org_id, note) from stdin (format binary)`.writable()).then(() => undefined, (e: Error) => e.message);
      const want = org === 'acme' ? 1 : 0;
      if ((org === 'acme') !== (error === undefined) || await count(note) !== want) results.push(`binary COPY of an ${org} row → ${error ?? 'ok'}, ${await count(note)} rows in`);
    }
  } finally {
    await direct.end();
    await viaPgveil.end();
  }
  const mixed = await copyIn(ALICE, '\\copy hr.notes (org_id, note) from stdin with (format csv)', 'acme,copy-mixed\nglobex,copy-mixed\nacme,copy-mixed\n');
  if (mixed.status === 0 || await count('copy-mixed') !== 0) results.push(`COPY with a globex row → status ${mixed.status}, ${await count('copy-mixed')} rows in`);
  if (!/outside your ownership filter: globex/.test(mixed.stderr)) results.push(`COPY with a globex row → ${mixed.stderr.trim()}`);
  const globexOnly = await copyIn(BOB, '\\copy hr.notes (org_id, note) from stdin with (format csv)', 'acme,copy-bob\n');
  if (globexOnly.status === 0 || await count('copy-bob') !== 0) results.push(`bob copying an acme row → status ${globexOnly.status}`);
  failures(results, 'COPY FROM with writes: allow');
});

test('B9 COPY FROM STDIN refusals: unique or missing filter columns, WHERE, files, partitions; nothing changes', async () => {
  const c = await connect(ALICE);
  const before = await suRows('select count(*) from hr.notes union all select count(*) from hr.ledger');
  const open: string[] = [];
  for (const sql of [
    'copy hr.ledger from stdin', // every column, so the unique id and ssn too
    'copy hr.ledger (id, org_id, note) from stdin',
    'copy hr.ledger (org_id, ssn) from stdin',
    'copy hr.notes (ssn, note) from stdin', // no org_id: the filter could not be checked
    "copy hr.notes (org_id, note) from stdin where org_id = 'acme'",
    "copy hr.notes (org_id, note) from '/tmp/pgveil-b9.csv'",
    "copy hr.notes (org_id, note) from program 'true'",
  ]) {
    const r = await c.q(sql);
    if ((r.error as { code?: string } | undefined)?.code !== '42501') open.push(`${sql} → ${r.error ? `${r.error.code} ${r.error.message}` : 'accepted'}`);
  }
  failures(open, 'a COPY FROM that writes: allow does not support was not refused');
  assert.equal(await suRows('select count(*) from hr.notes union all select count(*) from hr.ledger'), before);
});

test('B9 writes: allow — INSERT, MERGE, COPY FROM and SET of filtered or unique columns are refused; nothing changes', async () => {
  const c = await connect(ALICE);
  const before = await suRows('select * from hr.ledger order by id');
  const open: string[] = [];
  for (const sql of [
    "insert into hr.ledger (id, org_id, ssn, salary, emp_no, note) values (106, 'acme', '910-99-0106', 1, 1, 'x')",
    "insert into hr.ledger (org_id, ssn) values ('acme', default)",
    "insert into hr.ledger (ssn, note) values ('910-99-0107', 'no org')",
    "insert into hr.ledger (org_id, ssn, salary, emp_no, note) values ('acme', '910-99-0108', 1, 1, 'x') on conflict do nothing",
    "merge into hr.ledger l using (select 2 as id) s on l.id = s.id when matched then update set note = 'm'",
    "update hr.ledger set org_id = 'globex' where id = 2",
    'update hr.ledger set id = 7 where id = 2',
    "update hr.ledger set note = 'r' where id = 2 returning ledger",
    'delete from hr.notes where id = 1', // referenced by foreign key: a violation would reveal other orgs' rows
    "update hr.ledger set note = 'p' where pgveil_row.ssn like '910-%'",
    "update hr.ledger set note = 'p' where exists (select 1 where pgveil_row.ssn like '910-%')",
    "update hr.ledger l set note = 'r' where l.id = 2 returning to_jsonb(l)",
  ]) {
    const r = await c.q(sql);
    if ((r.error as { code?: string } | undefined)?.code !== '42501') open.push(`${sql} → ${r.error ? r.error.message : `${r.rowCount} rows`}`);
  }
  failures(open, 'a write that writes: allow does not support was not refused');
  const after = await suRows('select * from hr.ledger order by id');
  assert.equal(after, before, 'hr.ledger is unchanged');
});

test('B9 INSERT … ON CONFLICT DO UPDATE and MERGE cannot reach another org\'s row', async () => {
  const c = await connect(ALICE);
  const before5 = await ledgerRow(5);
  const results: string[] = [];
  for (const sql of [
    "insert into hr.ledger (id, org_id, note) values (5, 'acme', 'pwned') on conflict (id) do update set note = excluded.note returning *",
    "insert into hr.ledger (id, org_id, note) values (5, 'acme', 'pwned') on conflict (id) do update set org_id = 'acme', note = 'pwned'",
    "merge into hr.ledger t using (values (5), (7)) s(id) on t.id = s.id when matched then update set note = 'pwned'",
    "merge into hr.ledger t using (values (5)) s(id) on t.id = s.id when matched then delete",
  ]) {
    const r = await c.q(sql);
    if (!r.error && (r.rowCount ?? 0) > 0) results.push(`${sql} → ${r.rowCount} rows affected`);
  }
  if ((await ledgerRow(5)) !== before5) results.push(`globex row 5 changed: ${await ledgerRow(5)}`);
  failures(results, 'upserts and MERGE');
});

test('B9 unique violations do not confirm another org\'s values or rows', async () => {
  const c = await connect(ALICE);
  const g = ledgerRaw.find((r) => r.id === '7')!; // globex
  const results: string[] = [];
  for (const [taken, free] of [
    [`insert into hr.ledger (id, org_id, ssn) values (120, 'acme', '${g.ssn}')`, "insert into hr.ledger (id, org_id, ssn) values (120, 'acme', '911-77-7777')"],
    [`update hr.ledger set ssn = '${g.ssn}' where id = 2`, "update hr.ledger set ssn = '911-77-7777' where id = 2"],
    ["insert into hr.ledger (id, org_id) values (7, 'acme')", "insert into hr.ledger (id, org_id) values (777, 'acme')"],
  ]) {
    await c.q('begin');
    const a = await c.q(taken);
    await c.q('rollback');
    await c.q('begin');
    const b = await c.q(free);
    await c.q('rollback');
    const sa = a.error ? `${a.error.code} ${a.error.message} ${a.error.detail ?? ''}` : `ok ${a.rowCount}`;
    const sb = b.error ? `${b.error.code} ${b.error.message} ${b.error.detail ?? ''}` : `ok ${b.rowCount}`;
    if (sa !== sb) results.push(`${taken} → ${sa}\n      ${free} → ${sb}`);
  }
  failures(results, 'a unique violation is an existence oracle for another org\'s value');
});

test('B9 constraint violations of a write do not print the row\'s raw values (Failing row contains …)', async () => {
  const c = await connect(ALICE);
  const results: string[] = [];
  for (const sql of [
    'update hr.ledger set org_id = null where id = 2',
    "update hr.ledger set note = 'forbidden-note' where id = 2",
    "update hr.ledger set note = 'forbidden-note' where id = 2 returning *",
    "update hr.ledger set org_id = 'globex' where id = 2",
    "insert into hr.ledger (id, org_id, ssn, note) values (140, 'acme', '910-14-0140', 'forbidden-note')",
    "insert into hr.ledger (id, org_id, ssn) select 141, null, '910-14-0141'",
    "merge into hr.ledger t using (values (2)) s(id) on t.id = s.id when matched then update set note = 'forbidden-note'",
  ]) {
    await c.q('begin');
    const r = await c.q(sql); // scanned: the detail must not carry row 2's raw ssn, salary or emp_no
    await c.q('rollback');
    if (!r.error) results.push(`${sql} → accepted`);
  }
  failures(results, 'writes that violate a constraint');
});

test.run();
