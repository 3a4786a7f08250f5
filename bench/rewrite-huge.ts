// The pathological statements of the rewrite bench: a 10 MB IN list and the
// largest ones pgveil still parses or analyses, sent by a pg client through
// a real pgveil in its own process (the harness's config) and, for
// reference, straight to PostgreSQL. Per case: how long until the client
// has its answer (rows or the error's SQLSTATE), the proxy's CPU, how much
// its peak resident memory (VmHWM) grows, the worst wait of another
// session's `select 1` meanwhile (rewriting is synchronous: a long one holds
// up every session of the process), and whether the same session and a new
// connection are still served afterwards. Each group of cases gets a fresh
// pgveil, so one case's peak memory does not hide the next one's.
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../test/helpers/harness.js';
import { startPgveilProcess, processMemoryMiB, type PgveilProcess } from './pgveil-process.js';
import { processCpuMicros } from './process-cpu.js';
import { startSelectOneProbe } from './select-one-probe.js';
import { writeFileSync } from 'node:fs';
import type { Table } from './results.js';

const TEN_MB = 10 * 1024 * 1024;

/** `select * from crm.employees where id in (…)`, crm.employees being the harness's protected table. */
const inList = (values: Iterable<number>, run: number) => `/* run ${run} */ SELECT * FROM crm.employees WHERE id IN (${[...values].join(', ')})`;

/** 1, 2, 3, … until the statement has `chars` characters. */
function countingUpTo(chars: number): number[] {
  const values: number[] = [];
  let length = inList([], 0).length;
  for (let v = 1; length < chars; v++) { values.push(v); length += String(v).length + 2; }
  return values;
}

/** 19,900 constants (the budget is 20,000) of 10 digits each: ~240 KB, under the 262,144-character budget. */
const analysable = (offset: number) => [1, 2, ...Array.from({ length: 19_898 }, (_, i) => 1_000_000_000 + offset + i)];

interface Case {
  name: string;
  values: number[];
  /** Fresh pgveil for this case (false: the previous case's process, to see a cache hit). */
  fresh: boolean;
  /** Top-level config lines replacing the harness's (e.g. limits). */
  config?: string[];
  /** Time the same statement straight to PostgreSQL too (once per distinct statement). */
  direct: boolean;
}

export interface HugeRow {
  name: string; chars: number; constants: number; outcome: string; runs: number;
  /** Each run's time to answer, ms. */
  times: number[]; pgveilMs: number; direct?: Direct; cpuMs: number; hwmBeforeMiB: number; hwmGrowthMiB: number; rssAfterMiB: number;
  probeWorstMs: number; probeP99Ms: number; probeCount: number; sameSession: string; newConnection: string; alive: string;
}

/** The statement straight to PostgreSQL: median ms and the backend's peak memory, or why it did not complete. */
interface Direct { ms?: number; runs: number; backendHwmMiB?: number; failure?: string }
const directText = (d: Direct | undefined) => (!d ? '–' : d.failure ?? `${d.ms!.toFixed(1)}${d.backendHwmMiB === undefined ? '' : ` (backend VmHWM ${d.backendHwmMiB.toFixed(0)} MiB)`}`);

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))];
const median = (xs: number[]) => quantile(xs, 0.5);
const errorText = (err: unknown) => {
  const e = err as { code?: string; message?: string };
  return `${e.code ?? 'no SQLSTATE'}: ${(e.message ?? String(err)).slice(0, 140)}`;
};

