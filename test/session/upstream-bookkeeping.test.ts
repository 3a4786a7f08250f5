// pgveil's record of upstream prepared statements and portals (threats A8,
// C3 in docs/threat-model.md) may change only on upstream's confirmation: a Close, DEALLOCATE or
// CLOSE that upstream skipped or refused leaves the object upstream, a Bind
// that upstream refused leaves the old portal, and upstream truncates names
// to 63 bytes (NAMEDATALEN - 1). In every case an object made under an older
// policy (here: before alice lost access to crm.employees) must stay
// unusable, never return its rows. Also (on every major): a statement
// prepared under one search_path is re-resolved by upstream under another.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { employeesPolicy, policyDefaults, startHarness, passwords, type Harness } from '../helpers/harness.js';
import { RawClient, cstr, frame, int16, int32, msg, sqlstate, type BackendMessage } from '../helpers/raw-client.js';
import { writeAndReload } from '../threats/ac-support.js';

const extraSql = `
INSERT INTO crm.employees VALUES (3, 'acme', 'Cat', '333-44-5555', 70000);
CREATE TABLE public.employees (id int, org_id text, name text, ssn text, salary numeric);
INSERT INTO public.employees VALUES (99, 'globex', 'Decoy', '999-99-9999', 1);
GRANT SELECT ON public.employees TO pgveil_service;
`;

const basePolicy = policyDefaults + employeesPolicy;
/** alice (acme) loses access to crm.employees. */
const denyPolicy = basePolicy.replace('  crm.employees:\n', '  crm.employees:\n    access:\n      deny: { orgs: [acme] }\n');

/** Anything of crm.employees: once alice is denied, none of it may reach her. */
const CRM_ANY = [/Ann/, /Cat/, /Gus/, /3333/, /5555/, /6666/];
/** Raw crm values (whatever the policy). */
const CRM_RAW = [/Gus/, /111-22-3333/, /333-44-5555/, /444-55-6666/];
const Q = 'select name, ssn from crm.employees order by id';

let h: Harness;
test.before(async () => {
  h = await startHarness({ extraSql, policyYaml: basePolicy, tlsMode: 'prefer' });
  if (!denyPolicy.includes('deny: { orgs: [acme] }')) throw new Error('test setup: deny policy not built');
});
test.after(async () => { await h?.close(); });

async function login(): Promise<RawClient> {
  const c = await RawClient.connect(h.proxy.port);
  await c.login('alice@acme.com', passwords['alice@acme.com']);
  return c;
}

async function setPolicy(yaml: string): Promise<void> {
  await writeAndReload(h, 'policy.yaml', yaml, 'policy reload accepted');
}

/** Runs `fn` under the deny policy, then restores the base policy. */
async function denied(fn: () => Promise<void>): Promise<void> {
  await setPolicy(denyPolicy);
  try { await fn(); } finally { await setPolicy(basePolicy); }
}

const types = (ms: BackendMessage[]) => ms.map((m) => m.type).join('');
const text = (ms: BackendMessage[]) => ms.map((m) => `${m.type}:${m.body.toString('latin1').replace(/[\0-\x1f]/g, '|')}`).join('\n');
const close = (kind: 'S' | 'P', name: string) => frame('C', Buffer.concat([Buffer.from(kind), cstr(name)]));
function bindText(portal: string, stmt: string, values: string[]): Buffer {
  return frame('B', Buffer.concat([cstr(portal), cstr(stmt), int16(0), int16(values.length),
    ...values.map((v) => Buffer.concat([int32(Buffer.byteLength(v)), Buffer.from(v)])), int16(0)]));
}

async function exchange(c: RawClient, ...frames: Buffer[]): Promise<BackendMessage[]> {
  c.send(...frames);
  return c.untilReady();
}

/** The use of a stale object: an error, no DataRow, nothing of crm.employees. */
function assertRefused(replies: BackendMessage[], label: string, forbidden = CRM_ANY): void {
  const all = text(replies);
  for (const re of forbidden) assert.not.match(all, re, `LEAK: ${label}\n${all}`);
  assert.not.ok(replies.some((m) => m.type === 'D'), `LEAK (rows): ${label}\n${all}`);
  assert.ok(replies.some((m) => m.type === 'E'), `expected a refusal: ${label}\n${all}`);
}

/** The SQLSTATEs of every ErrorResponse. */
const codes = (ms: BackendMessage[]) => ms.filter((m) => m.type === 'E').map((m) => sqlstate(m));

// ── a. a Close / DEALLOCATE / CLOSE that upstream skipped ───────────────────

