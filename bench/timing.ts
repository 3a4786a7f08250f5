// Timing helpers shared by the micro-benchmarks: per-call latencies in µs,
// summarised as p50/p99. `sink` keeps results alive so work is not elided.

export interface Percentiles { p50: number; p99: number }

export function percentiles(times: Float64Array): Percentiles {
  times.sort();
  return { p50: times[Math.floor(times.length * 0.5)], p99: times[Math.floor(times.length * 0.99)] };
}

let sink = 0;

/** Calls `run` on the texts in turn, `warmup` times untimed, then `n` times timed. */
export function timeEach(texts: string[], run: (sql: string) => number, n: number, warmup = Math.min(n, 2_000)): Percentiles {
  for (let i = 0; i < warmup; i++) sink += run(texts[i % texts.length]);
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const sql = texts[i % texts.length];
    const t0 = process.hrtime.bigint();
    sink += run(sql);
    times[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return percentiles(times);
}

/** Read the sink so the optimiser cannot prove the calls useless. */
export function sinkValue(): number {
  return sink;
}
