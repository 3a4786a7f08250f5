// docs/threat-model.md section C — escaping the session's identity. Real clients
// through pgveil against a real PostgreSQL; the oracles are those of
// a-reaching-rows.test.ts: nothing a client receives carries another
// organization's (or another user's) values, a probe of a row outside the
// filter answers as a probe of a missing row, and a refusal is always fine.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, clientConfig, passwords, today, type Harness } from '../helpers/harness.js';
import { psql, type RunResult } from '../helpers/run.js';
import { RawClient, startupPacket } from '../helpers/raw-client.js';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { conninfo, connectRecording, observe, oracles, rows, sleep, writeAndReload, type Client } from './ac-support.js';

// ── users ───────────────────────────────────────────────────────────────────
// Attribute values that would break out of a naively quoted literal (C2).
const TAGS = {
  mallory: "o'; drop table crm.tickets; --",
  eve: 'x$pgv$) OR true OR ($pgv$',
  trudy: 'abc$pgv',
  zed: "back\\' OR true --",
};
const extra: Record<string, { password: string; org: string; tag?: string; more?: string }> = {
  'mallory@acme.com': { password: 'Mallory-pass-0004', org: 'acme', tag: TAGS.mallory },
  'eve@acme.com': { password: 'Eve-pass-0005!', org: 'acme', tag: TAGS.eve, more: 'regions: ["EU", "x\') OR (true"], cost_center: 17' },
  'trudy@acme.com': { password: 'Trudy-pass-0006', org: 'acme', tag: TAGS.trudy },
  'zed@acme.com': { password: 'Zed-pass-0007!!', org: 'acme', tag: TAGS.zed },
  'dave@acme.com': { password: 'Dave-pass-0008', org: 'acme', tag: 'team-a' },
  'frank@acme.com': { password: 'Frank-pass-0009', org: 'acme' },
};
const ORG_MARK = (user: string) => `  # org-of ${user}`;
const extraUsers = Object.entries(extra).map(([name, u]) => `  ${name}:
    org: ${u.org}${ORG_MARK(name)}
    groups: [analysts]
    password: "${createVerifier(u.password)}"
    passwordChangedAt: ${today()}
${u.tag !== undefined ? `    attributes: { tag: ${JSON.stringify(u.tag)}${u.more ? `, ${u.more}` : ''} }\n` : ''}`).join('');
// Added in test.before (an organization whose name carries a quote).
const OSCAR = "o'scar@evil.org";
const OSCAR_PASSWORD = 'Oscar-pass-0010';
const EVIL_ORG = "evil'org; --";

function pw(user: string): string {
  return extra[user]?.password ?? (user === OSCAR ? OSCAR_PASSWORD : passwords[user]);
}