const failures: Array<[string, Buffer[], string]> = [
  ['Execute of select 1/0', [msg.parse('', 'select 1/0'), msg.bind('', ''), msg.execute('')], '22012'],
  ['Bind of select $1::int with \'x\'', [msg.parse('', 'select $1::int'), bindText('', '', ['x']), msg.execute('')], '22P02'],
  ['a statement pgveil refuses (pg_statistic)', [msg.parse('', 'select * from pg_catalog.pg_statistic'), msg.bind('', ''), msg.execute('')], ''],
];

for (const [name, failing, code] of failures) {
  test(`A8 C3 a protocol Close of a statement that upstream skipped (after ${name}) leaves it stale: Bind is refused`, async () => {
    const c = await login();
    assert.is(types(await exchange(c, msg.parse('s1', Q), msg.sync())), '1Z');
    await denied(async () => {
      const replies = await exchange(c, ...failing, close('S', 's1'), msg.sync());
      assert.not.ok(replies.some((m) => m.type === '3'), `upstream skips the Close after the error: ${types(replies)}`);
      if (code) assert.equal(codes(replies), [code], 'upstream\'s own error');
      assertRefused(await exchange(c, msg.bind('', 's1'), msg.execute(''), msg.sync()), `Bind s1 after a skipped Close (${name})`);
      assertRefused(await exchange(c, msg.query('EXECUTE s1')), `EXECUTE s1 after a skipped Close (${name})`);
    });
    c.close();
  });
}

test('A8 C3 a protocol Close of a WITH HOLD cursor\'s portal that upstream skipped leaves it stale: Execute and FETCH are refused', async () => {
  const c = await login();
  assert.not.ok(codes(await exchange(c, msg.query(`DECLARE h1 CURSOR WITH HOLD FOR ${Q}`))).length);
  await denied(async () => {
    const replies = await exchange(c, msg.parse('', 'select 1/0'), msg.bind('', ''), msg.execute(''), close('P', 'h1'), msg.sync());
    assert.equal(codes(replies), ['22012']);
    assertRefused(await exchange(c, msg.execute('h1'), msg.sync()), 'Execute h1 after a skipped Close');
    assertRefused(await exchange(c, msg.query('FETCH ALL FROM h1')), 'FETCH h1 after a skipped Close');
  });
  c.close();
});

test('A8 C3 DEALLOCATE after a failing statement in the same Query never runs: EXECUTE is refused', async () => {
  const c = await login();
  await exchange(c, msg.query(`PREPARE s2 AS ${Q}`));
  await denied(async () => {
    assert.equal(codes(await exchange(c, msg.query('select 1/0; DEALLOCATE s2'))), ['22012']);
    assertRefused(await exchange(c, msg.query('EXECUTE s2')), 'EXECUTE s2 after a DEALLOCATE that did not run');
    assertRefused(await exchange(c, msg.bind('', 's2'), msg.execute(''), msg.sync()), 'Bind s2 after a DEALLOCATE that did not run');
  });
  c.close();
});

test('A8 C3 DEALLOCATE ALL after a failing statement never runs: EXECUTE is refused', async () => {
  const c = await login();
  await exchange(c, msg.query(`PREPARE s3 AS ${Q}`));
  await denied(async () => {
    assert.equal(codes(await exchange(c, msg.query('select 1/0; DEALLOCATE ALL'))), ['22012']);
    assertRefused(await exchange(c, msg.query('EXECUTE s3')), 'EXECUTE s3 after a DEALLOCATE ALL that did not run');
  });
  c.close();
});

test('A8 C3 CLOSE of a WITH HOLD cursor after a failing statement never runs: FETCH is refused', async () => {
  const c = await login();
  await exchange(c, msg.query(`DECLARE h2 CURSOR WITH HOLD FOR ${Q}`));
  await denied(async () => {
    assert.equal(codes(await exchange(c, msg.query('select 1/0; CLOSE h2'))), ['22012']);
    assertRefused(await exchange(c, msg.query('FETCH ALL FROM h2')), 'FETCH h2 after a CLOSE that did not run');
    assertRefused(await exchange(c, msg.execute('h2'), msg.sync()), 'Execute h2 after a CLOSE that did not run');
  });
  c.close();
});

test('A8 C3 CLOSE ALL inside a transaction that fails before it: the WITH HOLD cursor stays stale', async () => {
  const c = await login();
  await exchange(c, msg.query(`DECLARE h3 CURSOR WITH HOLD FOR ${Q}`));
  await denied(async () => {
    await exchange(c, msg.query('BEGIN'));
    assert.equal(codes(await exchange(c, msg.query('select 1/0'))), ['22012']);
    assert.is(codes(await exchange(c, msg.query('CLOSE ALL')))[0], '25P02', 'ignored in the failed block');
    await exchange(c, msg.query('ROLLBACK'));
    assertRefused(await exchange(c, msg.query('FETCH ALL FROM h3')), 'FETCH h3 after a CLOSE ALL that did not run');
  });
  c.close();
});

