// Connection rate: sessions per second where one session is connect,
// authenticate (SCRAM), SELECT 1, disconnect, with node-postgres over
// plaintext links, at 8 and 32 concurrent clients (each loops doing sessions
// back to back), straight to PostgreSQL, through PgBouncer (session pooling)
// and through pgveil (the harness's policy, in its own process). The targets
// run interleaved, each once per round with the order rotated, so drift on a
// busy machine falls on all alike; each cell is the median of its rounds.
// How to read it: PgBouncer keeps its server connections and only
// authenticates the client; so does pgveil with its upstream pool (on by
// default: a reset and a check after each session, a SET when the next
// starts), so pgveil / pgbouncer is
// the figure the issue's target (≥ 0.8×) is about, and CPU ms per session is
// what each proxy costs in cores independent of the clients sharing the
// machine. Client CPU is this process's (SCRAM's key derivation is the
// client's), for reading how far the clients themselves limit the rate.
// Run: npm run build:test && node build/bench/connect.js [seconds] [rounds]
//        [--clients=8,32]
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { startHarness, passwords } from '../test/helpers/harness.js';
import { startPgBouncer, bouncerUser, type PgBouncer } from './pgbouncer.js';
import { startPgveilProcess, tail, type PgveilProcess } from './pgveil-process.js';
import { runSessions, type SessionRun } from './connect-run.js';
import { median } from './pgbench-run.js';
import { barChart } from './chart.js';
import { saveResults, type Table } from './results.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const seconds = Number(positional[0] ?? 5);
const rounds = Math.max(1, Number(positional[1] ?? 3));
const clientCounts = (process.argv.find((a) => a.startsWith('--clients='))?.slice(10) ?? '8,32').split(',').map(Number);
/** The issue's target: pgveil's connect rate at least this share of PgBouncer's in session mode. */
const TARGET_VS_BOUNCER = 0.8;

type Target = 'direct' | 'pgbouncer' | 'pgveil';
const targetNames: Target[] = ['direct', 'pgbouncer', 'pgveil'];
interface Cell { clients: number; runs: Record<Target, SessionRun[]> }