// ── upstream schema ─────────────────────────────────────────────────────────
const extraSql = String.raw`
DROP TABLE crm.employees;
CREATE TABLE crm.employees (id int PRIMARY KEY, org_id text NOT NULL, name text, ssn text, salary numeric);
INSERT INTO crm.employees VALUES
  (1, 'acme', 'Ann', '111-22-3333', 90000),
  (2, 'globex', 'Gus SECRETX', 'SECRETX-SSN-1', 424242),
  (3, 'evil''org; --', 'Oscar', '333-44-5555', 1),
  (4, 'acme', 'Carl', '222-33-4444', 80000);

-- C2: filters and a custom mask over a user attribute.
CREATE TABLE crm.tickets (id int PRIMARY KEY, tag text NOT NULL, title text, secret text);
INSERT INTO crm.tickets VALUES
  (1, 'o''; drop table crm.tickets; --', 'mallory-ticket', 'm-secret-1'),
  (2, 'x$pgv$) OR true OR ($pgv$', 'eve-ticket', 'e-secret-2'),
  (3, 'abc$pgv', 'trudy-ticket', 't-secret-3'),
  (4, 'back\'' OR true --', 'zed-ticket', 'z-secret-4'),
  (5, 'team-a', 'team-a ticket', 'a-secret-5'),
  (6, 'team-b', 'SECRETX team-b ticket', 'SECRETX-b');

-- C2: a list attribute (= ANY) and a number attribute.
CREATE TABLE crm.region_data (id int PRIMARY KEY, region text, cc int, val text);
INSERT INTO crm.region_data VALUES (1, 'EU', 17, 'eu-17'), (2, 'x'') OR (true', 17, 'weird-17'),
  (3, 'EU', 18, 'SECRETX eu-18'), (4, 'US', 17, 'SECRETX us-17');

-- C2: identifiers with quotes and spaces.
CREATE TABLE crm."we""ird" (org_id text NOT NULL, "Na me" text, "Sa""lary" numeric);
INSERT INTO crm."we""ird" VALUES ('acme', 'Alpha Person', 12345), ('globex', 'SECRETX person', 424242);

-- C5: a filter that reads an unqualified table (public.org_members), and a same-named table in crm.
CREATE TABLE crm.projects (id int PRIMARY KEY, org_id text NOT NULL, title text);
INSERT INTO crm.projects VALUES (1, 'acme', 'acme-project'), (2, 'globex', 'SECRETX-project');
CREATE TABLE public.org_members (member text, org text);
INSERT INTO public.org_members VALUES ('alice@acme.com', 'acme'), ('bob@globex.com', 'globex');
CREATE TABLE crm.org_members (member text, org text);   -- the CRM's own contact list: alice is a contact of globex
INSERT INTO crm.org_members VALUES ('alice@acme.com', 'globex');
-- C5: schemas (an extension's, say) holding an = operator for text, and functions named like pg_catalog's.
CREATE SCHEMA ext;
CREATE FUNCTION ext.text_eq_any(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'select true';
CREATE OPERATOR ext.= (LEFTARG = text, RIGHTARG = text, FUNCTION = ext.text_eq_any);
CREATE SCHEMA ext_fn;
CREATE FUNCTION ext_fn.left(text, integer) RETURNS text LANGUAGE sql IMMUTABLE AS 'select $1';
CREATE FUNCTION ext_fn.right(text, integer) RETURNS text LANGUAGE sql IMMUTABLE AS 'select $1';
CREATE FUNCTION ext_fn.repeat(text, integer) RETURNS text LANGUAGE sql IMMUTABLE AS 'select $1';
CREATE FUNCTION ext_fn.substr(text, integer, integer) RETURNS text LANGUAGE sql IMMUTABLE AS 'select $1';
CREATE FUNCTION ext_fn.length(text) RETURNS integer LANGUAGE sql IMMUTABLE AS 'select 0';
CREATE FUNCTION ext_fn.char_length(text) RETURNS integer LANGUAGE sql IMMUTABLE AS 'select 0';
CREATE FUNCTION ext_fn.round(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'select $1';
CREATE FUNCTION ext_fn.lpad(text, integer, text) RETURNS text LANGUAGE sql IMMUTABLE AS 'select $1';
CREATE FUNCTION ext_fn.rpad(text, integer, text) RETURNS text LANGUAGE sql IMMUTABLE AS 'select $1';
GRANT USAGE ON SCHEMA ext, ext_fn TO pgveil_service;

-- C4: a large object another user made, and a table whose trigger notifies raw rows.
SELECT lo_from_bytea(55501, convert_to('SECRETX large object', 'UTF8'));
GRANT SELECT ON LARGE OBJECT 55501 TO pgveil_service;
CREATE TABLE public.feed (id int, body text);
CREATE FUNCTION public.feed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('feed', row_to_json(NEW)::text); RETURN NEW; END $$;
CREATE TRIGGER feed_t AFTER INSERT ON public.feed FOR EACH ROW EXECUTE FUNCTION public.feed_notify();

GRANT SELECT ON ALL TABLES IN SCHEMA crm, public TO pgveil_service;
GRANT INSERT ON public.feed TO pgveil_service;
`;

const basePolicy = String.raw`
layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow, writes: deny }
tables:
  crm.employees:
    ownership:
      - filter: "org_id = ${'$'}{user.org}"
  crm.tickets:
    ownership:
      - filter: "tag = ${'$'}{user.attributes.tag}"
    redaction:
      secret: { mask: custom, expr: "left(${'$'}{column}, 2) || ${'$'}{user.attributes.tag}" }
  'crm."we""ird"':
    ownership:
      - filter: 'org_id = ${'$'}{user.org} AND "Na me" IS NOT NULL'
    redaction:
      '"Na me"': { mask: partial, keepFirst: 1 }
      '"Sa""lary"': { mask: round, step: 1000 }
  crm.region_data:
    ownership:
      - filter: "region = ANY(${'$'}{user.attributes.regions})"
      - filter: "cc = ${'$'}{user.attributes.cost_center}"
  crm.projects:
    ownership:
      - filter: "org_id IN (SELECT m.org FROM public.org_members m WHERE m.member = ${'$'}{user.name})"
`;

