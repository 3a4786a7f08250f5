// The audit records a single pgveil writes, read back from a real audit file:
// connect and auth (each failure with its real reason, while the client sees
// one message for all), lockouts, statement records (fingerprint, relations,
// decision, refusal code and reason, rows, duration; one per Execute in the
// extended protocol), policy reloads, and the statement metrics beside them.
// Last, the whole file is searched for every secret and for the rewritten SQL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, clientConfig, connectClient, passwords, employeesPolicy, today, type Harness } from '../helpers/harness.js';
import { UpstreamLog } from '../helpers/upstream-log.js';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { waitForAudit, ofEvent, type AuditLine } from './audit-file.js';

let h: Harness;
let auditFile: string;
const upstreamLog = new UpstreamLog();
const davePassword = 'Dave-pass-0004';
const erinPassword = 'Erin-pass-0005';
const frankPassword = 'Frank-pass-0006';
const wrongPassword = 'Not-Alices-9999';
/** What upstream really ran for the rewritten statements (must never reach the audit file). */
const rewrittenSeen: string[] = [];

test.before(async () => {
  h = await startHarness({
    tlsMode: 'prefer',
    lockout: { maxFailures: 3, windowSeconds: 60, lockSeconds: 60 },
    // High enough for the tests before the address lockout test, which then reaches it.
    addressLockout: { maxFailures: 12, windowSeconds: 300, lockSeconds: 300 },
    admin: true,
    clientCa: true,
    policyYaml: employeesPolicy,
    postgresSettings: upstreamLog.settings,
    onPostgresLog: upstreamLog.onLog,
    extraUsers: [
      `  dave@acme.com:\n    org: acme\n    groups: [analysts]\n    password: "${createVerifier(davePassword)}"\n    passwordChangedAt: ${today()}\n    disabled: true\n`,
      `  erin@acme.com:\n    org: acme\n    groups: [analysts]\n    password: "${createVerifier(erinPassword)}"\n    passwordChangedAt: 2020-01-01\n`,
      `  frank@acme.com:\n    org: acme\n    groups: [analysts]\n    password: "${createVerifier(frankPassword)}"\n    passwordChangedAt: ${today()}\n    clientCert: required\n`,
    ].join(''),
    extraConfig: 'audit: { file: logs/audit.jsonl, statements: fingerprint, onFailure: block }',
  });
  auditFile = join(h.dir, 'logs/audit.jsonl');
});
test.after(async () => { await h?.close(); });

const plain = (user: string, extra: Record<string, unknown> = {}) => ({ ...clientConfig(h, user), ssl: false, ...extra });

const connect = (user: string, extra: Record<string, unknown> = {}) => connectClient(h, h.proxy.port, user, extra);

async function loginError(user: string, password: string): Promise<{ code?: string; message: string }> {
  const c = new pg.Client(plain(user, { password }));
  c.on('error', () => {});
  return c.connect().then(async () => { await c.end(); return { message: 'connected' }; }, (e: { code?: string; message: string }) => e);
}

