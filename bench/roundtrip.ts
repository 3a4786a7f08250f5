// Round-trip cost of pgveil: the same short statements sent directly to
// PostgreSQL and through pgveil (plaintext and TLS), with node-postgres, one
// connection each. pgveil runs in its own process, as deployed. Prints
// p50/p99 latency in µs and throughput relative to direct.
// Run: npm run build:test && node build/bench/roundtrip.js [iterations]
import pg from 'pg';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startHarness, clientConfig } from '../test/helpers/harness.js';
import { freePort } from '../src/demo/embedded-postgres.js';

const iterations = Number(process.argv[2] ?? 5000);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

interface Figures { p50: number; p99: number; perSec: number }

async function measure(client: pg.Client, text: string, values?: unknown[]): Promise<Figures> {
  for (let i = 0; i < 500; i++) await client.query(text, values); // warm up
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

const h = await startHarness({ tlsMode: 'prefer' });
// A second pgveil with the same files in its own process, on a fixed port.
const port = await freePort();
const configFile = h.configFile.replace(/\.yaml$/, '-bench.yaml');
writeFileSync(configFile, readFileSync(h.configFile, 'utf8').replace('port: 0 }', `port: ${port} }`));
// PGVEIL_BENCH_PROFILE=dir writes a CPU profile of the proxy process there.
const profile = process.env.PGVEIL_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PGVEIL_BENCH_PROFILE}`] : [];
const proxy = spawn(process.execPath, [...profile, fileURLToPath(new URL('../../bin/pgveil.js', import.meta.url)), 'serve', '--config', configFile], {
  env: { ...process.env, PGVEIL_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'inherit', 'inherit'],
});
await new Promise((r) => setTimeout(r, 1500));
try {
  const direct = new pg.Client({ host: h.pg.host, port: h.pg.port, user: 'pgveil_service', password: h.servicePassword, database: 'analytics' });
  const plain = new pg.Client({ ...clientConfig(h, 'alice@acme.com'), port, ssl: false });
  const secure = new pg.Client({ ...clientConfig(h, 'alice@acme.com'), port });
  for (const c of [direct, plain, secure]) await c.connect();
  const rows = ['statement                      | direct p50/p99 | pgveil plain p50/p99 (ratio) | pgveil TLS p50/p99 (ratio)'];
  const cell = (f: Figures, base?: Figures) => `${f.p50.toFixed(0).padStart(5)} /${f.p99.toFixed(0).padStart(6)}${base ? ` (${(f.perSec / base.perSec).toFixed(2)})` : ''}`;
  for (const [label, text, values] of [
    ['simple: select 1', 'select 1', undefined],
    ['extended: lookup by key ($1)', 'select label from public.lookup where code = $1', ['a']],
  ] as Array<[string, string, unknown[] | undefined]>) {
    const d = await measure(direct, text, values);
    const p = await measure(plain, text, values);
    const s = await measure(secure, text, values);
    rows.push(`${label.padEnd(30)} | ${cell(d).padEnd(14)} | ${cell(p, d).padEnd(28)} | ${cell(s, d)}`);
  }
  console.log(`${iterations} sequential round trips per row, latency in µs, ratio = throughput vs direct\n` + rows.join('\n'));
  for (const c of [direct, plain, secure]) await c.end();
} finally {
  proxy.kill('SIGTERM');
  await h.close();
}
