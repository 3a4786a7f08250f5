// search_path on every supported upstream major (threat A2 in docs/threat-model.md). PostgreSQL 18
// reports search_path to clients as ParameterStatus; 14–17 do not, so there
// pgveil has to learn the path another way. Every test here must pass on
// every major (PGVEIL_TEST_PG_MAJOR=14…18):
//   1. a search_path set by the DBA (ALTER DATABASE, ALTER ROLE, the server
//      configuration) is the one pgveil resolves unqualified names with;
//   2. statements that may change search_path (COMMIT, ROLLBACK, EXECUTE,
//      FETCH, DISCARD ALL, RESET ALL …) are not refused;
//   3. SET / SET LOCAL / RESET / set_config / rollbacks of a SET are followed.
// A decoy public.employees (a globex row with a raw ssn) sits beside the
// protected crm.employees, so resolving a name differently from upstream is
// visible: either crm.employees' raw rows of every org reach alice, or the
// decoy shows up where crm.employees was meant.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import postgres from 'postgres';
import { readFileSync } from 'node:fs';
import { employeesPolicy, policyDefaults, startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';
import { connectRecording, describe, leakIn, observe, sleep, type Client, type Seen } from '../threats/ac-support.js';

const extraSql = `
INSERT INTO crm.employees VALUES (3, 'acme', 'Cat', '333-44-5555', 70000);
CREATE TABLE public.employees (id int, org_id text, name text, ssn text, salary numeric);
INSERT INTO public.employees VALUES (99, 'globex', 'Decoy', '999-99-9999', 1);
CREATE TABLE public.locks (id int PRIMARY KEY, v text);
INSERT INTO public.locks VALUES (1, 'x');
GRANT SELECT ON public.employees, public.locks TO pgveil_service;
GRANT UPDATE ON public.locks TO pgveil_service;
`;

export const searchPathPolicy = policyDefaults + employeesPolicy;

const ALICE = 'alice@acme.com';
/** crm.employees as alice must see it: acme's rows, ssn masked (XXXXXXX + last four). */
const CRM = [['Ann', 'XXXXXXX3333'], ['Cat', 'XXXXXXX5555']];
/** public.employees, unprotected: what the default path resolves `employees` to. */
const PUBLIC = [['Decoy', '999-99-9999']];
/** Never, whatever the path: globex's crm row and acme's raw ssns. */
const NEVER = [/Gus/, /444-55-6666/, /111-22-3333/, /333-44-5555/];
/** When upstream resolves to crm: the decoy showing up means pgveil read another table. */
const DECOY = [/Decoy/, /999-99-9999/];

let h: Harness;
const open: pg.Client[] = [];
let direct: pg.Client;

test.before(async () => {
  h = await startHarness({ extraSql, policyYaml: searchPathPolicy, tlsMode: 'prefer' });
  direct = await h.pg.connect('analytics');
});
test.after(async () => {
  await direct.end();
  await h.close();
});
test.after.each(async () => {
  for (const c of open.splice(0)) await c.end().catch(() => {});
});

const alice = (): Promise<Client> => connectRecording(clientConfig(h, ALICE), open);

/** Runs q, fails on anything of NEVER (and DECOY when `also`) in what came back. */
async function safe(c: Client, q: string | pg.QueryConfig, also: RegExp[] = []): Promise<Seen> {
  const seen = await observe(c, q);
  const leak = leakIn(JSON.stringify(seen), [...NEVER, ...also]);
  assert.not.ok(leak, `LEAK: ${typeof q === 'string' ? q : q.text}\n  ${leak}`);
  return seen;
}

async function ok(c: Client, q: string | pg.QueryConfig): Promise<Seen> {
  const seen = await safe(c, q);
  assert.not.ok(seen.error, `${typeof q === 'string' ? q : q.text}: unexpected error ${describe(seen)}`);
  return seen;
}

const lastRows = (s: Seen) => s.results[s.results.length - 1]?.rows;

/**
 * Unqualified `employees`, simple and extended protocol: exactly the rows
 * of the table upstream resolves it to (`where` says which), never a leak.
 */
async function reads(c: Client, where: 'crm' | 'public', label: string): Promise<void> {
  const expected = where === 'crm' ? CRM : PUBLIC;
  const also = where === 'crm' ? DECOY : [];
  for (const q of [
    'select name, ssn from employees order by id',
    { text: 'select name, ssn from employees where id > $1 order by id', values: [0] },
  ] as Array<string | pg.QueryConfig>) {
    const seen = await safe(c, q, also);
    const text = typeof q === 'string' ? q : `${q.text} (extended)`;
    assert.not.ok(seen.error, `${label}: ${text}: expected ${where}.employees, got ${describe(seen)}`);
    assert.equal(lastRows(seen), expected, `${label}: ${text} resolves to ${where}.employees`);
  }
}

/** Runs `fn` with an upstream setting in place and undoes it after. */
async function withUpstream(set: string[], undo: string[], fn: () => Promise<void>): Promise<void> {
  for (const s of set) await direct.query(s);
  try { await fn(); } finally { for (const s of undo) await direct.query(s); }
}

// ── 1. the DBA's search_path ────────────────────────────────────────────────

test('fixture: qualified names read as expected through pgveil; the default path resolves employees to the decoy', async () => {
  const c = await alice();
  assert.equal(lastRows(await ok(c, 'select name, ssn from crm.employees order by id')), CRM);
  assert.equal(lastRows(await ok(c, 'select name, ssn from public.employees order by id')), PUBLIC);
  await reads(c, 'public', 'default path');
});

test('A2 ALTER DATABASE analytics SET search_path = crm, public: a new session resolves employees as upstream does (crm)', async () => {
  await withUpstream(['ALTER DATABASE analytics SET search_path = crm, public'], ['ALTER DATABASE analytics RESET search_path'], async () => {
    await reads(await alice(), 'crm', 'ALTER DATABASE');
  });
});

test('A2 ALTER ROLE <service role> SET search_path = crm, public: a new session resolves employees as upstream does (crm)', async () => {
  await withUpstream(['ALTER ROLE pgveil_service SET search_path = crm, public'], ['ALTER ROLE pgveil_service RESET search_path'], async () => {
    await reads(await alice(), 'crm', 'ALTER ROLE');
  });
});

test('A2 ALTER ROLE <service role> IN DATABASE analytics SET search_path = crm: a new session resolves employees as upstream does (crm)', async () => {
  await withUpstream(['ALTER ROLE pgveil_service IN DATABASE analytics SET search_path = crm'], ['ALTER ROLE pgveil_service IN DATABASE analytics RESET search_path'], async () => {
    await reads(await alice(), 'crm', 'ALTER ROLE IN DATABASE');
  });
});

test('A2 search_path in the server configuration file (ALTER SYSTEM + reload): a new session resolves employees as upstream does (crm)', async () => {
  await withUpstream(['ALTER SYSTEM SET search_path = crm, public', 'SELECT pg_reload_conf()'], ['ALTER SYSTEM RESET search_path', 'SELECT pg_reload_conf()'], async () => {
    await sleep(300); // the postmaster re-reads the file asynchronously
    const check = await h.pg.connect('analytics');
    const upstreamPath = (await check.query('show search_path')).rows[0].search_path;
    await check.end();
    assert.is(upstreamPath, 'crm, public', 'fixture: upstream applied the configuration');
    await reads(await alice(), 'crm', 'ALTER SYSTEM');
  });
  await sleep(300);
});

test('A2 search_path on the server command line (-c search_path=crm,public): a new session resolves employees as upstream does (crm)', async () => {
  const h2 = await startHarness({ extraSql, policyYaml: searchPathPolicy, tlsMode: 'prefer', postgresSettings: { search_path: 'crm, public' } });
  const mine: pg.Client[] = [];
  try {
    const c = await connectRecording(clientConfig(h2, ALICE), mine);
    await reads(c, 'crm', 'postgres -c search_path');
    await ok(c, 'RESET search_path');
    await reads(c, 'crm', 'postgres -c search_path, then RESET search_path');
  } finally {
    for (const c of mine) await c.end().catch(() => {});
    await h2.close();
  }
});

test('A2 RESET search_path and DISCARD ALL return to the database\'s search_path (crm), not to "$user", public', async () => {
  await withUpstream(['ALTER DATABASE analytics SET search_path = crm, public'], ['ALTER DATABASE analytics RESET search_path'], async () => {
    const c = await alice();
    await ok(c, 'SET search_path = public');
    await reads(c, 'public', 'SET search_path = public');
    await ok(c, 'RESET search_path');
    await reads(c, 'crm', 'RESET search_path');
    await ok(c, 'SET search_path = public');
    await ok(c, 'DISCARD ALL');
    await reads(c, 'crm', 'DISCARD ALL');
    await ok(c, 'SET search_path = public');
    await ok(c, 'RESET ALL');
    await reads(c, 'crm', 'RESET ALL');
  });
});

// A session already open when the DBA changes the configuration: upstream
// applies the new value at its next command (on 18 it reports it only after
// that command). Any answer is acceptable except a leak.
test('A2 a configuration reload that changes search_path under an open session never leaks', async () => {
  const c = await alice();
  await reads(c, 'public', 'before the reload');
  await withUpstream(['ALTER SYSTEM SET search_path = crm, public', 'SELECT pg_reload_conf()'], ['ALTER SYSTEM RESET search_path', 'SELECT pg_reload_conf()'], async () => {
    await sleep(300);
    for (let i = 0; i < 3; i++) {
      const seen = await safe(c, 'select name, ssn from employees order by id');
      if (!seen.error) assert.ok([JSON.stringify(CRM), JSON.stringify(PUBLIC)].includes(JSON.stringify(lastRows(seen))), `after the reload: ${describe(seen)}`);
    }
  });
  await sleep(300);
});

// ── 2. statements that may change search_path are not refused ───────────────

const simpleSequences: Array<[string, string[], unknown[][] | undefined]> = [
  ['BEGIN … COMMIT', ['BEGIN', 'select name, ssn from crm.employees order by id', 'COMMIT'], undefined],
  ['BEGIN … END', ['BEGIN', 'select 1', 'END'], undefined],
  ['BEGIN … ROLLBACK', ['BEGIN', 'select 1', 'ROLLBACK'], undefined],
  ['BEGIN … ABORT', ['BEGIN', 'select 1', 'ABORT'], undefined],
  ['START TRANSACTION … COMMIT AND CHAIN … COMMIT', ['START TRANSACTION', 'select 1', 'COMMIT AND CHAIN', 'select 2', 'COMMIT'], undefined],
  ['SAVEPOINT / ROLLBACK TO SAVEPOINT / RELEASE', ['BEGIN', 'SAVEPOINT s1', 'select 1', 'ROLLBACK TO SAVEPOINT s1', 'RELEASE SAVEPOINT s1', 'COMMIT'], undefined],
  ['PREPARE / EXECUTE / DEALLOCATE', ['PREPARE p1 AS select name, ssn from crm.employees order by id', 'EXECUTE p1', 'DEALLOCATE p1'], CRM],
  ['PREPARE with a parameter / EXECUTE / DEALLOCATE ALL', ['PREPARE p2(int) AS select name, ssn from crm.employees where id > $1 order by id', 'EXECUTE p2(0)', 'DEALLOCATE ALL'], CRM],
  ['DECLARE / FETCH / MOVE / CLOSE in a transaction',
    ['BEGIN', 'DECLARE c1 SCROLL CURSOR FOR select name, ssn from crm.employees order by id', 'FETCH 1 FROM c1', 'MOVE FIRST IN c1', 'FETCH NEXT FROM c1', 'MOVE ABSOLUTE 0 IN c1', 'FETCH ALL FROM c1', 'CLOSE c1', 'COMMIT'], CRM],
  ['DECLARE WITH HOLD / COMMIT / FETCH / CLOSE', ['BEGIN', 'DECLARE c2 CURSOR WITH HOLD FOR select name, ssn from crm.employees order by id', 'COMMIT', 'FETCH ALL FROM c2', 'CLOSE c2'], CRM],
  ['DISCARD ALL', ['PREPARE p3 AS select 1', 'DISCARD ALL', 'select 1'], undefined],
  ['RESET ALL', ['SET statement_timeout = 1000', 'RESET ALL', 'select 1'], undefined],
];

for (const [name, statements, expected] of simpleSequences) {
  test(`A2 ${name} works through pgveil (simple protocol)`, async () => {
    const c = await alice();
    let last: Seen | undefined;
    for (const s of statements) {
      const seen = await ok(c, s);
      if (/^(EXECUTE|FETCH ALL)/.test(s)) last = seen;
    }
    if (expected) assert.equal(lastRows(last as Seen), expected, `${name}: the rows`);
    await reads(c, 'public', `${name}: afterwards`);
  });

  test(`A2 ${name} works through pgveil (extended protocol)`, async () => {
    const c = await alice();
    let last: Seen | undefined;
    for (const s of statements) {
      const seen = await ok(c, { text: s, queryMode: 'extended' } as pg.QueryConfig);
      if (/^(EXECUTE|FETCH ALL)/.test(s)) last = seen;
    }
    if (expected) assert.equal(lastRows(last as Seen), expected, `${name}: the rows`);
    await reads(c, 'public', `${name}: afterwards`);
  });
}

test('A2 FETCH 1 from a cursor returns the first of alice\'s masked rows; MOVE skips as upstream does', async () => {
  const c = await alice();
  await ok(c, 'BEGIN');
  await ok(c, 'DECLARE c3 SCROLL CURSOR FOR select name, ssn from crm.employees order by id');
  assert.equal(lastRows(await ok(c, 'FETCH 1 FROM c3')), [CRM[0]]);
  await ok(c, 'MOVE ABSOLUTE 0 IN c3');
  await ok(c, 'MOVE 1 IN c3');
  assert.equal(lastRows(await ok(c, { text: 'FETCH 1 FROM c3', queryMode: 'extended' } as pg.QueryConfig)), [CRM[1]]);
  await ok(c, 'CLOSE c3');
  await ok(c, 'COMMIT');
});

test('A2 postgres.js: a transaction (sql.begin) committed and one rolled back by an exception', async () => {
  const sql = postgres({
    host: '127.0.0.1', port: h.proxy.port, user: ALICE, password: passwords[ALICE], database: 'analytics',
    ssl: { ca: readFileSync(h.caFile, 'utf8') }, max: 1, onnotice: () => {},
  });
  try {
    const got = await sql.begin(async (tx) => tx`select name, ssn from crm.employees where id > ${0} order by id`);
    assert.equal(got.map((r) => [r.name, r.ssn]), CRM);
    const failed = await sql.begin(async (tx) => { await tx`select 1 / ${0}::int`; }).then(() => undefined, (e) => e as { code?: string });
    assert.is(failed?.code, '22012', 'upstream\'s own error, then ROLLBACK');
    const again = await sql`select name, ssn from crm.employees where id > ${0} order by id`;
    assert.equal(again.map((r) => [r.name, r.ssn]), CRM);
  } finally {
    await sql.end();
  }
});

test('A2 a pgveil refusal inside a transaction is followed by a ROLLBACK that succeeds; the session goes on', async () => {
  const c = await alice();
  await ok(c, 'BEGIN');
  const refused = await safe(c, 'select * from pg_catalog.pg_statistic');
  assert.ok(refused.error, `pg_statistic is refused: ${describe(refused)}`);
  const ignored = await safe(c, 'select 1');
  assert.is(ignored.error?.code, '25P02', 'the refusal aborted the block, as an upstream error would');
  await ok(c, 'ROLLBACK');
  assert.equal(lastRows(await ok(c, 'select name, ssn from crm.employees order by id')), CRM);
  // and in the extended protocol
  await ok(c, { text: 'BEGIN', queryMode: 'extended' } as pg.QueryConfig);
  const refused2 = await safe(c, { text: 'select * from pg_catalog.pg_statistic where $1::int = 1', values: [1] });
  assert.ok(refused2.error, 'refused in the extended protocol');
  await ok(c, { text: 'ROLLBACK', queryMode: 'extended' } as pg.QueryConfig);
  await reads(c, 'public', 'after ROLLBACK');
});

test('A2 locks are released by ROLLBACK (and COMMIT) through pgveil: a second session can lock the row afterwards', async () => {
  const a = await alice();
  const b = await alice();
  for (const end of ['ROLLBACK', 'COMMIT', 'ABORT', 'END']) {
    await ok(a, 'BEGIN');
    const locked = await safe(a, 'select id from public.locks where id = 1 for update');
    assert.not.ok(locked.error, `fixture: SELECT … FOR UPDATE of an unprotected table is allowed (${describe(locked)})`);
    const blocked = await safe(b, 'select id from public.locks where id = 1 for update nowait');
    assert.is(blocked.error?.code, '55P03', 'the row is locked while the first transaction is open');
    if (end === 'ROLLBACK' || end === 'ABORT') await safe(a, 'select * from pg_catalog.pg_statistic'); // a refusal first
    await ok(a, end);
    assert.equal(lastRows(await ok(b, 'select id from public.locks where id = 1 for update nowait')), [[1]], `${end} released the lock`);
  }
});

// ── 3. SET search_path and what undoes it ───────────────────────────────────

test('A2 SET search_path = crm: unqualified names read crm.employees, filtered and masked', async () => {
  const c = await alice();
  await ok(c, 'SET search_path = crm');
  await reads(c, 'crm', 'SET search_path = crm');
  await ok(c, 'SET search_path TO public');
  await reads(c, 'public', 'SET search_path TO public');
  await ok(c, 'SET search_path = crm, public');
  await reads(c, 'crm', 'SET search_path = crm, public');
});

test('A2 SET search_path in the extended protocol', async () => {
  const c = await alice();
  await ok(c, { text: 'SET search_path = crm', queryMode: 'extended' } as pg.QueryConfig);
  await reads(c, 'crm', 'extended SET search_path = crm');
});

test('A2 SET LOCAL search_path inside a transaction; after COMMIT the old path applies again', async () => {
  const c = await alice();
  await ok(c, 'BEGIN');
  await ok(c, 'SET LOCAL search_path = crm');
  await reads(c, 'crm', 'SET LOCAL');
  await ok(c, 'COMMIT');
  await reads(c, 'public', 'after COMMIT');
});

test('A2 RESET search_path and SET search_path TO DEFAULT return to the default', async () => {
  const c = await alice();
  await ok(c, 'SET search_path = crm');
  await ok(c, 'RESET search_path');
  await reads(c, 'public', 'RESET search_path');
  await ok(c, 'SET search_path = crm');
  await ok(c, 'SET search_path TO DEFAULT');
  await reads(c, 'public', 'SET search_path TO DEFAULT');
});

test('A2 set_config(\'search_path\', \'crm\', false) in a SELECT', async () => {
  const c = await alice();
  await ok(c, "select set_config('search_path', 'crm', false)");
  await reads(c, 'crm', 'set_config');
  await ok(c, { text: "select set_config('search_path', 'public', false) where $1::int = 1", values: [1] });
  await reads(c, 'public', 'set_config in the extended protocol');
});

test('A2 set_config(…, true) is local to the transaction', async () => {
  const c = await alice();
  await ok(c, 'BEGIN');
  await ok(c, "select set_config('search_path', 'crm', true)");
  await reads(c, 'crm', 'set_config local');
  await ok(c, 'COMMIT');
  await reads(c, 'public', 'after COMMIT');
});

test('A2 SET search_path inside a transaction, then ROLLBACK undoes it', async () => {
  const c = await alice();
  await ok(c, 'BEGIN');
  await ok(c, 'SET search_path = crm');
  await reads(c, 'crm', 'SET in a transaction');
  await ok(c, 'ROLLBACK');
  await reads(c, 'public', 'after ROLLBACK');
});

test('A2 SET search_path, then an error, then ROLLBACK undoes it', async () => {
  const c = await alice();
  await ok(c, 'BEGIN');
  await ok(c, 'SET search_path = crm');
  const failed = await safe(c, 'select 1/0');
  assert.is(failed.error?.code, '22012');
  await ok(c, 'ROLLBACK');
  await reads(c, 'public', 'after the failed transaction');
});

test('A2 ROLLBACK TO SAVEPOINT undoes a SET made after the savepoint, and keeps one made before', async () => {
  const c = await alice();
  await ok(c, 'BEGIN');
  await ok(c, 'SAVEPOINT s');
  await ok(c, 'SET search_path = crm');
  await reads(c, 'crm', 'SET after the savepoint');
  await ok(c, 'ROLLBACK TO SAVEPOINT s');
  await reads(c, 'public', 'after ROLLBACK TO SAVEPOINT');
  await ok(c, 'SET search_path = crm');
  await ok(c, 'SAVEPOINT t');
  await ok(c, 'SET search_path = public');
  await reads(c, 'public', 'SET public after t');
  await ok(c, 'ROLLBACK TO t');
  await reads(c, 'crm', 'after ROLLBACK TO t');
  await ok(c, 'COMMIT');
  await reads(c, 'crm', 'after COMMIT (the SET before t stays)');
});

test('A2 a SET in a multi-statement Query that fails later is undone with the implicit transaction', async () => {
  const c = await alice();
  const failed = await safe(c, 'SET search_path = crm; select 1/0');
  assert.is(failed.error?.code, '22012');
  await reads(c, 'public', 'after the failed multi-statement Query');
});

test('A2 EXECUTE of a prepared set_config and FETCH from a cursor over set_config change search_path', async () => {
  const c = await alice();
  await ok(c, "PREPARE sp AS select set_config('search_path', 'crm', false)");
  await ok(c, 'EXECUTE sp');
  await reads(c, 'crm', 'EXECUTE sp');
  await ok(c, 'SET search_path = public');
  await ok(c, 'BEGIN');
  await ok(c, "DECLARE sc CURSOR FOR select set_config('search_path', 'crm', false)");
  await ok(c, 'FETCH 1 FROM sc');
  await reads(c, 'crm', 'FETCH sc');
  await ok(c, 'COMMIT');
  await reads(c, 'crm', 'after COMMIT');
});

test.run();