/** A tightened policy (C3): names fully masked, tickets denied to acme. */
const tightenedPolicy = basePolicy
  .replace('  crm.employees:\n    ownership:\n', '  crm.employees:\n    redaction:\n      name: { mask: full }\n    ownership:\n')
  .replace('  crm.tickets:\n', '  crm.tickets:\n    access:\n      deny: { orgs: [acme] }\n');

const CANARIES: RegExp[] = [/secretx/i, /424242/];
const ALICE = 'alice@acme.com';
const BOB = 'bob@globex.com';

let h: Harness;
const open: pg.Client[] = [];

test.before(async () => {
  h = await startHarness({ extraSql, policyYaml: basePolicy, extraUsers, tlsMode: 'prefer' });
  if (!tightenedPolicy.includes('deny: { orgs: [acme] }') || !tightenedPolicy.includes('mask: full')) throw new Error('test setup: tightened policy');
  // An organization whose name carries a quote, and a user in it whose name carries one too.
  const file = join(h.dir, 'users.yaml');
  const text = readFileSync(file, 'utf8')
    .replace('organizations:\n', `organizations:\n  ${JSON.stringify(EVIL_ORG)}: {}\n`)
    .replace(/\n*$/, `\n  ${JSON.stringify(OSCAR)}:\n    org: ${JSON.stringify(EVIL_ORG)}\n    groups: [analysts]\n    password: "${createVerifier(OSCAR_PASSWORD)}"\n    passwordChangedAt: ${today()}\n`);
  writeFileSync(file, text);
  await sleep(350);
  if (!(await h.proxy.reload())) throw new Error('test setup: users.yaml with the quoted organization was rejected');
});
test.after(async () => { await h?.close(); });
test.after.each(async () => {
  for (const c of open.splice(0)) await c.end().catch(() => {});
});

// ── helpers (ac-support.ts, shared with a-reaching-rows.test.ts) ───────────

async function connect(user = ALICE, more: Record<string, unknown> = {}): Promise<Client> {
  return connectRecording(clientConfig(h, user, { password: pw(user), ...more }), open);
}

const oracle = oracles(CANARIES, [2, 9]);
const { assertClean, safe, refused, expectRows } = oracle;
const probe = (c: Client, make: (id: number) => string, ids?: [number, number]) => oracle.probe(c, make, undefined, ids);

async function rewrite(file: 'users.yaml' | 'policy.yaml', change: (text: string) => string): Promise<string> {
  const before = readFileSync(join(h.dir, file), 'utf8');
  const after = change(before);
  assert.is.not(after, before, `${file} changed`);
  await writeAndReload(h, file, after, `${file} reload accepted`);
  return before;
}

async function restore(file: 'users.yaml' | 'policy.yaml', text: string): Promise<void> {
  await writeAndReload(h, file, text, `${file} restored`);
}

async function psqlAs(user: string, sql: string, more = ''): Promise<RunResult> {
  const r = await psql(conninfo(h, user, more), sql, pw(user));
  assertClean(r.stdout + '\n' + r.stderr, `psql: ${sql}`);
  return r;
}

async function superuser<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await h.pg.connect('analytics');
  try { return await fn(c); } finally { await c.end(); }
}

// ── C1 role games ───────────────────────────────────────────────────────────

const roleGames = [
  'SET ROLE postgres',
  'SET ROLE pgveil_service',
  'SET ROLE NONE',
  'set role to default',
  'RESET ROLE',
  'SET LOCAL ROLE postgres',
  'SET "role" TO \'postgres\'',
  'SET SESSION AUTHORIZATION postgres',
  "SET SESSION AUTHORIZATION 'postgres'",
  'SET SESSION AUTHORIZATION DEFAULT',
  'RESET SESSION AUTHORIZATION',
  'SET SESSION ROLE postgres',
  "select set_config('role', 'postgres', false)",
  "select pg_catalog.set_config('session_authorization', 'postgres', false)",
  "select set_config('ROLE', 'postgres', true)",
  'SET ROLE postgres; select name from crm.employees',
  'begin; set local role postgres; select name from crm.employees; commit',
  'ALTER ROLE pgveil_service SUPERUSER',
  "ALTER ROLE pgveil_service SET role = 'postgres'",
  'GRANT postgres TO pgveil_service',
  'GRANT pg_read_all_data TO pgveil_service',
  'CREATE ROLE c1 LOGIN SUPERUSER',
];

