// Streaming throughput: MB/s of large results straight from PostgreSQL and
// through pgveil (in a process of its own), for a big SELECT and for
// `COPY (SELECT …) TO STDOUT`, on two sources: generate_series (no relation:
// pgveil forwards the statement as it is) and public.stream_rows, a table of
// the same row count that the bench's policy protects with an ownership
// filter (org_id = the user's org; every row is acme's, so both sides get
// the same rows) and a partial mask on ssn, to show what the rewrite costs
// (direct reads it unfiltered and unmasked, as pgveil's service user). For
// those, the statement pgveil sent upstream (read from pg_stat_activity
// while it runs) is also run direct: pgveil against it is the cost of the
// proxy alone, direct against it the cost of PostgreSQL evaluating the
// policy.
// The consumer logs in with pg, then counts bytes and frames off the socket
// without decoding rows (stream-consumer.ts). Each cell runs direct and
// pgveil alternately (order swapped each round) after one warm-up each;
// reported is the median MB/s (10^6 bytes of protocol traffic per second),
// pgveil / direct (target ≥ 0.9×), pgveil's CPU per GB received and its
// peak RSS (VmRSS sampled every 20 ms during its runs; VmHWM at the end).
// Run: npm run build:test && node build/bench/stream.js [rows] [rounds]
import pg from 'pg';
import { startHarness, passwords } from '../test/helpers/harness.js';
import { startPgveilProcess, statusKb, type PgveilProcess } from './pgveil-process.js';
import { streamOnce, type StreamRun } from './stream-consumer.js';
import { processCpuMicros } from './process-cpu.js';
import { median } from './pgbench-run.js';
import { barChart } from './chart.js';
import { saveResults, type Table } from './results.js';

const rows = Number(process.argv[2] ?? 2_000_000);
const rounds = Math.max(1, Number(process.argv[3] ?? 3));
if (!(rows >= 1)) throw new Error('usage: node build/bench/stream.js [rows ≥ 1] [rounds]');
const TARGET_RATIO = 0.9;

const series = `SELECT g, repeat('x', 100) FROM generate_series(1, ${rows}) g`;
const table = 'SELECT id, org_id, ssn, payload FROM public.stream_rows';
const cells = [
  { label: 'SELECT, generate_series', sql: series },
  { label: 'COPY TO STDOUT, generate_series', sql: `COPY (${series}) TO STDOUT` },
  { label: 'SELECT, protected table', sql: table },
  { label: 'COPY TO STDOUT, protected table', sql: `COPY (${table}) TO STDOUT` },
];

interface ProxyRun extends StreamRun { cpuMicros: number; peakRssKb: number }
interface Cell { label: string; sql: string; direct: StreamRun[]; pgveil: ProxyRun[]; rewritten?: { sql: string; direct: StreamRun[] } }

const mbps = (r: StreamRun) => r.bytes / 1e6 / r.seconds;

/** A pgveil run with its CPU time and the highest RSS sampled while it ran. */
async function proxyRun(p: PgveilProcess, sql: string, upstreamText?: (sql: string) => void): Promise<ProxyRun> {
  let peakRssKb = statusKb(p.pid, 'VmRSS');
  if (upstreamText) void watchUpstreamText(upstreamText);
  const sampler = setInterval(() => { peakRssKb = Math.max(peakRssKb, statusKb(p.pid, 'VmRSS')); }, 20);
  const cpu0 = processCpuMicros(p.pid);
  try {
    const run = await streamOnce(proxied(p), sql);
    return { ...run, cpuMicros: processCpuMicros(p.pid) - cpu0, peakRssKb: Math.max(peakRssKb, statusKb(p.pid, 'VmRSS')) };
  } finally {
    clearInterval(sampler);
  }
}

