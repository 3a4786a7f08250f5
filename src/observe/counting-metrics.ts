// Metrics counted on every statement. prom-client's Histogram.observe and
// labelled Counter.inc allocate on every call (a closure, a label object,
// its hash, a number turned into a string key per bucket), about half a
// microsecond each on the per-statement path; these only count, into a
// typed array or a small map. prom-client reads them at scrape time through
// get(), in the same shape as its own metrics, so the exposition, the JSON
// the workers send and their aggregation are unchanged.
import type client from 'prom-client';

interface Sample { labels: Record<string, string | number>; value: number; metricName?: string }

/** A histogram without labels. */
export class CountingHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Observations per bucket, not cumulative; the last is above every bound (+Inf). */
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(readonly name: string, readonly help: string, private readonly bounds: readonly number[], registry: client.Registry) {
    this.counts = new Float64Array(bounds.length + 1);
    registry.registerMetric(this as unknown as client.Metric);
  }

  /** Counts `value` (seconds) in the first bucket whose bound is ≥ it, as Prometheus' `le` says. */
  observe(value: number): void {
    if (!Number.isFinite(value)) return; // a clock step cannot break a statement
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  /** The values prom-client's registry formats (and `workers: N` sums): cumulative buckets, +Inf, sum, count. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Sample[] }> {
    const bucket = `${this.name}_bucket`;
    const values: Sample[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i];
      values.push({ labels: { le: this.bounds[i] }, value: cumulative, metricName: bucket });
    }
    values.push(
      { labels: { le: '+Inf' }, value: this.count, metricName: bucket },
      { labels: {}, value: this.sum, metricName: `${this.name}_sum` },
      { labels: {}, value: this.count, metricName: `${this.name}_count` },
    );
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** registry.resetMetrics() */
  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** A counter with one label, whose values are a small fixed set (outcomes, kinds). */
export class CountingCounter<Label extends string> {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  /** By label value, in the order first counted (as prom-client lists them). */
  private readonly counts = new Map<string, number>();

  constructor(readonly name: string, readonly help: string, private readonly label: Label, registry: client.Registry) {
    registry.registerMetric(this as unknown as client.Metric);
  }

  /** Adds `by` to the label's `value` (0: the value is listed before it is first counted); no label object per call. */
  count(value: string, by = 1): void {
    this.counts.set(value, (this.counts.get(value) ?? 0) + by);
  }

  async get(): Promise<{ name: string; help: string; type: 'counter'; aggregator: 'sum'; values: Sample[] }> {
    const values: Sample[] = [];
    for (const [value, count] of this.counts) values.push({ labels: { [this.label]: value }, value: count, metricName: this.name });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.counts.clear();
  }
}
