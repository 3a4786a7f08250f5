// Round-trip cost of pgveil: the same short statements sent directly to
// PostgreSQL and through pgveil (TLS on the client link, as deployed), with
// node-postgres, one connection each. Prints p50/p99 latency and the ratio.
// Run: npm run build && node dist/bench/roundtrip.js [iterations]
import pg from 'pg';
import { startHarness, clientConfig } from '../test/helpers/harness.js';

const iterations = Number(process.argv[2] ?? 5000);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function measure(client: pg.Client, text: string, values?: unknown[]): Promise<{ p50: number; p99: number; perSec: number }> {
  for (let i = 0; i < 200; i++) await client.query(text, values); // warm up
  const times: number[] = [];
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const t = process.hrtime.bigint();
    await client.query(text, values);
    times.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  const total = Number(process.hrtime.bigint() - start) / 1e9;
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99), perSec: iterations / total };
}

const h = await startHarness();
try {
  const direct = new pg.Client({ host: h.pg.host, port: h.pg.port, user: 'pgveil_service', password: h.servicePassword, database: 'analytics' });
  await direct.connect();
  const proxied = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await proxied.connect();
  const rows: string[] = ['statement                          | direct p50/p99 µs | pgveil p50/p99 µs | throughput ratio'];
  for (const [label, text, values] of [
    ['simple: select 1', 'select 1', undefined],
    ['extended: lookup by key ($1)', 'select label from public.lookup where code = $1', ['a']],
  ] as Array<[string, string, unknown[] | undefined]>) {
    const d = await measure(direct, text, values);
    const p = await measure(proxied, text, values);
    rows.push(`${label.padEnd(34)} | ${d.p50.toFixed(0).padStart(6)} / ${d.p99.toFixed(0).padStart(6)}   | ${p.p50.toFixed(0).padStart(6)} / ${p.p99.toFixed(0).padStart(6)}   | ${(p.perSec / d.perSec).toFixed(2)}`);
  }
  console.log(`${iterations} sequential round trips per row\n` + rows.join('\n'));
  await direct.end();
  await proxied.end();
} finally {
  await h.close();
}