test('C1 SET ROLE, SET SESSION AUTHORIZATION, RESET ROLE and their set_config / DDL spellings are refused', async () => {
  const alice = await connect();
  for (const sql of roleGames) await refused(alice, sql);
  await expectRows(alice, 'select current_user::text, session_user::text', [['pgveil_service', 'pgveil_service']]);
  await expectRows(alice, 'select name from crm.employees order by id', [['Ann'], ['Carl']]);
  await probe(alice, (id) => `select name from crm.employees where id = ${id}`);
});

test('C1 role games in psql (one message, several statements) are refused and leave the identity alone', async () => {
  const r = await psqlAs(ALICE, 'SET ROLE postgres; select name from crm.employees order by id');
  assert.is.not(r.status, 0);
  assert.is(r.stdout.trim(), '');
  const ok = await psqlAs(ALICE, 'select current_user');
  assert.is(ok.stdout.trim(), 'pgveil_service');
});

test('C1 startup parameters that set role or session_authorization are refused', async () => {
  const startups: Array<Record<string, string>> = [
    { role: 'postgres' }, { session_authorization: 'postgres' }, { options: '-c role=postgres' }, { options: '-crole=postgres' }, { ROLE: 'postgres' },
  ];
  for (const params of startups) {
    const c = await RawClient.connect(h.proxy.port);
    c.send(startupPacket({ user: ALICE, database: 'analytics', ...params }));
    const first = await c.message();
    assert.is(first?.type, 'E', `startup ${JSON.stringify(params)} is refused`);
    c.close();
  }
  const err = await new pg.Client(clientConfig(h, ALICE, { options: '-c role=postgres' })).connect().then(() => undefined, (e) => e as Error);
  assert.ok(err, 'node-postgres options=-c role=postgres is refused');
});

test('C1 the client sees its pgveil identity in ParameterStatus, never a way to become another user', async () => {
  const alice = await connect();
  const seen = await safe(alice, 'show session_authorization');
  assert.ok(!seen.error);
  await refused(alice, "SET SESSION AUTHORIZATION 'bob@globex.com'");
  await expectRows(alice, 'select name from crm.employees order by id', [['Ann'], ['Carl']]);
});

test('C1 SET application_name cannot make the upstream session look like another pgveil user', async () => {
  const alice = await connect();
  const before = rows(await safe(alice, "select current_setting('application_name')"))?.[0]?.[0];
  assert.match(String(before), /^pgveil:alice@acme\.com:/);
  const pid = rows(await safe(alice, 'select pg_backend_pid()'))?.[0]?.[0];
  await safe(alice, "SET application_name = 'pgveil:bob@globex.com:psql'");
  await safe(alice, "select set_config('application_name', 'pgveil:bob@globex.com:psql', false)");
  const upstream = await superuser(async (c) => (await c.query('select application_name from pg_stat_activity where pid = $1', [pid])).rows[0]?.application_name);
  assert.ok(String(upstream).startsWith('pgveil:alice@acme.com:'), `upstream application_name (pg_stat_activity, logs) names the real user, got ${JSON.stringify(upstream)}`);
});

// ── C2 injection through policy values ──────────────────────────────────────

for (const [who, tag] of Object.entries(TAGS)) {
  const user = `${who}@acme.com`;
  test(`C2 attribute ${JSON.stringify(tag)} is bound as one quoted literal (${who} sees exactly their ticket)`, async () => {
    const c = await connect(user);
    const expected = rowsForTag(tag);
    await expectRows(c, 'select id, title from crm.tickets order by id', expected.map(([id, title]) => [id, title]));
    // The custom mask binds the same attribute: `left(secret, 2) || tag`.
    await expectRows(c, 'select secret from crm.tickets order by id', expected.map(([, , secret]) => [`${secret.slice(0, 2)}${tag}`]));
    await expectRows(c, 'select count(*)::int from crm.tickets', [[expected.length]]);
    await probe(c, (id) => `select title from crm.tickets where id = ${id}`, [6, 9]);
  });
}

function rowsForTag(tag: string): Array<[number, string, string]> {
  const all: Array<[number, string, string, string]> = [
    [1, TAGS.mallory, 'mallory-ticket', 'm-secret-1'],
    [2, TAGS.eve, 'eve-ticket', 'e-secret-2'],
    [3, TAGS.trudy, 'trudy-ticket', 't-secret-3'],
    [4, TAGS.zed, 'zed-ticket', 'z-secret-4'],
  ];
  return all.filter((r) => r[1] === tag).map(([id, , title, secret]) => [id, title, secret]);
}

