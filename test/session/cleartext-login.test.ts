// The cleartext-password path (over TLS, once some user has a TOTP second
// factor) applies the same rules as SCRAM: disabled users, expired
// passwords, required client certificates and per-address blocking, with the
// same client-facing errors. Malformed password messages are protocol
// violations, and a message pipelined behind the password waits for the
// (asynchronous) check instead of being read early.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createClientCertificate } from '../../src/demo/certs.js';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { startHarness, clientConfig, loginError, today, type Harness } from '../helpers/harness.js';
import { waitFor } from '../helpers/run.js';
import { RawTlsClient, errorField } from '../helpers/raw-tls-client.js';
import { frame, startupPacket, type BackendMessage } from '../helpers/raw-client.js';
import { addTotpUsers, newTotpUser } from '../helpers/totp-users.js';

const pw = { kim: 'Kim-pass-0010', lee: 'Lee-pass-0011', max: 'Max-pass-0012' };
let h: Harness;

test.before(async () => {
  h = await startHarness({
    clientCa: true,
    addressLockout: { maxFailures: 12, windowSeconds: 600, lockSeconds: 600 },
    extraConfig: 'audit: { file: audit.jsonl }',
    extraUsers: [
      `  kim@acme.com:\n    org: acme\n    password: "${createVerifier(pw.kim)}"\n    passwordChangedAt: ${today()}\n    clientCert: required\n`,
      `  lee@acme.com:\n    org: acme\n    password: "${createVerifier(pw.lee)}"\n    passwordChangedAt: ${today()}\n    disabled: true\n`,
      `  max@acme.com:\n    org: acme\n    password: "${createVerifier(pw.max)}"\n    passwordChangedAt: 2020-01-01\n`,
    ].join(''),
  });
  // One TOTP user turns the cleartext path on for every TLS login.
  await addTotpUsers(h, [newTotpUser('tom@acme.com', 'Tom-pass-0013')]);
});
test.after(async () => { await h?.close(); });

function tlsLoginError(user: string, password: string, extra: Record<string, unknown> = {}): Promise<{ code?: string; message: string } | undefined> {
  return loginError({ ...clientConfig(h, user), password, connectionTimeoutMillis: 10000, ...extra });
}

function hasAuthRecord(want: Record<string, string>): boolean {
  const file = join(h.dir, 'audit.jsonl');
  if (!existsSync(file)) return false;
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
    .some((r) => r.event === 'auth' && Object.entries(want).every(([k, v]) => r[k] === v));
}

const passwordFailure = (user: string) => ({ code: '28P01', message: `password authentication failed for user "${user}"` });

async function rawLogin(user: string): Promise<RawTlsClient> {
  const c = await RawTlsClient.connect(h.proxy.port, { ca: readFileSync(h.caFile, 'utf8') });
  c.send(startupPacket({ user, database: 'analytics' }));
  const request = await c.message();
  assert.is(request?.type, 'R');
  assert.is(request!.body.readInt32BE(0), 3, 'AuthenticationCleartextPassword');
  return c;
}

test('a disabled user with the right password gets the ordinary password failure', async () => {
  assert.equal(await tlsLoginError('lee@acme.com', pw.lee), passwordFailure('lee@acme.com'));
  await waitFor('disabled record', () => hasAuthRecord({ user: 'lee@acme.com', reason: 'disabled', method: 'password' }));
});

test('an expired password is refused after a right password, with the expiry message', async () => {
  const err = await tlsLoginError('max@acme.com', pw.max);
  assert.is(err?.code, '28P01');
  assert.match(err!.message, /password for user "max@acme\.com" has expired/);
  assert.equal(await tlsLoginError('max@acme.com', 'Wrong-pass-0000'), passwordFailure('max@acme.com'), 'a wrong password does not say expired');
  await waitFor('expired record', () => hasAuthRecord({ user: 'max@acme.com', reason: 'expired' }));
});

test('clientCert: required applies on the cleartext path: no certificate refused, the right one logs in', async () => {
  const err = await tlsLoginError('kim@acme.com', pw.kim);
  assert.is(err?.code, '28000');
  assert.match(err!.message, /certificate authentication failed for user "kim@acme\.com"/);
  const cert = createClientCertificate(h.ca, 'kim@acme.com');
  const ssl = { ca: readFileSync(h.caFile, 'utf8'), cert: cert.certPem, key: cert.keyPem, rejectUnauthorized: true };
  assert.is(await tlsLoginError('kim@acme.com', pw.kim, { ssl }), undefined);
  await waitFor('certificate record', () => hasAuthRecord({ user: 'kim@acme.com', reason: 'client_certificate' }));
});

test('a password message with bytes after its terminator, or without a terminator, is a protocol violation', async () => {
  for (const body of [Buffer.from('Alice-pass-0001\0extra'), Buffer.from('Alice-pass-0001')]) {
    const c = await rawLogin('alice@acme.com');
    c.send(frame('p', body));
    const answer = await c.message();
    assert.is(answer?.type, 'E');
    assert.is(errorField(answer, 'C'), '08P01');
    c.socket.destroy();
  }
});

test('a query pipelined behind the password waits for the check and is answered after login', async () => {
  const c = await rawLogin('alice@acme.com');
  c.send(frame('p', Buffer.from('Alice-pass-0001\0')), frame('Q', Buffer.from('select 6 * 7\0')));
  const seen: BackendMessage[] = [];
  let readyCount = 0;
  while (readyCount < 2) {
    const m = await c.message(10000);
    assert.ok(m, `connection closed after ${seen.map((s) => s.type).join('')}`);
    if (m!.type === 'E') assert.unreachable(`error: ${errorField(m, 'M')}`);
    seen.push(m!);
    if (m!.type === 'Z') readyCount++;
  }
  assert.is(seen[0].type, 'R');
  assert.is(seen[0].body.readInt32BE(0), 0, 'AuthenticationOk first');
  const row = seen.find((m) => m.type === 'D')!;
  assert.is(row.body.toString('utf8', 6), '42');
  c.socket.destroy();
});

test('E3 failed cleartext logins count toward the per-address limit', async () => {
  // Earlier tests' failures count too; keep failing under new names until the address is blocked (12 at most).
  for (let i = 0; i < 12; i++) {
    const err = await tlsLoginError(`guess${i}@acme.com`, 'Guess-pass-0000');
    if (err?.code === '28000') break;
  }
  const blocked = await tlsLoginError('alice@acme.com', 'Alice-pass-0001');
  assert.is(blocked?.code, '28000');
  assert.match(blocked!.message, /too many failed logins from this address/);
});

test.run();
