// The SSO password store on its own: only hashes on disk (mode 0600), at
// least 128 bits per password, expiry by the store's clock, a bounded number
// per user, concurrent issuers from two processes' stores lose nothing, and
// a file that is not a state file matches nothing and is reported.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CREDENTIAL_BITS, MAX_PER_USER, SsoCredentialStore, newPassword, ssoStateFile } from '../../src/sso/credential-store.js';

const fresh = () => ssoStateFile(join(mkdtempSync(join(tmpdir(), 'pgveil-sso-')), 'users.yaml'));
const zed = { user: 'zed@acme.com', listed: false, org: 'acme', groups: ['analysts'], via: 'oidc' as const };

test('a password has at least 128 random bits, only letters and digits (one double-click selects it), and is new each time', () => {
  assert.ok(CREDENTIAL_BITS >= 128, String(CREDENTIAL_BITS));
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = newPassword();
    assert.match(p, /^[A-Za-z2-9]+$/);
    assert.not.match(p, /[01IOl]/, 'no look-alike characters');
    seen.add(p);
  }
  assert.is(seen.size, 200);
});

test('the file holds the hash, user, org, groups, via and expiry, never the password; mode 0600', async () => {
  const file = fresh();
  const store = new SsoCredentialStore(file, { now: () => 1_000_000 });
  const { password, expiresAt } = await store.issue(zed, 480);
  assert.is(expiresAt, 1_000_000 + 480 * 60_000);
  const text = readFileSync(file, 'utf8');
  assert.not.ok(text.includes(password));
  const [entry] = (JSON.parse(text) as { credentials: Array<Record<string, unknown>> }).credentials;
  assert.equal(Object.keys(entry).sort(), ['expiresAt', 'groups', 'hash', 'listed', 'org', 'user', 'via']);
  assert.is(statSync(file).mode & 0o777, 0o600);
  assert.equal(store.match('zed@acme.com', password), { ...zed, expiresAt });
});

test('matches only the live password of its own user: not another user, not after expiry, not a wrong one', async () => {
  let now = 5_000_000;
  const store = new SsoCredentialStore(fresh(), { now: () => now });
  const { password } = await store.issue(zed, 1);
  assert.ok(store.match('zed@acme.com', password));
  assert.is(store.match('amy@acme.com', password), undefined);
  assert.is(store.match('zed@acme.com', newPassword()), undefined);
  assert.is(store.match('zed@acme.com', password + 'x'), undefined);
  now += 60_000;
  assert.is(store.match('zed@acme.com', password), undefined, 'expired at expiresAt');
});

test('a password issued by one store (the primary) is found by another reading the same file at once (a worker, a restarted pgveil)', async () => {
  const file = fresh();
  const checker = new SsoCredentialStore(file);
  assert.is(checker.match('zed@acme.com', newPassword()), undefined, 'nothing yet (no file)');
  const issuer = new SsoCredentialStore(file);
  for (let i = 0; i < 5; i++) {
    const { password } = await issuer.issue(zed, 10);
    assert.ok(checker.match('zed@acme.com', password), `issue ${i + 1} seen without waiting for a file event`);
  }
});

test(`at most ${MAX_PER_USER} live passwords per user: a new sign-in drops the oldest; expired entries are purged`, async () => {
  let now = 1_000;
  const store = new SsoCredentialStore(fresh(), { now: () => now });
  const passwords: string[] = [];
  for (let i = 0; i < MAX_PER_USER + 2; i++) { passwords.push((await store.issue(zed, 10)).password); now += 1000; }
  const amy = await store.issue({ ...zed, user: 'amy@acme.com' }, 1);
  assert.is(store.match('zed@acme.com', passwords[0]), undefined);
  assert.is(store.match('zed@acme.com', passwords[1]), undefined);
  for (const p of passwords.slice(2)) assert.ok(store.match('zed@acme.com', p));
  assert.ok(store.match('amy@acme.com', amy.password), "another user's are kept");
  now += 120_000;
  await store.issue(zed, 10);
  const users = (JSON.parse(readFileSync(store.file, 'utf8')) as { credentials: Array<{ user: string }> }).credentials.map((c) => c.user);
  assert.not.ok(users.includes('amy@acme.com'), 'the expired one is gone from the file');
});

test('two stores issuing at once (two processes) lose no password: the file lock serialises them', async () => {
  const file = fresh();
  const a = new SsoCredentialStore(file);
  const b = new SsoCredentialStore(file);
  const issued = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).issue({ ...zed, user: `u${i}@acme.com` }, 10)));
  const checker = new SsoCredentialStore(file);
  issued.forEach(({ password }, i) => assert.ok(checker.match(`u${i}@acme.com`, password), `u${i}`));
});

test('a truncated, garbage or wrong-shaped file matches nothing and is reported once per change; the next issue replaces it', async () => {
  const file = fresh();
  const errors: string[] = [];
  const store = new SsoCredentialStore(file, { onError: (m) => errors.push(m) });
  const { password } = await store.issue(zed, 10);
  const text = readFileSync(file, 'utf8');
  for (const broken of [text.slice(0, 40), '\u0000\u0001garbage', '[]', '{"credentials":{}}']) {
    writeFileSync(file, broken);
    const before = errors.length;
    assert.is(store.match('zed@acme.com', password), undefined, JSON.stringify(broken));
    assert.is(store.match('zed@acme.com', password), undefined);
    assert.is(errors.length, before + 1, 'reported once');
    assert.not.ok(errors.at(-1)!.includes(password));
  }
  // Entries of the wrong shape are skipped, the rest still match.
  const good = await store.issue(zed, 10);
  const data = JSON.parse(readFileSync(file, 'utf8')) as { credentials: unknown[] };
  writeFileSync(file, JSON.stringify({ credentials: [...data.credentials, { hash: 1 }, null, 'x'] }));
  assert.ok(store.match('zed@acme.com', good.password));
});

test.run();