test('C2 a list attribute (= ANY) and a number attribute are bound as typed literals', async () => {
  const eve = await connect('eve@acme.com');
  await expectRows(eve, 'select id, val from crm.region_data order by id', [[1, 'eu-17'], [2, 'weird-17']]);
  await probe(eve, (id) => `select val from crm.region_data where id = ${id}`, [3, 9]);
  const alice = await connect();
  await expectRows(alice, 'select id from crm.region_data', []);
});

test('C2 the injected text never ran: crm.tickets still exists and holds every row', async () => {
  for (const who of Object.keys(TAGS)) {
    const c = await connect(`${who}@acme.com`);
    await safe(c, 'select * from crm.tickets');
    await safe(c, 'select secret, tag from crm.tickets where secret is not null');
  }
  const n = await superuser(async (c) => (await c.query('select count(*)::int as n from crm.tickets')).rows[0].n);
  assert.is(n, 6);
});

test('C2 users without the attribute get no rows (the filter fails closed), not every row', async () => {
  const alice = await connect();
  await expectRows(alice, 'select id from crm.tickets', []);
  await expectRows(alice, 'select count(*)::int from crm.tickets', [[0]]);
  const dave = await connect('dave@acme.com');
  await expectRows(dave, 'select id, title, secret from crm.tickets', [[5, 'team-a ticket', 'a-team-a']]);
});

test('C2 an organization name with a quote is bound as a literal (its user sees exactly its row)', async () => {
  const oscar = await connect(OSCAR);
  await expectRows(oscar, 'select id, name from crm.employees order by id', [[3, 'Oscar']], [...CANARIES, /Ann|Carl|111-22/]);
  await expectRows(oscar, 'select title from crm.projects', [], [...CANARIES, /acme-project/]);
  const alice = await connect();
  await expectRows(alice, 'select id, name from crm.employees order by id', [[1, 'Ann'], [4, 'Carl']], [...CANARIES, /Oscar|333-44/]);
  await probe(alice, (id) => `select name from crm.employees where id = ${id}`, [3, 9]);
});

test('C2 identifiers with quotes and spaces: quoted table and column names, filter and masks apply', async () => {
  const alice = await connect();
  const seen = await safe(alice, 'select org_id, "Na me", "Sa""lary" from crm."we""ird"');
  assert.ok(!seen.error, `${seen.error?.code} ${seen.error?.message}`);
  const got = rows(seen) ?? [];
  assert.is(got.length, 1);
  assert.is(got[0][0], 'acme');
  assert.is(got[0][1], 'AXXXXXXXXXXX');
  assert.is(Number(got[0][2]), 12000);
  await expectRows(alice, 'select count(*)::int from "crm"."we""ird" w where w."Na me" like \'A%\'', [[1]]);
  await probe(alice, (id) => `select "Na me" from crm."we""ird" where "Sa""lary" = ${id === 2 ? 424242 : 525252}`);
  await safe(alice, 'select * from crm."we""ird"');
  const r = await psqlAs(ALICE, 'COPY crm."we""ird" TO STDOUT');
  assert.is(r.stdout.trim().split('\t')[1], 'AXXXXXXXXXXX', r.stdout + r.stderr);
});

test('C2 an application_name with quotes is not SQL', async () => {
  const c = await connect(ALICE, { application_name: "x'; select pg_sleep(0); --" });
  const seen = await safe(c, "select current_setting('application_name')");
  assert.is(rows(seen)?.[0]?.[0], "pgveil:alice@acme.com:x'; select pg_sleep(0); --");
});

// ── C3 stale identity ───────────────────────────────────────────────────────

test('C3 disabling a user ends their open session and refuses new logins', async () => {
  const dave = await connect('dave@acme.com');
  const ended = new Promise<{ code?: string }>((resolve) => dave.on('error', (e) => resolve(e as { code?: string })));
  const before = await rewrite('users.yaml', (t) => t.replace(`${ORG_MARK('dave@acme.com')}\n`, `${ORG_MARK('dave@acme.com')}\n    disabled: true\n`));
  try {
    const err = await Promise.race([ended, sleep(3000).then(() => ({ code: 'still open' }))]);
    assert.is(err.code, '57P01', 'the open session was ended');
    const again = await connect('dave@acme.com').then(() => undefined, (e) => e as { code?: string });
    assert.is(again?.code, '28P01');
  } finally {
    await restore('users.yaml', before);
  }
});