export async function hugeStatements(runs: number): Promise<{ table: Table; rows: HugeRow[] }> {
  const tenMb = countingUpTo(TEN_MB);
  const cases: Case[] = [
    { name: 'IN list of 19,900 constants, analysed (cache miss)', values: analysable(0), fresh: true, direct: true },
    { name: 'same shape, other constants (cache hit)', values: analysable(50_000), fresh: false, direct: false },
    { name: 'IN list ~250 KB, over 20,000 constants: parsed, refused', values: countingUpTo(250_000), fresh: true, direct: true },
    { name: '10 MB IN list, maxMessageBytes 1 MiB (harness default)', values: tenMb, fresh: true, direct: true },
    { name: '10 MB IN list, maxMessageBytes 16 MiB: surely over the length budget', values: tenMb, fresh: true, config: ['limits: { maxMessageBytes: 16777216, maxClients: 200 }'], direct: false },
  ];
  const h = await startHarness({ tlsMode: 'prefer' });
  const rows: HugeRow[] = [];
  let proxy: PgveilProcess | undefined;
  try {
    let directTenMb: Direct | undefined;
    for (const c of cases) {
      if (c.fresh) {
        await proxy?.stop();
        proxy = await startPgveilProcess(h, { configLines: c.config });
      }
      const row = await runCase(h, proxy!, c, runs);
      if (c.direct) row.direct = await direct(h, c, c.values === tenMb ? 1 : runs);
      if (c.values === tenMb) { if (c.direct) directTenMb = row.direct; else row.direct = directTenMb; }
      rows.push(row);
      console.log(`${row.name}: ${row.outcome}, ${row.pgveilMs.toFixed(1)} ms (direct ${directText(row.direct)}), VmHWM +${row.hwmGrowthMiB.toFixed(1)} MiB, other session's worst select 1 ${row.probeWorstMs.toFixed(1)} ms`);
    }
  } finally {
    await proxy?.stop();
    await h.close();
  }
  const fmt = (v: number | string, digits = 1) => (typeof v === 'number' ? v.toFixed(digits) : v);
  return {
    rows,
    table: {
      caption: 'Pathological statements through pgveil (own process) and direct: time to answer (ms: median, and range, of runs), pgveil CPU, peak memory growth, another session during one more run, service afterwards',
      columns: ['statement', 'characters', 'constants', 'pgveil answer', 'pgveil ms', 'direct ms', 'pgveil CPU ms per statement', 'VmHWM before MiB', 'VmHWM growth MiB', 'VmRSS after MiB',
        'other session select 1 worst ms', 'same session select 1', 'new connection select 1'],
      rows: rows.map((r) => [r.name, r.chars, r.constants, r.outcome, r.runs > 1 ? `${fmt(r.pgveilMs)} (${fmt(Math.min(...r.times))}–${fmt(Math.max(...r.times))})` : fmt(r.pgveilMs), directText(r.direct), fmt(r.cpuMs),
        fmt(r.hwmBeforeMiB), fmt(r.hwmGrowthMiB), fmt(r.rssAfterMiB), `${fmt(r.probeWorstMs)} (p99 ${fmt(r.probeP99Ms)}, ${r.probeCount} probes)`, r.sameSession, `${r.newConnection}${r.alive}`]),
    },
  };
}

