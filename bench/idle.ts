// Memory per idle authenticated session: pgveil runs in a child process of
// its own (so the bench's clients are not counted); N pg clients log in
// through it as alice@acme.com (plaintext, SCRAM), each runs one `SELECT 1`,
// then all sit idle. pgveil's RSS (/proc/<pid>/status VmRSS) and V8 heap
// (its /metrics: pgveil_nodejs_heap_size_used_bytes, plus external memory,
// where Buffers live) are read before and after, each time after a full
// garbage collection (the child is started with --expose-gc and a preload
// that collects on SIGUSR2), so the figures are live memory, not garbage.
// How to read: KB per session = delta / N; the issue's target is < 100 KB of
// pgveil memory (RSS) per idle session. The RSS before GC is shown too: what
// an operator sees right after a burst of logins. pgveil holds one upstream
// connection per session, so PostgreSQL is started with max_connections =
// N + 30; if fewer sessions open, the bench measures at the number that did
// and says so.
// Run: npm run build:test && node build/bench/idle.js [sessions] [--concurrency=25]
import pg from 'pg';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startHarness, passwords } from '../test/helpers/harness.js';
import { startPgveilProcess, statusKb, metricValue, type PgveilProcess } from './pgveil-process.js';
import { barChart } from './chart.js';
import { saveResults, type Table } from './results.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const sessions = Number(positional[0] ?? 1000);
const concurrency = Number(process.argv.find((a) => a.startsWith('--concurrency='))?.slice(14) ?? 25);
if (!(sessions >= 1) || !(concurrency >= 1)) throw new Error('usage: node build/bench/idle.js [sessions ≥ 1] [--concurrency=N]');
const TARGET_KB = 100;

interface Snapshot { rssKb: number; heapKb: number; externalKb: number; connections: number }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function snapshot(p: PgveilProcess, collect: boolean): Promise<Snapshot> {
  if (collect) {
    process.kill(p.pid, 'SIGUSR2');
    await sleep(1000); // the collection runs on pgveil's event loop, then RSS settles
  }
  const metric = (name: string) => metricValue(p.adminPort!, name);
  // Scrape first: the scrape itself allocates, and RSS is read after it.
  const [heap, external, connections] = [await metric('pgveil_nodejs_heap_size_used_bytes'), await metric('pgveil_nodejs_external_memory_bytes'), await metric('pgveil_connections_current')];
  return { rssKb: statusKb(p.pid, 'VmRSS'), heapKb: heap / 1024, externalKb: external / 1024, connections };
}

/** Logs in and runs `SELECT 1`; the client stays connected. */
async function openSession(port: number): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'alice@acme.com', password: passwords['alice@acme.com'], database: 'analytics', ssl: false, connectionTimeoutMillis: 30_000 });
  c.on('error', () => {}); // a session lost while idling shows in pgveil_connections_current
  try {
    await c.connect();
    await c.query('SELECT 1');
  } catch (err) {
    await c.end().catch(() => {});
    throw err;
  }
  return c;
}