test('C3 removing a user from users.yaml ends their open session', async () => {
  const frank = await connect('frank@acme.com');
  const ended = new Promise<{ code?: string }>((resolve) => frank.on('error', (e) => resolve(e as { code?: string })));
  const before = await rewrite('users.yaml', (t) => t.replace(/  frank@acme\.com:\n(?: {4}.*\n)+/, ''));
  try {
    const err = await Promise.race([ended, sleep(3000).then(() => ({ code: 'still open' }))]);
    assert.is(err.code, '57P01');
    const seen = await observe(frank, 'select name from crm.employees');
    assert.ok(seen.error, 'a removed user can run nothing');
  } finally {
    await restore('users.yaml', before);
  }
});

test('C3 changing a user\'s org applies to the next statement of an open session (also inside a transaction)', async () => {
  const dave = await connect('dave@acme.com');
  const acmeView = [[1, 'Ann'], [4, 'Carl']];
  await expectRows(dave, 'select id, name from crm.employees order by id', acmeView);
  await safe(dave, 'begin');
  await expectRows(dave, 'select id, name from crm.employees order by id', acmeView);
  const before = await rewrite('users.yaml', (t) => t.replace(`org: acme${ORG_MARK('dave@acme.com')}`, `org: globex${ORG_MARK('dave@acme.com')}`));
  try {
    const globexOnly = [/Ann|Carl|111-22|222-33/];
    await expectRows(dave, 'select id, name from crm.employees order by id', [[2, 'Gus SECRETX']], globexOnly);
    await safe(dave, 'commit', globexOnly);
    await expectRows(dave, 'select id, name from crm.employees order by id', [[2, 'Gus SECRETX']], globexOnly);
    await expectRows(dave, { text: 'select name from crm.employees where id = $1', values: [1] }, [], globexOnly);
  } finally {
    await restore('users.yaml', before);
  }
});

test('C3 after an org change, a WITH HOLD cursor and prepared statements made under the old identity are refused or follow the new one', async () => {
  const dave = await connect('dave@acme.com');
  await safe(dave, 'declare dc cursor with hold for select name from crm.employees order by id');
  await safe(dave, 'prepare dp as select name from crm.employees order by id');
  await expectRows(dave, { name: 'dn', text: 'select name from crm.employees order by id' }, [['Ann'], ['Carl']]);
  const before = await rewrite('users.yaml', (t) => t.replace(`org: acme${ORG_MARK('dave@acme.com')}`, `org: globex${ORG_MARK('dave@acme.com')}`));
  try {
    const oldView = [/Ann|Carl/];
    await safe(dave, 'fetch all from dc', oldView);
    await safe(dave, 'execute dp', oldView);
    await safe(dave, { name: 'dn', text: 'select name from crm.employees order by id' }, oldView);
  } finally {
    await restore('users.yaml', before);
  }
});

test('C3 changing a user\'s attribute applies to the next statement of an open session', async () => {
  const dave = await connect('dave@acme.com');
  await expectRows(dave, 'select id from crm.tickets', [[5]]);
  const before = await rewrite('users.yaml', (t) => t.replace('attributes: { tag: "team-a" }', 'attributes: { tag: "zzz-none" }'));
  try {
    await expectRows(dave, 'select id from crm.tickets', [], [/team-a/]);
  } finally {
    await restore('users.yaml', before);
  }
});

test('C3 a tightened policy applies to the next statement of every open session (also inside a transaction)', async () => {
  const alice = await connect();
  const carol = await connect('carol@acme.com');
  const mallory = await connect('mallory@acme.com');
  await expectRows(alice, 'select name from crm.employees order by id', [['Ann'], ['Carl']]);
  await safe(carol, 'begin');
  await expectRows(carol, 'select name from crm.employees order by id', [['Ann'], ['Carl']]);
  await expectRows(mallory, 'select id from crm.tickets', [[1]]);
  const before = await rewrite('policy.yaml', () => tightenedPolicy);
  try {
    const raw = [...CANARIES, /Ann|Carl/];
    await expectRows(alice, 'select name from crm.employees order by id', [['XXXX'], ['XXXX']], raw);
    await expectRows(carol, 'select name from crm.employees order by id', [['XXXX'], ['XXXX']], raw);
    await probe(carol, (id) => `select name from crm.employees where id = ${id}`);
    await safe(carol, 'commit');
    const denied = await refused(mallory, 'select id, title from crm.tickets', '42501');
    assert.not.match(denied.error?.message ?? '', /mallory|drop table/);
  } finally {
    await restore('policy.yaml', before);
  }
});