async function runCase(h: Harness, proxy: PgveilProcess, c: Case, runs: number): Promise<HugeRow> {
  const config = (user: string): pg.ClientConfig => ({ ...clientConfig(h, user), port: proxy.port, ssl: false });
  let connectionError = '';
  const connect = async () => {
    const client = new pg.Client(config('alice@acme.com'));
    client.on('error', (err) => { connectionError ||= errorText(err); }); // a closed session shows here and as the next query's error
    await client.connect();
    return client;
  };
  /** Sends one big statement: what came back and how long it took. */
  const send = async (client: pg.Client, sql: string) => {
    const t = performance.now();
    let outcome: string;
    try {
      outcome = `${(await withTimeout(client.query(sql), 180_000)).rowCount} rows`;
    } catch (err) {
      outcome = errorText(err);
    }
    return { outcome, ms: performance.now() - t, sessionGone: !outcome.endsWith('rows') && !outcome.startsWith('54') };
  };
  const big = await connect();
  // Warm: a login, a rewrite, a plain statement, so the baseline holds what a serving proxy holds.
  await big.query('SELECT * FROM crm.employees WHERE id IN (1, 2)');
  await big.query('SELECT 1');
  // Built before timing (the client's work is not pgveil's); the last one goes out with another session probing.
  const statements = Array.from({ length: runs + 1 }, (_, run) => inList(c.values, run));
  resetPeakMemory(proxy.pid);
  const before = processMemoryMiB(proxy.pid);
  const cpuBefore = processCpuMicros(proxy.pid);
  const times: number[] = [];
  let outcome = '';
  for (const sql of statements.slice(0, runs)) {
    const sent = await send(big, sql);
    times.push(sent.ms);
    outcome = sent.outcome;
    if (sent.sessionGone) break; // one run says it all
  }
  const cpuMs = (processCpuMicros(proxy.pid) - cpuBefore) / 1000 / times.length;
  const after = processMemoryMiB(proxy.pid);
  // Then how long another session waits meanwhile: its select 1s in a worker thread, the statement on a connection of its own.
  const probe = await startSelectOneProbe(config('bob@globex.com'));
  const probed = await connect();
  await send(probed, statements[runs]);
  const waits = await probe.stop();
  await probed.end().catch(() => {});
  if (connectionError && !outcome.includes(connectionError)) outcome += `; connection: ${connectionError}`;
  const selectOne = async (client: pg.Client) => {
    try { return `ok (${(await withTimeout(client.query('SELECT 1 AS one'), 10_000)).rows[0].one})`; } catch (err) { return `fails: ${errorText(err)}`; }
  };
  const sameSession = await selectOne(big);
  let newConnection: string;
  try {
    const fresh = new pg.Client(config('carol@acme.com'));
    fresh.on('error', () => {});
    await fresh.connect();
    newConnection = await selectOne(fresh);
    await fresh.end();
  } catch (err) {
    newConnection = `cannot connect: ${errorText(err)}`;
  }
  const alive = await Promise.race([proxy.exited.then((how) => `; pgveil ended (${how})`), new Promise<string>((r) => setTimeout(() => r(''), 100))]);
  await big.end().catch(() => {});
  return {
    name: c.name, chars: statements[0].length, constants: c.values.length, outcome, runs: times.length, times, pgveilMs: median(times), cpuMs,
    hwmBeforeMiB: before.hwm, hwmGrowthMiB: after.hwm - before.hwm, rssAfterMiB: after.rss,
    probeWorstMs: waits.length ? Math.max(...waits) : Number.NaN, probeP99Ms: waits.length ? quantile(waits, 0.99) : Number.NaN, probeCount: waits.length, sameSession, newConnection, alive,
  };
}

/** Sets VmHWM back to the current resident size (Linux ≥ 4.0), so the case's own peak shows. */
function resetPeakMemory(pid: number): void {
  try { writeFileSync(`/proc/${pid}/clear_refs`, '5'); } catch { /* then the growth is over the earlier peak */ }
}

/** The same statement as pgveil's service role straight to PostgreSQL: median ms, or what stopped it. */
async function direct(h: Harness, c: Case, runs: number): Promise<Direct> {
  const client = new pg.Client({ host: h.pg.host, port: h.pg.port, user: 'pgveil_service', password: h.servicePassword, database: 'analytics', statement_timeout: 120_000 });
  client.on('error', () => {});
  await client.connect();
  const backend = Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  const statements = Array.from({ length: runs }, (_, run) => inList(c.values, run));
  const times: number[] = [];
  try {
    for (const sql of statements) {
      const t = performance.now();
      await withTimeout(client.query(sql), 180_000);
      times.push(performance.now() - t);
    }
    let backendHwmMiB: number | undefined;
    try { backendHwmMiB = processMemoryMiB(backend).hwm; } catch { /* not readable as this user */ }
    return { ms: median(times), runs: times.length, backendHwmMiB };
  } catch (err) {
    return { failure: `did not complete (${errorText(err)})`, runs: times.length + 1 };
  } finally {
    await client.end().catch(() => {});
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms); });
  return Promise.race([p, expiry]).finally(() => clearTimeout(timer));
}
