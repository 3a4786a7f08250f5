// The pending AuthnRequest ids behind the InResponseTo check: each one lives
// its lifetime and no longer, is taken once, and their number is bounded
// (anyone may start logins), the oldest forgotten first.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SamlRequestCache } from '../../src/sso/saml-request-cache.js';

test('a saved id is found until its lifetime has passed', async () => {
  let t = 1_000;
  const cache = new SamlRequestCache(600_000, () => t);
  assert.ok(await cache.saveAsync('_a', 'when'));
  t += 599_999;
  assert.is(await cache.getAsync('_a'), 'when');
  t += 1;
  assert.is(await cache.getAsync('_a'), null);
  assert.is(cache.size, 0);
});

test('an id is saved once and, once removed, is gone', async () => {
  const cache = new SamlRequestCache(600_000);
  assert.ok(await cache.saveAsync('_a', 'first'));
  assert.is(await cache.saveAsync('_a', 'second'), null);
  assert.is(await cache.removeAsync('_a'), 'first');
  assert.is(await cache.getAsync('_a'), null);
  assert.is(await cache.removeAsync('_a'), null);
  assert.is(await cache.removeAsync(null), null);
});

test('past the bound the oldest ids are forgotten first', async () => {
  const cache = new SamlRequestCache(600_000, Date.now, 3);
  for (const id of ['_1', '_2', '_3', '_4', '_5']) await cache.saveAsync(id, id);
  assert.is(cache.size, 3);
  assert.is(await cache.getAsync('_1'), null);
  assert.is(await cache.getAsync('_2'), null);
  assert.is(await cache.getAsync('_5'), '_5');
});

test('expired ids are dropped when a new one is saved', async () => {
  let t = 0;
  const cache = new SamlRequestCache(1_000, () => t, 2);
  await cache.saveAsync('_old', 'x');
  t = 5_000;
  await cache.saveAsync('_new1', 'x');
  await cache.saveAsync('_new2', 'x');
  assert.is(cache.size, 2);
  assert.is(await cache.getAsync('_new1'), 'x');
});

test.run();
