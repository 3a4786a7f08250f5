import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LockoutTracker } from '../../src/auth/lockout.js';

const cfg = { maxFailures: 3, windowSeconds: 60, lockSeconds: 300 };

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (seconds: number) => { t += seconds * 1000; } };
}

test('locks after maxFailures failures within the window', () => {
  const c = clock();
  const l = new LockoutTracker(cfg, c.now);
  l.recordFailure('alice');
  l.recordFailure('alice');
  assert.not.ok(l.isLocked('alice'));
  l.recordFailure('alice');
  assert.ok(l.isLocked('alice'));
});

test('the lock is released after lockSeconds, and attempts while locked do not extend it', () => {
  const c = clock();
  const l = new LockoutTracker(cfg, c.now);
  for (let i = 0; i < 3; i++) l.recordFailure('alice');
  c.advance(299);
  l.recordFailure('alice');
  assert.ok(l.isLocked('alice'));
  c.advance(1);
  assert.not.ok(l.isLocked('alice'));
  // Counting starts afresh after a lock.
  l.recordFailure('alice');
  l.recordFailure('alice');
  assert.not.ok(l.isLocked('alice'));
});

test('failures older than the window do not count', () => {
  const c = clock();
  const l = new LockoutTracker(cfg, c.now);
  l.recordFailure('alice');
  l.recordFailure('alice');
  c.advance(61);
  l.recordFailure('alice');
  assert.not.ok(l.isLocked('alice'));
  c.advance(30);
  l.recordFailure('alice');
  assert.not.ok(l.isLocked('alice'));
  c.advance(10);
  l.recordFailure('alice');
  assert.ok(l.isLocked('alice'), 'three failures within 60 s (at 61, 91, 101)');
});

test('success clears the failure count but not an active lock', () => {
  const c = clock();
  const l = new LockoutTracker(cfg, c.now);
  l.recordFailure('alice');
  l.recordFailure('alice');
  l.recordSuccess('alice');
  l.recordFailure('alice');
  l.recordFailure('alice');
  assert.not.ok(l.isLocked('alice'));
  l.recordFailure('alice');
  assert.ok(l.isLocked('alice'));
  l.recordSuccess('alice');
  assert.ok(l.isLocked('alice'));
});

test('other users are unaffected', () => {
  const c = clock();
  const l = new LockoutTracker(cfg, c.now);
  for (let i = 0; i < 3; i++) l.recordFailure('alice');
  l.recordFailure('bob');
  assert.ok(l.isLocked('alice'));
  assert.not.ok(l.isLocked('bob'));
  assert.not.ok(l.isLocked('carol'));
  assert.not.ok(l.isLocked('Alice'), 'names are exact');
});

test('memory is bounded: cap on names, expired entries pruned, locks survive a flood', () => {
  const c = clock();
  const l = new LockoutTracker(cfg, c.now, { maxEntries: 1000 });
  for (let i = 0; i < 3; i++) l.recordFailure('victim');
  for (let i = 0; i < 10_000; i++) l.recordFailure(`random-${i}`);
  assert.ok(l.size <= 2000, `size ${l.size}`);
  assert.ok(l.isLocked('victim'), 'a flood of new names does not evict a lock');
  // The oldest names were forgotten, the newest are still counted.
  l.recordFailure('random-9999');
  l.recordFailure('random-9999');
  assert.ok(l.isLocked('random-9999'));
  c.advance(301);
  l.recordFailure('trigger-prune');
  assert.is(l.size, 1, 'everything expired is pruned');
});

test('very long names are stored as a fixed-size key', () => {
  const c = clock();
  const l = new LockoutTracker(cfg, c.now);
  const long = 'x'.repeat(100_000);
  for (let i = 0; i < 3; i++) l.recordFailure(long);
  assert.ok(l.isLocked(long));
  assert.not.ok(l.isLocked(long + 'y'));
  const snap = l.snapshot();
  assert.ok(snap.locks[0][0].length < 100);
});

test('snapshot / restore carries the state to another tracker', () => {
  const c = clock();
  const a = new LockoutTracker(cfg, c.now);
  for (let i = 0; i < 3; i++) a.recordFailure('alice');
  a.recordFailure('bob');
  a.recordFailure('bob');
  const snap = JSON.parse(JSON.stringify(a.snapshot()));
  const b = new LockoutTracker(cfg, c.now);
  b.restore(snap);
  assert.ok(b.isLocked('alice'));
  b.recordFailure('bob');
  assert.ok(b.isLocked('bob'));
  assert.throws(() => b.restore({ ...snap, version: 2 }), /version/);
});

test('D1 a lock decided by the primary (workers) holds until it runs out, also for long names', () => {
  const c = clock();
  const l = new LockoutTracker(cfg, c.now);
  const long = 'x'.repeat(500) + '@acme.com';
  l.applyLock('alice', c.now() + 1000);
  l.applyLock(long, c.now() + 1000);
  assert.ok(l.isLocked('alice'));
  assert.ok(l.isLocked(long));
  assert.not.ok(l.isLocked('bob'));
  c.advance(2);
  assert.not.ok(l.isLocked('alice'));
  assert.not.ok(l.isLocked(long));
});

test('maxFailures 0 disables lockout', () => {
  const l = new LockoutTracker({ maxFailures: 0, windowSeconds: 60, lockSeconds: 60 });
  for (let i = 0; i < 10; i++) l.recordFailure('alice');
  assert.not.ok(l.isLocked('alice'));
});

test.run();
