// The store of started OIDC logins: each is taken once, expires, and their
// number is bounded (the oldest go first), so a flood of /sso/oidc/start
// requests costs bounded memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PendingLogins } from '../../src/sso/pending-logins.js';

let clock = 1_000_000;
const store = (maxEntries = 100) => new PendingLogins({ maxAgeMs: 600_000, maxEntries, now: () => clock });
const login = (n: number) => ({ state: `state-${n}`, nonce: `nonce-${n}`, codeVerifier: `verifier-${n}` });

test('a pending login is found by its key once, then never again', () => {
  const s = store();
  const key = s.add(login(1));
  assert.match(key, /^[A-Za-z0-9_-]{43}$/, '256 random bits, cookie-safe');
  assert.equal(s.take(key), { ...login(1), createdAt: clock });
  assert.is(s.take(key), undefined);
});

test('keys are distinct and an unknown key finds nothing', () => {
  const s = store();
  const keys = new Set(Array.from({ length: 50 }, (_, i) => s.add(login(i))));
  assert.is(keys.size, 50);
  assert.is(s.take('not-a-key'), undefined);
});

test('a pending login older than its maximum age is not returned, and is dropped', () => {
  const s = store();
  const key = s.add(login(1));
  clock += 600_000;
  assert.is(s.take(key), undefined);
  assert.is(s.size, 0);
});

test('expired logins are purged when new ones start', () => {
  const s = store();
  for (let i = 0; i < 10; i++) s.add(login(i));
  clock += 600_001;
  s.add(login(99));
  assert.is(s.size, 1);
});

test('at the bound, the oldest pending login makes room for a new one', () => {
  const s = store(3);
  const keys = [1, 2, 3, 4].map((n) => s.add(login(n)));
  assert.is(s.size, 3);
  assert.is(s.take(keys[0]), undefined, 'the oldest was dropped');
  assert.is(s.take(keys[3])?.state, 'state-4');
  assert.is(s.take(keys[1])?.state, 'state-2');
});

test.run();