// ── b. a Bind that upstream refused ─────────────────────────────────────────

test('A8 C3 a Bind to the name of an open WITH HOLD cursor is refused upstream (42P03); the old cursor stays stale', async () => {
  const c = await login();
  await exchange(c, msg.query(`DECLARE x1 CURSOR WITH HOLD FOR ${Q}`));
  await denied(async () => {
    const replies = await exchange(c, msg.parse('', 'select 42'), msg.bind('x1', ''), msg.execute('x1'), msg.sync());
    assert.not.ok(replies.some((m) => m.type === '2'), `upstream refuses the Bind: ${types(replies)}`);
    assert.equal(codes(replies), ['42P03'], 'cursor "x1" already exists');
    assertRefused(await exchange(c, msg.execute('x1'), msg.sync()), 'Execute x1 after a refused Bind');
    assertRefused(await exchange(c, msg.query('FETCH ALL FROM x1')), 'FETCH x1 after a refused Bind');
  });
  c.close();
});

test('A8 C3 a Bind to the name of an open cursor in a transaction is refused upstream; after ROLLBACK TO SAVEPOINT the old cursor stays stale', async () => {
  const c = await login();
  await exchange(c, msg.query('BEGIN'));
  await exchange(c, msg.query(`DECLARE x2 CURSOR FOR ${Q}`));
  await exchange(c, msg.query('SAVEPOINT sp'));
  await denied(async () => {
    const replies = await exchange(c, msg.parse('', 'select 42'), msg.bind('x2', ''), msg.sync());
    assert.equal(codes(replies), ['42P03']);
    assert.not.ok(codes(await exchange(c, msg.query('ROLLBACK TO SAVEPOINT sp'))).length, 'the block is usable again');
    assertRefused(await exchange(c, msg.execute('x2'), msg.sync()), 'Execute x2 after a refused Bind');
  });
  await exchange(c, msg.query('ROLLBACK'));
  c.close();
});

test('A8 C3 a Parse refused upstream (42P05, the name exists) keeps the old statement stale', async () => {
  const c = await login();
  await exchange(c, msg.query(`PREPARE s4 AS ${Q}`));
  await denied(async () => {
    const replies = await exchange(c, msg.parse('s4', 'select 1'), msg.sync());
    assert.equal(codes(replies), ['42P05']);
    assertRefused(await exchange(c, msg.bind('', 's4'), msg.execute(''), msg.sync()), 'Bind s4 after a refused re-Parse');
  });
  c.close();
});

// ── c. names longer than 63 bytes ───────────────────────────────────────────

const stem = 'n'.repeat(63);
const LONG_A = `${stem}A`; // 64 bytes
const LONG_B = `${stem}BBBBBBB`; // 70 bytes, the same first 63

test('upstream truncates protocol statement names to 63 bytes (fixture, straight to upstream)', async () => {
  const direct = await h.pg.connect('analytics');
  try {
    await direct.query({ name: LONG_A, text: 'select 1 as one' });
    const r = await direct.query('select name from pg_prepared_statements');
    assert.equal(r.rows.map((x) => x.name), [stem], 'stored under the first 63 bytes');
  } finally {
    await direct.end();
  }
});

test('A8 C3 a protocol statement with a 64-byte name, then a 70-byte name with the same first 63 bytes: Bind is refused after a reload', async () => {
  const c = await login();
  assert.is(types(await exchange(c, msg.parse(LONG_A, Q), msg.sync())), '1Z');
  await denied(async () => {
    assertRefused(await exchange(c, msg.bind('', LONG_B), msg.execute(''), msg.sync()), 'Bind of the 70-byte name');
    assertRefused(await exchange(c, msg.bind('', stem), msg.execute(''), msg.sync()), 'Bind of the 63-byte name');
    assertRefused(await exchange(c, msg.query(`EXECUTE ${LONG_B}`)), 'EXECUTE of the 70-byte name');
  });
  c.close();
});

test('A8 C3 PREPARE with a 64-byte name, then EXECUTE / Bind with a 70-byte name sharing 63 bytes: refused after a reload', async () => {
  const c = await login();
  assert.not.ok(codes(await exchange(c, msg.query(`PREPARE ${LONG_A} AS ${Q}`))).length);
  await denied(async () => {
    assertRefused(await exchange(c, msg.query(`EXECUTE ${LONG_B}`)), 'EXECUTE of the 70-byte name');
    assertRefused(await exchange(c, msg.query(`EXECUTE "${LONG_B}"`)), 'EXECUTE of the quoted 70-byte name');
    assertRefused(await exchange(c, msg.bind('', LONG_B), msg.execute(''), msg.sync()), 'Bind of the 70-byte name');
    assertRefused(await exchange(c, msg.bind('', LONG_A), msg.execute(''), msg.sync()), 'Bind of the 64-byte name');
  });
  c.close();
});

