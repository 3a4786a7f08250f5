// TOTP second factor: a user with `totp` logs in with cleartext password
// authentication over TLS, the password immediately followed by the current
// 6-digit code; a code is accepted once; a wrong code counts toward lockout;
// SCRAM and plain connections never let such a user in. Every outcome is in
// the audit log with its real reason, while the client sees one error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, clientConfig, loginError, passwords, type Harness } from '../helpers/harness.js';
import { psql, waitFor } from '../helpers/run.js';
import { RawTlsClient, errorField } from '../helpers/raw-tls-client.js';
import { frame, int32, startupPacket } from '../helpers/raw-client.js';
import { addTotpUsers, codeAt, newTotpUser, startOfStep } from '../helpers/totp-users.js';

const dave = newTotpUser('dave@acme.com', 'Dave-pass-0004');
const erin = newTotpUser('erin@acme.com', 'Erin-pass-0005');
const fay = newTotpUser('fay@acme.com', 'Fay-pass-0006');
const gus = newTotpUser('gus@acme.com', 'Gus-pass-0007');
let h: Harness;

test.before(async () => {
  h = await startHarness({
    tlsMode: 'prefer',
    lockout: { maxFailures: 3, windowSeconds: 600, lockSeconds: 600 },
    extraConfig: 'audit: { file: audit.jsonl }',
  });
  await addTotpUsers(h, [dave, erin, fay, gus]);
});
test.after(async () => { await h?.close(); });

/** The error a TLS pg client gets logging in (undefined: it logged in and ran a query). */
function tlsLoginError(user: string, password: string, extra: Record<string, unknown> = {}): Promise<{ code?: string; message: string } | undefined> {
  return loginError({ ...clientConfig(h, user), password, connectionTimeoutMillis: 10000, ...extra }, async (c) => {
    const r = await c.query('select count(*)::int as n from crm.employees');
    assert.is(r.rows[0].n, 1, 'the TOTP user sees its org rows only');
  });
}

interface AuthRecord { event: string; user?: string; outcome?: string; reason?: string; method?: string }