// ── C4 cross-user channels ──────────────────────────────────────────────────

test('C4 LISTEN, NOTIFY and pg_notify are refused; a trigger\'s pg_notify never reaches a client', async () => {
  const alice = await connect();
  const bob = await connect(BOB);
  for (const sql of ['LISTEN feed', 'listen "feed"', 'LISTEN feed; select 1', "NOTIFY feed, 'x'", 'notify feed',
    "select pg_notify('feed', 'x')", "select pg_catalog.pg_notify('feed', (select string_agg(name, ',') from crm.employees))",
    'select pg_listening_channels()']) {
    await refused(alice, sql);
  }
  await safe(alice, 'UNLISTEN *');
  // bob writes a row whose trigger notifies: nobody behind pgveil can be listening
  await safe(bob, "insert into public.feed values (1, 'SECRETX feed row')");
  await sleep(100);
  assert.equal(alice.notifications, []);
});

test('C4 advisory locks and pg_locks are refused', async () => {
  const alice = await connect();
  for (const sql of ['select pg_advisory_lock(42)', 'select pg_try_advisory_lock(42)', 'select pg_advisory_xact_lock(1, 2)',
    'select pg_advisory_lock_shared(42)', 'select pg_try_advisory_xact_lock_shared(42)', 'select pg_advisory_unlock_all()',
    'select * from pg_locks', "select objid from pg_catalog.pg_locks where locktype = 'advisory'"]) {
    await refused(alice, sql);
  }
});

test('C4 large objects (another user\'s and new ones) are refused', async () => {
  const alice = await connect();
  for (const sql of ['select lo_get(55501)', 'select lo_get(55501, 0, 100)', "select convert_from(lo_get(55501), 'UTF8')",
    'select loread(lo_open(55501, 262144), 100)', 'select lo_create(0)', 'select lo_creat(-1)', "select lo_from_bytea(0, 'x')",
    'select lo_unlink(55501)', 'select * from pg_largeobject_metadata', 'select * from pg_catalog.pg_largeobject']) {
    await refused(alice, sql);
  }
  for (const cmd of ['\\lo_list', '\\lo_export 55501 /tmp/pgveil-c4-lo']) {
    const r = await psqlAs(ALICE, cmd);
    assert.is.not(r.status, 0, `${cmd} fails`);
  }
  const still = await superuser(async (c) => (await c.query('select count(*)::int as n from pg_largeobject_metadata where oid = 55501')).rows[0].n);
  assert.is(still, 1);
});

test('C4 signalling another user\'s upstream backend is refused', async () => {
  const alice = await connect();
  const bob = await connect(BOB);
  const bobPid = rows(await safe(bob, 'select pg_backend_pid()'))?.[0]?.[0];
  for (const sql of [`select pg_terminate_backend(${bobPid})`, `select pg_cancel_backend(${bobPid})`, `select pg_catalog.pg_terminate_backend(${bobPid}, 1000)`]) {
    await refused(alice, sql);
  }
  await expectRows(bob, 'select 1', [[1]]);
});

test('C4 temp tables are refused', async () => {
  const alice = await connect();
  for (const sql of ['create temp table t4 (x int)', 'create temporary table t4 as select 1', 'select 1 into temp t4',
    'create temp view v4 as select 1', 'create unlogged table t4 (x int)']) {
    await refused(alice, sql);
  }
});

test('C4 prepared statements, cursors and session settings do not cross sessions', async () => {
  const alice = await connect();
  const bob = await connect(BOB);
  await safe(alice, 'prepare cross_p as select name from crm.employees');
  await safe(alice, 'declare cross_c cursor with hold for select name from crm.employees');
  await safe(alice, "set application_name = 'alice-app'");
  const e1 = await safe(bob, 'execute cross_p');
  assert.ok(e1.error, 'bob cannot execute alice\'s prepared statement');
  const e2 = await safe(bob, 'fetch all from cross_c');
  assert.ok(e2.error, 'bob cannot fetch alice\'s cursor');
  const pids = [rows(await safe(alice, 'select pg_backend_pid()'))?.[0]?.[0], rows(await safe(bob, 'select pg_backend_pid()'))?.[0]?.[0]];
  assert.is.not(pids[0], pids[1], 'one upstream connection per session');
  await refused(alice, 'select * from pg_prepared_statements');
  await refused(alice, 'select * from pg_cursors');
  // A new session after alice leaves starts clean.
  await alice.end();
  const again = await connect();
  const e3 = await safe(again, 'execute cross_p');
  assert.ok(e3.error);
  assert.is.not(rows(await safe(again, 'show application_name'))?.[0]?.[0], 'alice-app');
});