test('A8 C3 a WITH HOLD cursor with a 64-byte name, then Execute / FETCH of a 70-byte name sharing 63 bytes: refused after a reload', async () => {
  const c = await login();
  assert.not.ok(codes(await exchange(c, msg.query(`DECLARE ${LONG_A} CURSOR WITH HOLD FOR ${Q}`))).length);
  await denied(async () => {
    assertRefused(await exchange(c, msg.execute(LONG_B), msg.sync()), 'Execute of the 70-byte portal name');
    assertRefused(await exchange(c, msg.query(`FETCH ALL FROM ${LONG_B}`)), 'FETCH from the 70-byte name');
  });
  c.close();
});

test('A8 C3 a DEALLOCATE of a 70-byte name runs upstream on the 63-byte statement: a later statement of that name is the new one', async () => {
  const c = await login();
  await exchange(c, msg.query(`PREPARE ${LONG_A} AS ${Q}`));
  await denied(async () => {
    assert.not.ok(codes(await exchange(c, msg.query(`DEALLOCATE ${LONG_B}`))).length, 'upstream drops the truncated name');
    assert.not.ok(codes(await exchange(c, msg.parse(LONG_A, "select 'fresh' as f"), msg.sync())).length, 'the name is free again');
    const replies = await exchange(c, msg.bind('', LONG_B), msg.execute(''), msg.sync());
    assert.match(text(replies), /fresh/, `the new statement runs: ${text(replies)}`);
  });
  c.close();
});

// ── d. a prepared statement re-resolved under a new search_path ─────────────

test('A8 A2 PREPARE under search_path public, SET search_path = crm, public, EXECUTE: refused or filtered and masked, never raw', async () => {
  const c = await login();
  await exchange(c, msg.query('SET search_path = public'));
  await exchange(c, msg.query('PREPARE pd AS select name, ssn from employees order by id'));
  assert.match(text(await exchange(c, msg.query('EXECUTE pd'))), /Decoy/, 'fixture: resolved to the decoy');
  await exchange(c, msg.query('SET search_path = crm, public'));
  for (const replies of [await exchange(c, msg.query('EXECUTE pd')), await exchange(c, msg.bind('', 'pd'), msg.execute(''), msg.sync())]) {
    const all = text(replies);
    for (const re of CRM_RAW) assert.not.match(all, re, `LEAK: EXECUTE pd under the new path\n${all}`);
    if (!replies.some((m) => m.type === 'E')) assert.match(all, /XXXXXXX3333/, `rows, then only masked ones: ${all}`);
  }
  c.close();
});

test('A8 A2 a protocol statement parsed under SET LOCAL search_path = public, bound after COMMIT restored crm: never raw', async () => {
  const c = await login();
  await exchange(c, msg.query('SET search_path = crm, public'));
  await exchange(c, msg.query('BEGIN'));
  await exchange(c, msg.query('SET LOCAL search_path = public'));
  assert.is(types(await exchange(c, msg.parse('pl', 'select name, ssn from employees order by id'), msg.sync())), '1Z');
  await exchange(c, msg.query('COMMIT'));
  for (const replies of [await exchange(c, msg.bind('', 'pl'), msg.execute(''), msg.sync()), await exchange(c, msg.query('EXECUTE pl'))]) {
    const all = text(replies);
    for (const re of CRM_RAW) assert.not.match(all, re, `LEAK: statement pl under the restored path\n${all}`);
  }
  c.close();
});

test('A8 A2 a statement prepared inside a transaction whose SET search_path is rolled back: never raw', async () => {
  const c = await login();
  await exchange(c, msg.query('SET search_path = crm, public'));
  await exchange(c, msg.query('BEGIN'));
  await exchange(c, msg.query('SET search_path = public'));
  await exchange(c, msg.query('PREPARE pr AS select name, ssn from employees order by id'));
  await exchange(c, msg.query('ROLLBACK'));
  const all = text(await exchange(c, msg.query('EXECUTE pr')));
  for (const re of CRM_RAW) assert.not.match(all, re, `LEAK: EXECUTE pr after the ROLLBACK restored crm\n${all}`);
  c.close();
});

test('A8 C3 sanity: a current statement still works after an unrelated failed pipeline', async () => {
  const c = await login();
  await exchange(c, msg.parse('ok1', Q), msg.sync());
  await exchange(c, msg.parse('', 'select 1/0'), msg.bind('', ''), msg.execute(''), close('S', 'ok1'), msg.sync());
  const replies = await exchange(c, msg.bind('', 'ok1'), msg.execute(''), msg.sync());
  assert.is(types(replies), '2DDCZ', `the statement upstream kept runs: ${text(replies)}`);
  assert.match(text(replies), /XXXXXXX3333/);
  c.close();
});

test.run();
