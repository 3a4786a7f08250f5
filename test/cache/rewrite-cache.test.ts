import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RewriteCache } from '../../src/cache/rewrite-cache.js';
import { scanShape } from '../../src/cache/shape.js';

type Outcome = { sql: string };
const out = (sql: string): Outcome => ({ sql });

test('exact hits and misses, counted', () => {
  const c = new RewriteCache<Outcome>(10);
  assert.is(c.getExact(1, 'p1', 'public', 'select 1'), undefined);
  c.recordMiss(2.5);
  c.setExact(1, 'p1', 'public', 'select 1', out('r1'));
  assert.equal(c.getExact(1, 'p1', 'public', 'select 1'), out('r1'));
  assert.equal(c.getExact(1, 'p1', 'public', 'select 1'), out('r1'));
  assert.equal(c.stats(), { hits: 2, shapeHits: 0, misses: 1, evictions: 0, entries: 1, maxEntries: 10, missMs: 2.5, generation: 1 });
});

test('every key part matters: profile, search_path, text, and exact vs shape', () => {
  const c = new RewriteCache<Outcome>(10);
  c.setExact(1, 'p1', 'public', 'select 1', out('r1'));
  assert.is(c.getExact(1, 'p2', 'public', 'select 1'), undefined);
  assert.is(c.getExact(1, 'p1', 'crm, public', 'select 1'), undefined);
  assert.is(c.getExact(1, 'p1', 'public', 'select 2'), undefined);
  assert.is(c.getShape(1, 'p1', 'public', 'select 1'), undefined, 'a shape key equal to a text is another entry');
  // the parts cannot run into each other
  c.setExact(1, 'a', 'b', 'c', out('abc'));
  assert.is(c.getExact(1, 'a', 'bc', ''), undefined);
  assert.is(c.getExact(1, 'ab', '', 'c'), undefined);
  assert.throws(() => c.setExact(1, 'a\u0000', 'b', 'c', out('x')), /NUL/);
});

test('shape entries: one per shape, hit by every statement of that shape', () => {
  const c = new RewriteCache<Outcome>(10);
  const s1 = scanShape('SELECT abalance FROM pgbench_accounts WHERE aid = 48213;');
  const s2 = scanShape('SELECT abalance FROM pgbench_accounts WHERE aid = 7;');
  assert.ok(s1 && s2);
  c.setShape(3, 'p', 'public', s1.key, out('template'));
  assert.equal(c.getShape(3, 'p', 'public', s2.key), out('template'));
  assert.is(c.stats().shapeHits, 1);
  assert.is(c.stats().hits, 1);
});

test('the bound evicts the least recently used entry, counted', () => {
  const c = new RewriteCache<Outcome>(2);
  c.setExact(1, 'p', 's', 'a', out('a'));
  c.setExact(1, 'p', 's', 'b', out('b'));
  c.getExact(1, 'p', 's', 'a'); // a is now more recent than b
  c.setExact(1, 'p', 's', 'c', out('c'));
  assert.is(c.getExact(1, 'p', 's', 'b'), undefined);
  assert.ok(c.getExact(1, 'p', 's', 'a'));
  assert.ok(c.getExact(1, 'p', 's', 'c'));
  assert.is(c.stats().evictions, 1);
  assert.is(c.stats().entries, 2);
  c.setExact(1, 'p', 's', 'c', out('c2')); // replacing is not evicting
  assert.is(c.stats().evictions, 1);
});

test('a new generation makes old entries unreachable at once and frees them', () => {
  const c = new RewriteCache<Outcome>(10);
  c.setExact(1, 'p', 's', 'select 1', out('old'));
  c.setShape(1, 'p', 's', 'select \u0000I', out('old template'));
  c.newGeneration(2);
  assert.is(c.stats().entries, 0);
  assert.is(c.getExact(2, 'p', 's', 'select 1'), undefined);
  assert.is(c.getExact(1, 'p', 's', 'select 1'), undefined, 'the old generation is gone too');
  assert.is(c.stats().evictions, 0, 'dropping a generation is not eviction');
  assert.is(c.stats().generation, 2);
});

test('the first use of a newer generation switches to it, even without newGeneration()', () => {
  const c = new RewriteCache<Outcome>(10);
  c.setExact(1, 'p', 's', 'select 1', out('old'));
  assert.is(c.getExact(2, 'p', 's', 'select 1'), undefined);
  assert.is(c.stats().entries, 0);
  assert.is(c.stats().generation, 2);
});

test('an outcome computed under an older generation is not stored', () => {
  const c = new RewriteCache<Outcome>(10);
  c.newGeneration(5);
  c.setExact(4, 'p', 's', 'select 1', out('stale')); // finished after the reload
  assert.is(c.stats().entries, 0);
  assert.is(c.getExact(5, 'p', 's', 'select 1'), undefined);
  assert.is(c.getExact(4, 'p', 's', 'select 1'), undefined);
  c.newGeneration(3); // going back is ignored
  assert.is(c.stats().generation, 5);
});

test.run();