function authRecords(user: string): AuthRecord[] {
  const file = join(h.dir, 'audit.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuthRecord)
    .filter((r) => r.event === 'auth' && r.user === user);
}

async function waitForAuthRecord(user: string, want: Partial<AuthRecord>): Promise<void> {
  await waitFor(`audit auth record ${JSON.stringify(want)} for ${user}`,
    () => authRecords(user).some((r) => Object.entries(want).every(([k, v]) => r[k as keyof AuthRecord] === v)));
}

const passwordFailure = (user: string) => ({ code: '28P01', message: `password authentication failed for user "${user}"` });

test('password + the step before, the current step and the step after are accepted in that order; each code only once', async () => {
  const at = await startOfStep(20);
  assert.is(await tlsLoginError(dave.name, dave.password + codeAt(dave.secret, at, -1)), undefined, 'previous step');
  assert.is(await tlsLoginError(dave.name, dave.password + codeAt(dave.secret, at, 0)), undefined, 'current step');
  assert.equal(await tlsLoginError(dave.name, dave.password + codeAt(dave.secret, at, 0)), passwordFailure(dave.name), 'the same code again');
  assert.equal(await tlsLoginError(dave.name, dave.password + codeAt(dave.secret, at, -1)), passwordFailure(dave.name), 'an older code after a newer one');
  assert.is(await tlsLoginError(dave.name, dave.password + codeAt(dave.secret, at, 1)), undefined, 'next step');
  await waitForAuthRecord(dave.name, { outcome: 'success', method: 'password+totp' });
  await waitForAuthRecord(dave.name, { outcome: 'failure', reason: 'replayed_second_factor', method: 'password+totp' });
});

test('codes two steps off either way are refused as a bad second factor', async () => {
  const at = await startOfStep(10);
  assert.equal(await tlsLoginError(fay.name, fay.password + codeAt(fay.secret, at, 2)), passwordFailure(fay.name));
  assert.equal(await tlsLoginError(fay.name, fay.password + codeAt(fay.secret, at, -2)), passwordFailure(fay.name));
  await waitForAuthRecord(fay.name, { outcome: 'failure', reason: 'bad_second_factor' });
});

test('the right password without a code is refused, with the same error as a wrong password', async () => {
  assert.equal(await tlsLoginError(fay.name, fay.password), passwordFailure(fay.name));
  assert.equal(await tlsLoginError(fay.name, 'Wrong-pass-0000' + codeAt(fay.secret, Date.now())), passwordFailure(fay.name));
  assert.equal(await tlsLoginError('nobody@acme.com', 'Whatever-0000123456'), passwordFailure('nobody@acme.com'), 'an unknown name fails alike');
  await waitForAuthRecord(fay.name, { outcome: 'failure', reason: 'wrong_password' });
  await waitForAuthRecord('nobody@acme.com', { outcome: 'failure', reason: 'unknown_user', method: 'password' });
});

test('D1 wrong codes with the right password count toward lockout; then even a right code is refused', async () => {
  for (let i = 0; i < 3; i++) {
    assert.equal(await tlsLoginError(erin.name, erin.password + '000000'.replace(/^0/, String(i))), passwordFailure(erin.name));
  }
  await waitFor('the lockout record', () => readFileSync(join(h.dir, 'audit.jsonl'), 'utf8').includes('"event":"lockout","scope":"user","key":"erin@acme.com"'));
  const at = await startOfStep(5);
  assert.equal(await tlsLoginError(erin.name, erin.password + codeAt(erin.secret, at)), passwordFailure(erin.name));
  await waitForAuthRecord(erin.name, { outcome: 'failure', reason: 'locked' });
});

test('psql with sslmode=require logs a TOTP user in with password + code', async () => {
  const at = await startOfStep(5);
  const r = await psql(`host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=${gus.name} sslmode=require`, 'select count(*) from crm.employees', gus.password + codeAt(gus.secret, at));
  assert.is(r.stderr, '');
  assert.is(r.stdout.trim(), '1');
});

test('without TLS a TOTP user is refused even with password + current code (the ordinary failure)', async () => {
  const at = await startOfStep(5);
  assert.equal(await tlsLoginError(fay.name, fay.password + codeAt(fay.secret, at), { ssl: false }), passwordFailure(fay.name));
  await waitForAuthRecord(fay.name, { outcome: 'failure', reason: 'needs_tls' });
});

test('a raw client answering the cleartext request with a SASLInitialResponse is refused', async () => {
  const c = await RawTlsClient.connect(h.proxy.port, { ca: readFileSync(h.caFile, 'utf8') });
  c.send(startupPacket({ user: fay.name, database: 'analytics' }));
  const request = await c.message();
  assert.is(request?.type, 'R');
  assert.is(request!.body.readInt32BE(0), 3, 'AuthenticationCleartextPassword');
  const first = Buffer.from('n,,n=,r=abcdefghijklmnop');
  c.send(frame('p', Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int32(first.length), first])));
  const answer = await c.message();
  assert.is(answer?.type, 'E');
  assert.is(errorField(answer, 'C'), '08P01');
  assert.is(errorField(answer, 'S'), 'FATAL');
  c.socket.destroy();
});

test('over TLS every name is offered cleartext (the method does not tell which users exist or have TOTP); SCRAM users log in with their password', async () => {
  for (const user of [fay.name, 'alice@acme.com', 'nobody@acme.com']) {
    const c = await RawTlsClient.connect(h.proxy.port, { ca: readFileSync(h.caFile, 'utf8') });
    c.send(startupPacket({ user, database: 'analytics' }));
    const request = await c.message();
    assert.is(request!.body.readInt32BE(0), 3, `${user} is asked for a cleartext password`);
    c.socket.destroy();
  }
  const alice = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await alice.connect();
  assert.is((await alice.query('select 1 as one')).rows[0].one, 1);
  await alice.end();
  assert.equal(await tlsLoginError('alice@acme.com', 'Not-alice-0001'), passwordFailure('alice@acme.com'));
  // Without TLS, SCRAM as before.
  const plain = new pg.Client({ ...clientConfig(h, 'alice@acme.com'), ssl: false });
  await plain.connect();
  await plain.end();
  await waitForAuthRecord('alice@acme.com', { outcome: 'success', method: 'password' });
  await waitForAuthRecord('alice@acme.com', { outcome: 'success', method: 'scram-sha-256' });
  assert.ok(passwords['alice@acme.com']);
});

test('the audit log never holds a password or a code', async () => {
  const text = readFileSync(join(h.dir, 'audit.jsonl'), 'utf8');
  for (const secret of [dave, erin, fay, gus].flatMap((u) => [u.password, u.secret])) assert.not.ok(text.includes(secret));
});

test.run();
