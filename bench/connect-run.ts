// One timed run of the connect bench against one target: `clients` loops,
// each doing sessions back to back until the time is up, where a session is
// connect, authenticate, SELECT 1, disconnect with node-postgres. Gives the
// session rate, per-session latency percentiles and the CPU the target's
// process (a proxy), PostgreSQL and this process (the clients) spent per
// session.
import pg from 'pg';
import { processCpuMicros, processTreeCpuMicros } from './process-cpu.js';

export interface SessionRun {
  sessions: number;
  perSecond: number;
  /** Session latency in ms (connect to disconnected). */
  p50: number;
  p99: number;
  /** The target process's CPU per session in ms (NaN with no process to read). */
  cpuPerSession: number;
  /** PostgreSQL's CPU per session in ms (postmaster and backends, live and exited). */
  postgresCpuPerSession: number;
  /** This process's CPU per session in ms: the clients' side (SCRAM's key derivation is theirs). */
  clientCpuPerSession: number;
}

export interface SessionSpec {
  config: pg.ClientConfig;
  clients: number;
  seconds: number;
  /** The proxy whose CPU is read (undefined: direct to PostgreSQL). */
  pid?: number;
  /** PostgreSQL's postmaster, whose process tree's CPU is read. */
  postgresPid: number;
}

/** The first failure ends the run: a bench that counts failed logins as sessions would flatter the target. */
export async function runSessions(spec: SessionSpec): Promise<SessionRun> {
  const latencies: number[] = [];
  const deadline = performance.now() + spec.seconds * 1000;
  const cpu0 = spec.pid === undefined ? Number.NaN : processCpuMicros(spec.pid);
  const postgres0 = processTreeCpuMicros(spec.postgresPid);
  const own0 = process.cpuUsage();
  const start = performance.now();
  let failure: Error | undefined;
  const loop = async () => {
    while (!failure && performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await session(spec.config);
      } catch (err) {
        failure ??= err as Error;
        return;
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: spec.clients }, loop));
  const elapsed = (performance.now() - start) / 1000;
  if (failure) throw new Error(`session failed after ${latencies.length} sessions: ${failure.message}`);
  const own = process.cpuUsage(own0);
  const n = latencies.length;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(n - 1, Math.floor(n * p))];
  return {
    sessions: n,
    perSecond: n / elapsed,
    p50: at(0.5),
    p99: at(0.99),
    cpuPerSession: spec.pid === undefined ? Number.NaN : (processCpuMicros(spec.pid) - cpu0) / 1000 / n,
    postgresCpuPerSession: (processTreeCpuMicros(spec.postgresPid) - postgres0) / 1000 / n,
    clientCpuPerSession: (own.user + own.system) / 1000 / n,
  };
}

/** Connect, authenticate, SELECT 1, disconnect; the client is ended whatever happens. */
async function session(config: pg.ClientConfig): Promise<void> {
  const client = new pg.Client(config);
  client.on('error', () => {}); // a late socket error after end() must not crash the bench; connect/query errors still reject
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => {});
  }
}