const started = performance.now();
const h = await startHarness({ tlsMode: 'prefer' });
let bouncer: PgBouncer | undefined;
let pgveil: PgveilProcess | undefined;
const killPgveil = () => { try { if (pgveil) process.kill(pgveil.pid, 'SIGKILL'); } catch { /* already gone */ } };
process.once('exit', killPgveil); // even when the bench dies before its finally runs
const onSignal = (signal: NodeJS.Signals) => { killPgveil(); bouncer?.stop(); process.exit(signal === 'SIGINT' ? 130 : 143); };
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);
try {
  const maxClients = Math.max(...clientCounts);
  const { postgresPid, serviceBackends } = await checkConnectionLimit(maxClients);
  bouncer = await startPgBouncer({ port: h.pg.port, user: 'postgres', password: h.pg.password }, maxClients + 2);
  if (!bouncer) throw new Error('PgBouncer is not installed (bash scripts/install-bench-tools.sh)');
  // Like for like: pgveil may keep as many idle upstream connections as PgBouncer's pool holds.
  pgveil = await startPgveilProcess(h, { poolMaxIdle: maxClients + 2 });
  const plain = { host: '127.0.0.1', database: 'analytics', ssl: false } as const;
  const targets: Array<{ name: Target; config: pg.ClientConfig; pid?: number }> = [
    { name: 'direct', config: { ...plain, port: h.pg.port, user: 'postgres', password: h.pg.password } },
    { name: 'pgbouncer', config: { ...plain, port: bouncer.port, ...bouncerUser }, pid: bouncer.pid },
    { name: 'pgveil', config: { ...plain, port: pgveil.port, user: 'alice@acme.com', password: passwords['alice@acme.com'] }, pid: pgveil.pid },
  ];
  const cells: Cell[] = [];
  for (const clients of clientCounts) {
    const cell: Cell = { clients, runs: { direct: [], pgbouncer: [], pgveil: [] } };
    for (const t of targets) await runSessions({ config: t.config, clients, seconds: 1, postgresPid }); // warm: pools, JIT, caches
    for (let round = 0; round < rounds; round++) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length]);
      for (const t of order) cell.runs[t.name].push(await runSessions({ config: t.config, clients, seconds, pid: t.pid, postgresPid }));
      console.log(`${clients} clients, round ${round + 1}: ${targetNames.map((n) => `${n} ${cell.runs[n][round].perSecond.toFixed(0)}/s`).join(', ')}`);
    }
    cells.push(cell);
  }
  bouncer.stop(); // its pooled server connections end with it; what is left then was leaked
  bouncer = undefined;
  await pgveil.stop(); // and pgveil's pooled upstream connections with it
  pgveil = undefined;
  await new Promise((r) => setTimeout(r, 500)); // backends exit just after their Terminate
  const backends = await backendsByUser();
  const leaked = Object.entries(backends).filter(([user, n]) => n > (user === 'pgveil_service' ? serviceBackends : 0));
  const verdicts = cells.map((c) => {
    const ratio = median(c.runs.pgveil.map((r, i) => r.perSecond / c.runs.pgbouncer[i].perSecond));
    return `${c.clients} clients: pgveil / pgbouncer ${ratio.toFixed(2)} — target ≥ ${TARGET_VS_BOUNCER}× ${ratio >= TARGET_VS_BOUNCER ? 'met' : 'NOT met'}`;
  });
  saveResults({
    name: 'connect',
    title: 'Connection rate: direct, PgBouncer and pgveil',
    notes: [
      `One session = connect, SCRAM authentication, SELECT 1, disconnect (node-postgres, plaintext links); each client loops doing sessions back to back for ${seconds} s a run, ${rounds} rounds with the order of the targets rotated; each cell is the median of its rounds (ratios: the median of the per-round ratios). Direct logs in as the upstream superuser, PgBouncer as its own userlist user (its server connections use the upstream superuser); pgveil logs in alice@acme.com with the harness's policy and runs in its own process, logging at its default level (info) to a file.`,
      'PgBouncer (session pooling) keeps its server connections between client sessions, so it only authenticates the client; pgveil, with upstream.pool.maxIdle set to the size of the PgBouncer pool (clients + 2; the default is 20), does the same, with a DISCARD ALL and a check that the session left nothing after each session and a set_config of application_name when the next one starts. CPU ms/session is the proxy\'s own user + system CPU over the run divided by its sessions; PostgreSQL CPU is the postmaster\'s and its backends\' (live and exited), where a new backend\'s start shows; client CPU is the bench process\'s, where the clients\' SCRAM key derivation runs. Clients, PostgreSQL and the proxy share the machine\'s cores.',
      `Target (the issue): pgveil's connect rate ≥ ${TARGET_VS_BOUNCER}× PgBouncer session mode. ${verdicts.join('; ')}.`,
    ],
    tables: [rateTable(cells), costTable(cells)],
    data: { seconds, rounds, cells, backendsAfter: backends, runSeconds: (performance.now() - started) / 1000 },
    svg: barChart(cells.map((c) => ({
      label: `${c.clients} clients`,
      bars: targetNames.map((t) => ({ label: t, value: median(c.runs[t].map((r) => r.perSecond)) })),
    })), 'Sessions per second (connect, auth, SELECT 1, disconnect; median of rounds)', '/s'),
  });
  for (const v of verdicts) console.log(v);
  console.log(`backends left after the runs, by user: ${JSON.stringify(backends)} (pgveil_service before: ${serviceBackends}); ${leaked.length ? `LEAKED: ${JSON.stringify(leaked)}` : 'none leaked'}`);
  console.log(`total run time ${((performance.now() - started) / 1000).toFixed(0)} s`);
} catch (err) {
  if (pgveil) console.error(`pgveil's log (${pgveil.logFile}), last lines:\n${tail(pgveil.logFile)}`);
  throw err;
} finally {
  await pgveil?.stop();
  process.removeListener('exit', killPgveil);
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  bouncer?.stop();
  await h.close();
}

/**
 * 32 clients direct, PgBouncer's idle pool and pgveil's sessions plus its
 * service connections must all fit. Also returns the postmaster's pid (the
 * parent of a backend) and pgveil's service backends before the runs.
 */
