// The reset state file: only hashes stored, one live token per user, expiry by
// the store's clock, single use, and changes from concurrent writers (the CLI
// and the portal) all kept because each takes the lock file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync, utimesSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResetTokenStore, resetStateFile, TOKEN_PATTERN } from '../../src/reset/token-store.js';

const fresh = (now?: () => number) => new ResetTokenStore(resetStateFile(join(mkdtempSync(join(tmpdir(), 'pgveil-reset-')), 'users.yaml')), now);

test('a token is 256 random bits in base64url, stored only as its hash, and names its user until it expires', async () => {
  let t = 1_000_000;
  const store = fresh(() => t);
  const token = await store.issue('dora', 30);
  assert.ok(TOKEN_PATTERN.test(token));
  assert.not.ok(readFileSync(store.file, 'utf8').includes(token));
  assert.is(store.userOf(token), 'dora');
  t += 30 * 60_000;
  assert.is(store.userOf(token), undefined);
});

test('a newer token for the same user replaces the older; other users keep theirs', async () => {
  const store = fresh();
  const a1 = await store.issue('dora', 30);
  const b = await store.issue('erin', 30);
  const a2 = await store.issue('dora', 30);
  assert.is(store.userOf(a1), undefined);
  assert.is(store.userOf(a2), 'dora');
  assert.is(store.userOf(b), 'erin');
});

test('redeem runs once per token: a spent token is gone, an unspent one stays', async () => {
  const store = fresh();
  const token = await store.issue('dora', 30);
  assert.is(await store.redeem(token, async (user) => ({ spent: false, result: user })), 'dora');
  assert.is(await store.redeem(token, async (user) => ({ spent: true, result: user })), 'dora');
  assert.is(await store.redeem(token, async (user) => ({ spent: true, result: user })), undefined);
  assert.is(await store.redeem('not-a-token', async () => ({ spent: true, result: 'x' })), undefined);
});

test('concurrent writers through separate store objects lose no change (the lock file serialises them)', async () => {
  const first = fresh();
  const others = Array.from({ length: 20 }, () => new ResetTokenStore(first.file));
  const tokens = await Promise.all(others.map((s, i) => s.issue(`user${i}`, 30)));
  tokens.forEach((t, i) => assert.is(first.userOf(t), `user${i}`));
  assert.not.ok(existsSync(`${first.file}.lock`));
});

test('a lock left by a crashed process (older than 30 s) is taken over', async () => {
  const store = fresh();
  writeFileSync(`${store.file}.lock`, '');
  const old = new Date(Date.now() - 60_000);
  utimesSync(`${store.file}.lock`, old, old);
  const token = await store.issue('dora', 30);
  assert.is(store.userOf(token), 'dora');
});

test('queued audit steps are taken once, in order', async () => {
  const store = fresh();
  await store.queueSteps([{ user: 'dora', step: 'requested' }, { user: 'dora', step: 'mail_sent' }]);
  assert.equal(await store.takeSteps(), [{ user: 'dora', step: 'requested' }, { user: 'dora', step: 'mail_sent' }]);
  assert.equal(await store.takeSteps(), []);
});

test.run();