/** Reads the statement pgveil's session runs upstream from pg_stat_activity (as the superuser) while it runs. */
async function watchUpstreamText(found: (sql: string) => void): Promise<void> {
  const su = await h.pg.connect('analytics');
  try {
    for (let i = 0; i < 500; i++) {
      const r = await su.query<{ query: string }>("SELECT query FROM pg_stat_activity WHERE application_name LIKE 'pgveil:%' AND state = 'active'");
      if (r.rows[0]) { found(r.rows[0].query); return; }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    await su.end();
  }
}

const proxied = (p: PgveilProcess) => ({ host: '127.0.0.1', port: p.port, user: 'alice@acme.com', password: passwords['alice@acme.com'], database: 'analytics', ssl: false });

const started = Date.now();
const h = await startHarness({
  tlsMode: 'prefer',
  policyYaml: `
tables:
  public.stream_rows:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      ssn: { mask: partial, keepLast: 4 }
`,
  // The policy's table must exist when pgveil starts.
  extraSql: `CREATE TABLE public.stream_rows AS
      SELECT g AS id, 'acme'::text AS org_id, lpad(g::text, 9, '0') AS ssn, repeat('x', 100) AS payload FROM generate_series(1, ${rows}) g;
    GRANT SELECT ON public.stream_rows TO pgveil_service; ANALYZE public.stream_rows`,
});
let proxy: PgveilProcess | undefined;
try {
  proxy = await startPgveilProcess(h);
  const direct = { host: h.pg.host, port: h.pg.port, user: 'pgveil_service', password: h.servicePassword, database: 'analytics', ssl: false };
  // The protected table's rows must really come back rewritten (masked) through pgveil.
  const sampleSsn = async (config: pg.ClientConfig) => {
    const c = new pg.Client(config);
    await c.connect();
    try { return String((await c.query('SELECT ssn FROM public.stream_rows WHERE id = 1')).rows[0]?.ssn); } finally { await c.end(); }
  };
  const masked = { direct: await sampleSsn(direct), pgveil: await sampleSsn(proxied(proxy)) };
  if (masked.direct === masked.pgveil) throw new Error(`ssn of row 1 is ${masked.pgveil} through pgveil too: the policy's mask is not applied`);
  console.log(`ssn of row 1: direct ${masked.direct}, through pgveil ${masked.pgveil}`);
  const idleRssKb = statusKb(proxy.pid, 'VmRSS');
  const results: Cell[] = [];
  for (const c of cells) {
    const cell: Cell = { ...c, direct: [], pgveil: [] };
    await streamOnce(direct, c.sql); // warm: table pages in cache, plans
    let upstream: string | undefined;
    await proxyRun(proxy, c.sql, c.sql.includes('stream_rows') ? (text) => { upstream = text; } : undefined); // warm: parser, rewrite cache
    if (upstream !== undefined) {
      if (upstream === c.sql || upstream.length >= 1023) throw new Error(`pgveil's upstream statement was not read whole: ${upstream}`);
      cell.rewritten = { sql: upstream, direct: [] };
      await streamOnce(direct, upstream);
    }
    const rewritten = cell.rewritten;
    for (let round = 0; round < rounds; round++) {
      const d = async () => { cell.direct.push(await streamOnce(direct, c.sql)); if (rewritten) rewritten.direct.push(await streamOnce(direct, rewritten.sql)); };
      const p = async () => { cell.pgveil.push(await proxyRun(proxy!, c.sql)); };
      if (round % 2 === 0) { await d(); await p(); } else { await p(); await d(); }
    }
    const dRows = cell.direct[0].rows, pRows = cell.pgveil[0].rows;
    if (dRows !== pRows) console.log(`${c.label}: direct got ${dRows} rows, pgveil ${pRows}`);
    results.push(cell);
    const alsoRewritten = rewritten ? `, direct with pgveil's statement ${median(rewritten.direct.map(mbps)).toFixed(0)} MB/s` : '';
    console.log(`${c.label}: direct ${median(cell.direct.map(mbps)).toFixed(0)} MB/s${alsoRewritten}, pgveil ${median(cell.pgveil.map(mbps)).toFixed(0)} MB/s`);
  }
  const hwmKb = statusKb(proxy.pid, 'VmHWM');

  const mib = (kb: number) => (kb / 1024).toFixed(0);
  const summary = results.map((c) => {
    const ratios = c.pgveil.map((r, i) => mbps(r) / mbps(c.direct[i]));
    const cpuPerGb = median(c.pgveil.map((r) => r.cpuMicros / 1e6 / (r.bytes / 1e9)));
    const sameStatement = c.rewritten && median(c.pgveil.map((r, i) => mbps(r) / mbps(c.rewritten!.direct[i])));
    return {
      c, d: median(c.direct.map(mbps)), p: median(c.pgveil.map(mbps)), ratio: median(ratios), worst: Math.min(...ratios), cpuPerGb, peak: Math.max(...c.pgveil.map((r) => r.peakRssKb)),
      dRewritten: c.rewritten && median(c.rewritten.direct.map(mbps)), sameStatement,
    };
  });
  const tables: Table[] = [
    {
      caption: `MB/s (10^6 bytes of protocol traffic per second), median of ${rounds} rounds; ${rows.toLocaleString('en')} rows each`,
      columns: ['statement', 'MB received', 'direct MB/s', 'direct, pgveil\'s upstream statement MB/s', 'pgveil MB/s', 'pgveil / direct (worst)', 'target ≥ 0.9×',
        'pgveil / direct with the same statement', 'pgveil CPU s / GB', 'pgveil peak RSS MiB'],
      rows: summary.map((s) => [s.c.label, (s.c.pgveil[0].bytes / 1e6).toFixed(0), s.d.toFixed(0), s.dRewritten?.toFixed(0) ?? '(same)', s.p.toFixed(0),
        `${s.ratio.toFixed(2)} (${s.worst.toFixed(2)})`, s.ratio >= TARGET_RATIO ? 'met' : 'not met', (s.sameStatement ?? s.ratio).toFixed(2), s.cpuPerGb.toFixed(2), mib(s.peak)]),
    },
    {
      caption: 'pgveil process memory (MiB)',
      columns: ['RSS before the streams', 'peak RSS sampled during them', 'VmHWM (process lifetime peak)'],
      rows: [[mib(idleRssKb), mib(Math.max(...summary.map((s) => s.peak))), mib(hwmKb)]],
    },
  ];
  const allMet = summary.every((s) => s.ratio >= TARGET_RATIO);
  console.log(`target pgveil ≥ ${TARGET_RATIO}× direct MB/s: ${allMet ? 'met in every cell' : `NOT met in: ${summary.filter((s) => s.ratio < TARGET_RATIO).map((s) => s.c.label).join(', ')}`}`);
  saveResults({
    name: 'stream',
    title: 'Streaming throughput: direct and through pgveil',
    notes: [
      `Each statement returns ${rows.toLocaleString('en')} rows of about 110 bytes, read by a consumer that logs in with pg and then counts bytes and frames off the socket without decoding rows; a fresh connection per run. "generate_series" has no relation, so pgveil forwards it unchanged; "protected table" is public.stream_rows, which the bench's policy covers with an ownership filter (org_id = the user's org; every row is acme's, so both sides get the same rows) and a partial mask on ssn, so pgveil runs a rewritten statement and PostgreSQL evaluates the filter and mask (direct reads the table unfiltered as pgveil's service user; the bench checks the mask: row 1's ssn is \`${masked.direct}\` direct and \`${masked.pgveil}\` through pgveil). Plaintext on both links.`,
      `For the protected table, "direct, pgveil's upstream statement" runs direct the very statement pgveil sent upstream (read from pg_stat_activity during pgveil's warm-up run): pgveil against it is what the proxy alone costs; direct against it, what PostgreSQL's evaluation of the filter and the mask costs. The statement, for the SELECT: \`${results.find((c) => c.rewritten)?.rewritten?.sql ?? ''}\`.`,
      `pgveil runs in a process of its own. Direct and pgveil alternate within each round (order swapped each round), one warm-up run each first; cells are medians of ${rounds} rounds, "worst" the lowest per-round ratio. CPU s / GB is pgveil's user + system time over the bytes it delivered. Peak RSS is pgveil's VmRSS sampled every 20 ms during its runs; VmHWM is the process's lifetime peak. Client, PostgreSQL and pgveil share the machine's cores.`,
    ],
    tables,
    data: { rows, rounds, masked, idleRssKb, hwmKb, cells: results },
    svg: barChart(summary.map((s) => ({ label: s.c.label, bars: [{ label: 'direct', value: s.d }, { label: 'pgveil', value: s.p }] })), 'Streaming throughput, MB/s (median of rounds)', ' MB/s'),
  });
} finally {
  await proxy?.stop();
  await h.close();
  console.log(`run time ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