async function checkConnectionLimit(maxClients: number): Promise<{ postgresPid: number; serviceBackends: number }> {
  const su = await h.pg.connect('analytics');
  try {
    const backend = (await su.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const stat = readFileSync(`/proc/${backend}/stat`, 'utf8');
    const postgresPid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const serviceBackends = (await su.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'pgveil_service'")).rows[0].n;
    const { rows } = await su.query<{ max: string; reserved: string }>("SELECT current_setting('max_connections') AS max, current_setting('superuser_reserved_connections') AS reserved");
    const available = Number(rows[0].max) - Number(rows[0].reserved);
    // PgBouncer holds up to maxClients + 2 server connections while pgveil opens maxClients; 10 for pgveil's service links, the in-process harness pgveil and this check.
    const needed = 2 * (maxClients + 2) + 10;
    if (available < needed) throw new Error(`PostgreSQL allows ${available} connections (max_connections ${rows[0].max} - reserved ${rows[0].reserved}); ${maxClients} clients need ${needed}`);
    return { postgresPid, serviceBackends };
  } finally {
    await su.end();
  }
}

/** Backends left per user once every run is over and PgBouncer has stopped. */
async function backendsByUser(): Promise<Record<string, number>> {
  await new Promise((r) => setTimeout(r, 500)); // backends of the last sessions are still exiting
  const su = await h.pg.connect('analytics');
  try {
    const { rows } = await su.query<{ usename: string; n: number }>("SELECT usename, count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY usename ORDER BY usename");
    return Object.fromEntries(rows.map((r) => [r.usename, r.n]));
  } finally {
    await su.end();
  }
}

function fmt(v: number, digits = 0): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '–';
}

function med(runs: SessionRun[], f: (r: SessionRun) => number): number {
  return median(runs.map(f));
}

function rateTable(cells: Cell[]): Table {
  return {
    caption: `Sessions per second and session latency (ms, p50 / p99); target pgveil ≥ ${TARGET_VS_BOUNCER}× PgBouncer`,
    columns: ['clients', 'direct /s', 'pgbouncer /s', 'pgveil /s', 'pgveil / pgbouncer (worst)', 'pgveil / direct', 'target', 'direct ms', 'pgbouncer ms', 'pgveil ms'],
    rows: cells.map((c) => {
      const { direct, pgbouncer, pgveil } = c.runs;
      const vsBouncer = pgveil.map((r, i) => r.perSecond / pgbouncer[i].perSecond);
      const lat = (runs: SessionRun[]) => `${fmt(med(runs, (r) => r.p50), 1)} / ${fmt(med(runs, (r) => r.p99), 1)}`;
      return [c.clients, fmt(med(direct, (r) => r.perSecond)), fmt(med(pgbouncer, (r) => r.perSecond)), fmt(med(pgveil, (r) => r.perSecond)),
        `${fmt(median(vsBouncer), 2)} (${fmt(Math.min(...vsBouncer), 2)})`, fmt(median(pgveil.map((r, i) => r.perSecond / direct[i].perSecond)), 2),
        median(vsBouncer) >= TARGET_VS_BOUNCER ? 'met' : 'not met', lat(direct), lat(pgbouncer), lat(pgveil)];
    }),
  };
}

function costTable(cells: Cell[]): Table {
  return {
    caption: 'CPU per session (ms): each proxy\'s own process; PostgreSQL (postmaster and backends) and the bench\'s clients for each target',
    columns: ['clients', 'pgbouncer CPU', 'pgveil CPU', 'pgveil / pgbouncer CPU', 'PostgreSQL CPU direct', 'PostgreSQL CPU pgbouncer', 'PostgreSQL CPU pgveil', 'client CPU direct', 'client CPU pgbouncer', 'client CPU pgveil'],
    rows: cells.map((c) => {
      const cpu = (t: Target) => med(c.runs[t], (r) => r.cpuPerSession);
      const client = (t: Target) => fmt(med(c.runs[t], (r) => r.clientCpuPerSession), 2);
      const postgres = (t: Target) => fmt(med(c.runs[t], (r) => r.postgresCpuPerSession), 2);
      return [c.clients, fmt(cpu('pgbouncer'), 2), fmt(cpu('pgveil'), 2), fmt(cpu('pgveil') / cpu('pgbouncer'), 1),
        postgres('direct'), postgres('pgbouncer'), postgres('pgveil'), client('direct'), client('pgbouncer'), client('pgveil')];
    }),
  };
}