async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${h.proxy.adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (!labels && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('connect and auth records: success, and each failure with its reason and the client address; clients see one message', async () => {
  const tlsClient = await connect('alice@acme.com', { ssl: { ca: readFileSync(h.caFile, 'utf8') } });
  await tlsClient.end();
  const errors = [
    await loginError('alice@acme.com', wrongPassword),
    await loginError('nobody@acme.com', 'Whatever-123'),
    await loginError('dave@acme.com', davePassword),
  ];
  for (const e of errors) assert.match(e.message, /^password authentication failed for user "/);
  assert.equal(errors.map((e) => e.code), ['28P01', '28P01', '28P01']);
  // Told only after a right password: an expired one, and a missing client certificate.
  assert.is((await loginError('erin@acme.com', erinPassword)).code, '28P01');
  const noCert = await loginError('frank@acme.com', frankPassword);
  assert.match(noCert.message, /certificate authentication failed/);

  const records = await waitForAudit(auditFile, (r) => ofEvent(r, 'auth', { user: 'frank@acme.com' }).length === 1);
  const ok = ofEvent(records, 'auth', { user: 'alice@acme.com', outcome: 'success' });
  assert.is(ok.length, 1);
  assert.is(ok[0].address, '127.0.0.1');
  assert.match(String(ok[0].method), /^scram-sha-256(-plus)?$/);
  const connected = ofEvent(records, 'connect', { session: ok[0].session });
  assert.is(connected.length, 1, 'the connect record names the same session');
  assert.is(connected[0].tls, true);
  assert.is(connected[0].address, '127.0.0.1');
  assert.match(String(ok[0].session), /^0-[0-9a-z]+$/);

  const reasons = ofEvent(records, 'auth', { outcome: 'failure' }).map((r) => [r.user, r.reason, r.address]);
  assert.equal(reasons, [
    ['alice@acme.com', 'wrong_password', '127.0.0.1'],
    ['nobody@acme.com', 'unknown_user', '127.0.0.1'],
    ['dave@acme.com', 'disabled', '127.0.0.1'],
    ['erin@acme.com', 'expired', '127.0.0.1'],
    ['frank@acme.com', 'client_certificate', '127.0.0.1'],
  ]);
  const sessions = new Set(ofEvent(records, 'connect').map((r) => r.session));
  assert.is(sessions.size, ofEvent(records, 'connect').length, 'every connection has its own session id');
});

test('a lockout is recorded with its scope and end; the locked user\'s right password then fails as locked', async () => {
  for (let i = 0; i < 3; i++) await loginError('carol@acme.com', `Wrong-carol-${i}`);
  const refused = await loginError('carol@acme.com', passwords['carol@acme.com']);
  assert.is(refused.code, '28P01');
  const records = await waitForAudit(auditFile, (r) => ofEvent(r, 'auth', { user: 'carol@acme.com', reason: 'locked' }).length === 1);
  const lock = ofEvent(records, 'lockout', { key: 'carol@acme.com' });
  assert.is(lock.length, 1);
  assert.is(lock[0].scope, 'user');
  assert.ok(Date.parse(String(lock[0].until)) > Date.now(), 'the lock ends in the future');
  assert.is(ofEvent(records, 'auth', { user: 'carol@acme.com', reason: 'wrong_password' }).length, 3);
});

test('statement records: one per Query and per Execute, with fingerprint, relations, decision, rows and duration, never the text', async () => {
  const c = await connect('alice@acme.com');
  const refusalsBefore = await metric('pgveil_refusals_total', '{reason="write_denied"}');
  const syntaxBefore = await metric('pgveil_refusals_total', '{reason="syntax_error"}');
  const timedBefore = await metric('pgveil_statement_seconds_count');
  const upstreamBefore = await metric('pgveil_upstream_seconds_count');

  upstreamLog.clear();
  assert.is((await c.query('select name, ssn from crm.employees where id = 1')).rowCount, 1);
  rewrittenSeen.push(await upstreamLog.last('org_id'));
  assert.is((await c.query('select name, ssn from crm.employees where id = 2')).rowCount, 0, 'the other org\'s row is filtered out');
  assert.is((await c.query('select 40 + 2 as answer')).rows[0].answer, 42);
  const write = await c.query('delete from crm.employees').then(() => undefined, (e: { code?: string; message: string }) => e);
  assert.is(write?.code, '42501');
  const syntax = await c.query('selec 1').then(() => undefined, (e: { code?: string }) => e);
  assert.is(syntax?.code, '42601');
  // Refused inside a transaction: a stand-in carries the error, so the record is written at the cycle's end.
  await c.query('begin');
  const inTx = await c.query('delete from crm.employees where id = 1').then(() => undefined, (e: { code?: string }) => e);
  assert.is(inTx?.code, '42501');
  await c.query('rollback');
  // Extended protocol: Parse/Bind/Execute/Sync, one record for the Execute.
  upstreamLog.clear();
  const extended = await c.query({ text: 'select name from crm.employees where id = $1', values: [1] });
  assert.is(extended.rowCount, 1);
  rewrittenSeen.push(await upstreamLog.last('org_id'));
  await c.end();

  const records = await waitForAudit(auditFile, (r) => ofEvent(r, 'statement', { decision: 'rewritten' }).length >= 3);
  const mine = ofEvent(records, 'statement', { user: 'alice@acme.com' });
  const byDecision = (d: string) => mine.filter((r) => r.decision === d);
  const rewritten = byDecision('rewritten');
  assert.is(rewritten.length, 3);
  const [byId1, byId2, bound] = rewritten;
  assert.is(byId1.fingerprint, byId2.fingerprint, 'texts differing only in a constant share a fingerprint');
  assert.match(String(byId1.fingerprint), /^[0-9a-f]{16}$/);
  assert.equal(byId1.relations, ['crm.employees']);
  assert.equal([byId1.rows, byId2.rows, bound.rows], [1, 0, 1]);
  assert.is(byId1.org, 'acme');
  assert.equal(bound.relations, ['crm.employees']);
  assert.ok(typeof bound.fingerprint === 'string', 'an Execute carries its Parse\'s fingerprint');
  for (const r of mine) {
    assert.is(r.text, undefined, 'statements: fingerprint never writes the text');
    assert.ok(typeof r.durationMs === 'number' && r.durationMs >= 0);
  }
  const forwarded = byDecision('forwarded').filter((r) => r.rows === 1 && (r.relations as string[]).length === 0);
  assert.ok(forwarded.length >= 1, 'select 40 + 2: forwarded as it is, one row');
  const refused = byDecision('refused');
  assert.is(refused.length, 2);
  for (const r of refused) {
    assert.is(r.code, '42501');
    assert.is(r.reason, 'permission denied for table employees', 'the message the client saw');
    assert.equal(r.relations, ['crm.employees']);
  }
  const syntaxRecord = byDecision('syntax_error');
  assert.is(syntaxRecord.length, 1);
  assert.is(syntaxRecord[0].code, '42601');
  assert.is(syntaxRecord[0].fingerprint, undefined, 'a text that does not parse has no fingerprint');
  const session = ofEvent(records, 'auth', { user: 'alice@acme.com', outcome: 'success' }).pop()!.session;
  assert.ok(mine.every((r) => r.session === session), 'the records name the session that ran them');

  assert.is(await metric('pgveil_refusals_total', '{reason="write_denied"}') - refusalsBefore, 2);
  assert.is(await metric('pgveil_refusals_total', '{reason="syntax_error"}') - syntaxBefore, 1);
  // 9 statements: 3 selects, 2 refusals, a syntax error, begin, rollback, 1 Execute; 6 of them went upstream.
  assert.is(await metric('pgveil_statement_seconds_count') - timedBefore, 9);
  assert.is(await metric('pgveil_upstream_seconds_count') - upstreamBefore, 6);
});

test('policy reloads are recorded: applied with what loosened, and rejected with the error', async () => {
  const file = join(h.dir, 'policy.yaml');
  const good = readFileSync(file, 'utf8');
  writeFileSync(file, good.replace(/\n    redaction:\n      ssn: \{ mask: partial, keepLast: 4 \}\n/, '\n'));
  assert.is(await h.proxy.reload(), true);
  writeFileSync(file, good + '\n  broken: [\n');
  assert.is(await h.proxy.reload(), false);
  writeFileSync(file, good);
  assert.is(await h.proxy.reload(), true);
  const generation = (await h.proxy.metrics.policyGeneration.get()).values[0].value;
  // The file watcher may reload as well (one more record each): check what each kind of reload recorded.
  const records = await waitForAudit(auditFile, (r) => ofEvent(r, 'policy_reload', { generation, outcome: 'applied' }).length > 0);
  const reloads = ofEvent(records, 'policy_reload');
  assert.equal([reloads[0].generation, reloads[0].outcome], [1, 'applied'], 'the first load is recorded too');
  const loosening = reloads.filter((r) => (r.loosened as string[] | undefined)?.includes('crm.employees.ssn: mask partial removed'));
  assert.is(loosening.length, 1, 'removing the mask is recorded as a loosening, once');
  const rejected = ofEvent(reloads, 'policy_reload', { outcome: 'rejected' });
  assert.ok(rejected.length >= 1);
  for (const r of rejected) {
    const before = reloads.slice(0, reloads.indexOf(r)).filter((x) => x.outcome === 'applied').pop();
    assert.is(r.generation, before?.generation, 'a rejected reload keeps the generation before it');
    assert.match(String(r.error), /policy\.yaml:\d+:\d+: YAML syntax error/);
  }
  const restored = ofEvent(reloads, 'policy_reload', { generation, outcome: 'applied' });
  assert.is(restored[0].loosened, undefined, 'putting the mask back loosens nothing');
});

test('an address lockout is recorded, and the connections it refuses at accept too', async () => {
  let records = await waitForAudit(auditFile, (r) => r.length > 0);
  for (let i = 0; i < 12 && ofEvent(records, 'lockout', { scope: 'address' }).length === 0; i++) {
    await loginError('alice@acme.com', `${wrongPassword}-${i}`);
    records = await waitForAudit(auditFile, (r) => ofEvent(r, 'auth', { outcome: 'failure' }).length > ofEvent(records, 'auth', { outcome: 'failure' }).length);
  }
  const lock = ofEvent(records, 'lockout', { scope: 'address' });
  assert.equal(lock.map((r) => r.key), ['127.0.0.1']);
  const refused = await loginError('alice@acme.com', passwords['alice@acme.com']);
  assert.match(refused.message, /too many failed logins from this address/);
  records = await waitForAudit(auditFile, (r) => ofEvent(r, 'refused_connection').length === 1);
  assert.equal(ofEvent(records, 'refused_connection').map((r) => [r.address, r.reason]), [['127.0.0.1', 'address_blocked']]);
});

test('a verifier changed in users.yaml is recorded at reload as a password change, without the verifier', async () => {
  const file = join(h.dir, 'users.yaml');
  const before = readFileSync(file, 'utf8');
  const old = /(SCRAM-SHA-256\$[^"\s]+)/.exec(before.slice(before.indexOf('bob@globex.com')))![1];
  const fresh = createVerifier('Bob-new-pass-0007!');
  writeFileSync(file, before.replace(old, fresh));
  assert.is(await h.proxy.reload(), true);
  const records = await waitForAudit(auditFile, (r) => ofEvent(r, 'password_change').length > 0);
  const changes = ofEvent(records, 'password_change');
  assert.equal([...new Set(changes.map((r) => `${r.user} ${r.via}`))], ['bob@globex.com users_file'], 'only the changed user');
  const text = readFileSync(auditFile, 'utf8');
  assert.not.ok(text.includes(fresh) || text.includes(old), 'no verifier in the audit file');
  writeFileSync(file, before);
  assert.is(await h.proxy.reload(), true);
});

test('the audit file holds no password, verifier, upstream secret or rewritten SQL, and its chain is whole', async () => {
  const records: AuditLine[] = await waitForAudit(auditFile, (r) => r.length > 0);
  const text = readFileSync(auditFile, 'utf8');
  const users = readFileSync(join(h.dir, 'users.yaml'), 'utf8');
  const verifiers = [...users.matchAll(/SCRAM-SHA-256\$[^"\s]+/g)].map((m) => m[0]);
  assert.ok(verifiers.length >= 6);
  const secrets = [...Object.values(passwords), wrongPassword, davePassword, erinPassword, frankPassword, h.servicePassword, ...verifiers,
    ...verifiers.flatMap((v) => v.split(/[$:]/).filter((part) => part.length >= 16))];
  for (const secret of secrets) assert.not.ok(text.includes(secret), `the audit file contains a secret (${secret.slice(0, 6)}…)`);
  assert.is(rewrittenSeen.length, 2);
  for (const sql of rewrittenSeen) {
    assert.ok(sql.length > 40);
    assert.not.ok(text.includes(sql), 'the rewritten SQL is not in the audit file');
  }
  assert.not.ok(text.includes('org_id'), 'nothing of the rewrite (its filter column) is in the audit file');
  assert.not.ok(text.includes('select name'), 'statements: fingerprint writes no statement text');
  assert.ok(records.length > 20);
});

test.run();
