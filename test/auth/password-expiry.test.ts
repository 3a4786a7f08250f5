// auth.passwordPolicy.maxAgeDays at login, through a real client (pg): a
// correct proof of a password older than maxAgeDays (or of one with no
// passwordChangedAt) fails with 28P01 "has expired" and says how to renew;
// a wrong password or an unknown user never gets that message (D2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { passwordExpiry } from '../../src/auth/password-expiry.js';
import type { User } from '../../src/config/types.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';

const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
const PW = { old: 'Olga-pass-0011', recent: 'Rita-pass-0012', undated: 'Ulla-pass-0013' };
const extraUsers = `  olga@acme.com:
    org: acme
    password: "${createVerifier(PW.old)}"
    passwordChangedAt: ${daysAgo(400)}
  rita@acme.com:
    org: acme
    password: "${createVerifier(PW.recent)}"
    passwordChangedAt: ${daysAgo(89)}
  ulla@acme.com:
    org: acme
    password: "${createVerifier(PW.undated)}"
`;

let h: Harness;
test.before(async () => { h = await startHarness({ extraUsers }); });
test.after(async () => { await h?.close(); });

async function login(user: string, password: string, port = h.proxy.port): Promise<{ code?: string; message?: string; hint?: string; detail?: string } | undefined> {
  const c = new pg.Client({ ...clientConfig(h, user), password, port });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('select 1');
    await c.end();
    return undefined;
  } catch (err) {
    return err as { code?: string; message?: string; hint?: string };
  }
}

test('D2 a password older than maxAgeDays fails after a correct proof with 28P01, saying it expired and how to renew', async () => {
  const err = await login('olga@acme.com', PW.old);
  assert.is(err?.code, '28P01');
  assert.is(err?.message, 'password for user "olga@acme.com" has expired');
  assert.match(String(err?.detail), /more than 90 days ago/);
  // No portal in this config: the hint names the administrator's commands.
  assert.match(String(err?.hint), /pgveil reset-request --config <pgveil.yaml> olga@acme.com/);
  assert.match(String(err?.hint), /pgveil passwd --config <pgveil.yaml> --write olga@acme.com/);
});

test('D2 a password changed within maxAgeDays logs in', async () => {
  assert.is(await login('rita@acme.com', PW.recent), undefined);
  assert.is(await login('alice@acme.com', 'Alice-pass-0001'), undefined);
});

test('D2 a password without passwordChangedAt counts as expired (its age is unknown)', async () => {
  const err = await login('ulla@acme.com', PW.undated);
  assert.is(err?.code, '28P01');
  assert.is(err?.message, 'password for user "ulla@acme.com" has expired');
  assert.match(String(err?.detail), /no passwordChangedAt/);
});

test('D2 a wrong password or an unknown user never hears "expired"', async () => {
  for (const [user, password] of [['olga@acme.com', 'wrong-password-1'], ['ulla@acme.com', 'wrong-password-1'], ['nobody@acme.com', PW.old]]) {
    const err = await login(user, password);
    assert.is(err?.code, '28P01', user);
    assert.is(err?.message, `password authentication failed for user "${user}"`, user);
    assert.is(err?.hint, undefined, user);
  }
});

test('D2 maxAgeDays: 0 never expires a password', async () => {
  const file = join(h.dir, 'pgveil-noexpiry.yaml');
  const text = readFileSync(h.configFile, 'utf8');
  assert.match(text, /^auth:\n/m);
  writeFileSync(file, text.replace(/^auth:\n/m, 'auth:\n  passwordPolicy: { maxAgeDays: 0 }\n'));
  const proxy: ProxyHandle = await startProxy({ configFile: file, logger: silentLogger, watch: false });
  try {
    assert.is(await login('olga@acme.com', PW.old, proxy.port), undefined);
    assert.is(await login('ulla@acme.com', PW.undated, proxy.port), undefined);
  } finally {
    await proxy.close();
  }
});

test('passwordExpiry: the boundary is maxAgeDays whole days after passwordChangedAt (midnight UTC for a date)', () => {
  const user = (passwordChangedAt?: string) => ({ name: 'u', groups: [], attributes: {}, passwordChangedAt } as unknown as User);
  const changed = Date.parse('2026-01-01');
  const day = 86_400_000;
  assert.is(passwordExpiry(user('2026-01-01'), 90, changed + 90 * day), undefined);
  assert.is(passwordExpiry(user('2026-01-01'), 90, changed + 90 * day + 1), 'expired');
  assert.is(passwordExpiry(user('2026-01-01T12:00:00Z'), 1, changed + day), undefined);
  assert.is(passwordExpiry(user(undefined), 90, changed), 'undated');
  assert.is(passwordExpiry(user(undefined), 0, changed), undefined);
});

test.run();