/** Opens up to `n` sessions, `concurrency` at a time; stops at the first failure and reports it. */
async function openSessions(port: number, n: number): Promise<{ clients: pg.Client[]; failure?: string }> {
  const clients: pg.Client[] = [];
  let failure: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < n && !failure) {
      next++;
      try {
        clients.push(await openSession(port));
      } catch (err) {
        failure ??= `${(err as { code?: string }).code ?? ''} ${(err as Error).message}`.trim();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { clients, failure };
}

const started = Date.now();
const h = await startHarness({
  tlsMode: 'prefer',
  maxClients: sessions + 50,
  postgresSettings: { max_connections: String(sessions + 30) },
});
const gcPreload = pathToFileURL(fileURLToPath(new URL('./gc-on-signal.js', import.meta.url))).href;
let proxy: PgveilProcess | undefined;
let clients: pg.Client[] = [];
try {
  proxy = await startPgveilProcess(h, { admin: true, nodeArgs: ['--expose-gc', '--import', gcPreload] });
  // Warm up: the first sessions load the parser (WebAssembly) and fill caches that every later session shares.
  const warm = await openSessions(proxy.port, 10);
  if (warm.failure) throw new Error(`warm-up login failed: ${warm.failure}`);
  await Promise.all(warm.clients.map((c) => c.end()));
  await sleep(500);
  const before = await snapshot(proxy, true);
  const t0 = Date.now();
  const opened = await openSessions(proxy.port, sessions);
  clients = opened.clients;
  const openSeconds = (Date.now() - t0) / 1000;
  const n = clients.length;
  if (opened.failure) console.log(`stopped at ${n} of ${sessions} sessions: ${opened.failure}`);
  await sleep(2000); // idle
  const burst = await snapshot(proxy, false);
  const after = await snapshot(proxy, true);
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  clients = [];
  await sleep(1000);
  const closed = await snapshot(proxy, true);

  const perSession = (a: number, b: number) => (b - a) / n;
  const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '–');
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  const rssPer = perSession(before.rssKb, after.rssKb);
  const heapPer = perSession(before.heapKb, after.heapKb);
  const externalPer = perSession(before.externalKb, after.externalKb);
  const met = rssPer < TARGET_KB;
  const tables: Table[] = [
    {
      caption: `pgveil memory with ${n} idle sessions (MiB), and per session (KB = KiB)`,
      columns: ['measure', 'before', `${n} idle, before GC`, `${n} idle, after GC`, 'all closed, after GC', 'KB / session (after GC)', 'KB / session (before GC)'],
      rows: [
        ['RSS', mb(before.rssKb), mb(burst.rssKb), mb(after.rssKb), mb(closed.rssKb), fmt(rssPer), fmt(perSession(before.rssKb, burst.rssKb))],
        ['V8 heap used', mb(before.heapKb), mb(burst.heapKb), mb(after.heapKb), mb(closed.heapKb), fmt(heapPer), fmt(perSession(before.heapKb, burst.heapKb))],
        ['external (Buffers)', mb(before.externalKb), mb(burst.externalKb), mb(after.externalKb), mb(closed.externalKb), fmt(externalPer), fmt(perSession(before.externalKb, burst.externalKb))],
      ],
    },
    {
      caption: `Target: < ${TARGET_KB} KB of pgveil RSS per idle session`,
      columns: ['sessions asked', 'sessions open', 'pgveil sees', 'RSS KB / session', 'target', 'logins / s'],
      rows: [[sessions, n, after.connections, fmt(rssPer), met ? 'met' : 'not met', (n / openSeconds).toFixed(0)]],
    },
  ];
  console.log(`${n} sessions: ${fmt(rssPer)} KB RSS per idle session (target < ${TARGET_KB} KB): ${met ? 'met' : 'NOT met'}`);
  saveResults({
    name: 'idle',
    title: 'pgveil memory per idle session',
    notes: [
      `${n} pg clients${n < sessions ? ` (of ${sessions} asked; the next login failed: ${opened.failure})` : ''} logged in through pgveil (plaintext, SCRAM, alice@acme.com, ${concurrency} logins at a time), each ran \`SELECT 1\` and then stayed idle; pgveil ran in a process of its own with one upstream connection per session (PostgreSQL max_connections ${sessions + 30}). Ten sessions were opened and closed first, so the parser and shared caches are in the "before" figure.`,
      'RSS is the pgveil process\'s VmRSS from /proc; V8 heap used and external memory come from its /metrics (prom-client\'s default metrics). "After GC" figures are read after a full garbage collection in the pgveil process (started with --expose-gc and a preload that collects on SIGUSR2): live memory. "Before GC" is what the process held two seconds after the logins, garbage included. Per-session figures are the delta over the "before" column divided by the sessions open. RSS includes the memory the heap and Buffers occupy, so the rows do not add up.',
    ],
    tables,
    data: { sessionsAsked: sessions, sessionsOpen: n, concurrency, failure: opened.failure, openSeconds, before, burst, after, closed, perSessionKb: { rss: rssPer, heap: heapPer, external: externalPer }, targetKb: TARGET_KB, met },
    svg: barChart([
      { label: 'per idle session, after GC', bars: [{ label: 'RSS', value: rssPer }, { label: 'V8 heap', value: heapPer }, { label: 'external', value: externalPer }, { label: 'target', value: TARGET_KB }] },
      { label: 'per idle session, before GC', bars: [{ label: 'RSS', value: perSession(before.rssKb, burst.rssKb) }, { label: 'V8 heap', value: perSession(before.heapKb, burst.heapKb) }, { label: 'external', value: perSession(before.externalKb, burst.externalKb) }, { label: 'target', value: TARGET_KB }] },
    ], `pgveil memory per idle session with ${n} sessions`, ' KB'),
  });
} finally {
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  await proxy?.stop();
  await h.close();
  console.log(`run time ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
