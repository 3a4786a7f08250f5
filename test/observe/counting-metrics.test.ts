// The per-statement histograms and counters count without prom-client's
// per-call allocations, yet must read exactly like prom-client's Histogram
// and Counter: the same text on /metrics and the same JSON, summed the same
// way, under workers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import client from 'prom-client';
import { CountingCounter, CountingHistogram } from '../../src/observe/counting-metrics.js';

const BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// On a bound, between bounds, below the first, above the last, zero.
const VALUES = [0.0005, 0.0004, 0.0007, 0.003, 0.003, 0.01, 0.2, 1, 7.5, 10, 11, 0, 0.0000001];

function pair(): { ours: client.Registry; theirs: client.Registry; mine: CountingHistogram; reference: client.Histogram } {
  const ours = new client.Registry();
  const theirs = new client.Registry();
  const mine = new CountingHistogram('t_seconds', 'help text', BOUNDS, ours);
  const reference = new client.Histogram({ name: 't_seconds', help: 'help text', buckets: BOUNDS, registers: [theirs] });
  return { ours, theirs, mine, reference };
}

test('a counting histogram reads on /metrics exactly as prom-client\'s Histogram with the same observations', async () => {
  const { ours, theirs, mine, reference } = pair();
  assert.is(await ours.metrics(), await theirs.metrics(), 'before any observation');
  for (const v of VALUES) { mine.observe(v); reference.observe(v); }
  assert.is(await ours.metrics(), await theirs.metrics());
  assert.match(await ours.metrics(), /t_seconds_count 13/);
});

test('workers: the JSON of several processes sums as prom-client\'s own histograms do', async () => {
  const a = pair();
  const b = pair();
  VALUES.forEach((v, i) => { const p = i % 2 ? a : b; p.mine.observe(v); p.reference.observe(v); });
  const ours = client.AggregatorRegistry.aggregate([await a.ours.getMetricsAsJSON(), await b.ours.getMetricsAsJSON()]);
  const theirs = client.AggregatorRegistry.aggregate([await a.theirs.getMetricsAsJSON(), await b.theirs.getMetricsAsJSON()]);
  assert.is(await ours.metrics(), await theirs.metrics());
});

test('a value that is not a finite number is not counted and does not throw; reset empties it', async () => {
  const { ours, mine } = pair();
  mine.observe(Number.NaN);
  mine.observe(Number.POSITIVE_INFINITY);
  mine.observe(0.002);
  assert.match(await ours.metrics(), /t_seconds_count 1\n/);
  ours.resetMetrics();
  assert.match(await ours.metrics(), /t_seconds_count 0\n/);
});

function counters(): { ours: client.Registry; theirs: client.Registry; mine: CountingCounter<'outcome'>; reference: client.Counter<'outcome'> } {
  const ours = new client.Registry();
  const theirs = new client.Registry();
  const mine = new CountingCounter('t_total', 'help text', 'outcome', ours);
  const reference = new client.Counter({ name: 't_total', help: 'help text', labelNames: ['outcome'] as const, registers: [theirs] });
  return { ours, theirs, mine, reference };
}
const OUTCOMES = ['rewritten', 'forwarded', 'rewritten', 'refused', 'rewritten', 'a "quoted"\\ value\n'];

test('a counting counter reads on /metrics exactly as prom-client\'s labelled Counter, zeroed values listed first', async () => {
  const { ours, theirs, mine, reference } = counters();
  assert.is(await ours.metrics(), await theirs.metrics(), 'before any count');
  for (const outcome of ['forwarded', 'syntax_error']) { mine.count(outcome, 0); reference.inc({ outcome }, 0); }
  for (const outcome of OUTCOMES) { mine.count(outcome); reference.inc({ outcome }); }
  assert.is(await ours.metrics(), await theirs.metrics());
  assert.match(await ours.metrics(), /t_total\{outcome="rewritten"\} 3/);
  assert.equal((await mine.get()).values.find((v) => v.labels.outcome === 'rewritten')?.value, 3, 'get() as tests and the admin API read it');
});

test('workers: counting counters of several processes sum as prom-client\'s own do; reset empties one', async () => {
  const a = counters();
  const b = counters();
  OUTCOMES.forEach((outcome, i) => { const p = i % 2 ? a : b; p.mine.count(outcome); p.reference.inc({ outcome }); });
  const ours = client.AggregatorRegistry.aggregate([await a.ours.getMetricsAsJSON(), await b.ours.getMetricsAsJSON()]);
  const theirs = client.AggregatorRegistry.aggregate([await a.theirs.getMetricsAsJSON(), await b.theirs.getMetricsAsJSON()]);
  assert.is(await ours.metrics(), await theirs.metrics());
  a.ours.resetMetrics();
  a.theirs.resetMetrics();
  assert.is(await a.ours.metrics(), await a.theirs.metrics());
});

test.run();