// ── C5 shadowing what pgveil injects ────────────────────────────────────────

test('C5 the filter\'s table (org_members) serves: each user sees their org\'s projects', async () => {
  const alice = await connect();
  await expectRows(alice, 'select title from crm.projects', [['acme-project']]);
  await probe(alice, (id) => `select title from crm.projects where id = ${id}`);
});

test('C5 a temp table or view named like a table a filter reads is refused', async () => {
  const alice = await connect();
  for (const sql of [
    'create temp table org_members (member text, org text)',
    "create temp view org_members as select 'alice@acme.com'::text as member, 'globex'::text as org",
    "create temp table org_members as select 'alice@acme.com'::text as member, 'globex'::text as org",
    "select 'alice@acme.com'::text as member, 'globex'::text as org into temp org_members",
  ]) await refused(alice, sql);
  await safe(alice, 'SET search_path = pg_temp, public');
  await expectRows(alice, 'select title from crm.projects', [['acme-project']]);
});

test('C5 set_config(\'pgveil.…\') and SET pgveil.… are refused and change nothing', async () => {
  const alice = await connect();
  for (const sql of ["select set_config('pgveil.org', 'globex', false)", "select set_config('pgveil.user', 'bob@globex.com', true)",
    "SET pgveil.org = 'globex'", "SET LOCAL pgveil.scramble_key = 'x'", "select set_config('pgveil.x', 'y', false)"]) {
    await refused(alice, sql);
  }
  await expectRows(alice, 'select name from crm.employees order by id', [['Ann'], ['Carl']]);
});

test('C5 a filter with an unqualified table name is rejected at load; the qualified one is immune to search_path', async () => {
  // Unqualified, `org_members` would resolve to crm.org_members (where alice is listed under globex)
  // once a user runs SET search_path = crm, public. pgveil rejects such a policy and keeps the old one.
  const path = join(h.dir, 'policy.yaml');
  const good = readFileSync(path, 'utf8');
  writeFileSync(path, good.replace('FROM public.org_members m', 'FROM org_members m'));
  assert.is(await h.proxy.reload(), false, 'a policy with an unqualified table in a filter is rejected');
  writeFileSync(path, good);
  assert.ok(await h.proxy.reload(), 'the qualified policy loads again');
  const alice = await connect();
  await safe(alice, 'SET search_path = crm, public');
  await safe(alice, 'select title from crm.projects');
  await probe(alice, (id) => `select title from crm.projects where id = ${id}`);
});

test('C5 a changed search_path does not make a filter\'s operator resolve elsewhere', async () => {
  // ext has an `=` for (text, text) that is always true; with search_path = ext, pg_catalog the
  // filter `org_id = 'acme'` would resolve to it.
  for (const set of ['SET search_path = ext, pg_catalog', "select set_config('search_path', 'ext, pg_catalog, public', false)"]) {
    const alice = await connect();
    await safe(alice, set);
    await safe(alice, 'select name from crm.employees');
    await probe(alice, (id) => `select name from crm.employees where id = ${id}`);
  }
});

test('C5 the masks pgveil emits are schema-qualified: functions named like pg_catalog\'s earlier on the path change nothing', async () => {
  const alice = await connect();
  await safe(alice, 'SET search_path = ext_fn, pg_catalog, public');
  const seen = await safe(alice, 'select "Na me", "Sa""lary" from crm."we""ird"', [...CANARIES, /Alpha Person|12345/]);
  if (!seen.error) {
    assert.is(rows(seen)?.[0]?.[0], 'AXXXXXXXXXXX');
    assert.is(Number(rows(seen)?.[0]?.[1]), 12000);
  }
});

test('C5 a changed search_path does not make a custom mask\'s function resolve elsewhere', async () => {
  // The custom mask is `left(secret, 2) || tag`; ext_fn.left returns its argument whole.
  const mallory = await connect('mallory@acme.com');
  await expectRows(mallory, 'select secret from crm.tickets', [[`m-${TAGS.mallory}`]]);
  await safe(mallory, 'SET search_path = ext_fn, pg_catalog, public');
  await safe(mallory, 'select secret from crm.tickets', [...CANARIES, /m-secret-1/]);
});

test.run();
