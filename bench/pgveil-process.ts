// pgveil as a child process of a bench (`pgveil serve` from this build, with
// the harness's config on fixed ports), so its memory (/proc/<pid>/status)
// and CPU (/proc/<pid>/stat) are its own and not the bench's clients'. Its
// log goes to a file next to the config (shown when it fails to start).
// Also the /proc and /metrics readers the memory benches share.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { writeConfig, type Harness } from '../test/helpers/harness.js';
import { freePort } from '../src/demo/embedded-postgres.js';

export interface PgveilProcess {
  pid: number;
  port: number;
  /** The admin server's port (GET /metrics), when asked for. */
  adminPort?: number;
  child: ChildProcess;
  logFile: string;
  /** Resolves with how the process ended (`exit 1`, `SIGKILL`) if it does. */
  exited: Promise<string>;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s; resolves when it is gone. */
  stop(): Promise<void>;
}

export interface PgveilProcessOptions {
  /** Serve the admin endpoint (/metrics) on a port of its own. */
  admin?: boolean;
  /** Node.js flags before the script (e.g. --expose-gc). */
  nodeArgs?: string[];
  /** More top-level config lines (writeConfig's form). */
  configLines?: string[];
  /** Log level (default `info`, as deployed: its cost is part of what is measured). */
  logLevel?: 'info' | 'warn';
  /** upstream.pool.maxIdle (default: the config's default). */
  poolMaxIdle?: number;
}

export async function startPgveilProcess(h: Harness, opts: PgveilProcessOptions = {}): Promise<PgveilProcess> {
  const port = await freePort();
  const adminPort = opts.admin ? await freePort() : undefined;
  const configFile = writeConfig(h, [
    `listen: { host: 127.0.0.1, port: ${port} }`,
    ...(adminPort ? [`admin: { host: 127.0.0.1, port: ${adminPort} }`] : []),
    ...(opts.configLines ?? []),
  ]);
  if (opts.poolMaxIdle !== undefined) {
    const text = readFileSync(configFile, 'utf8');
    if (!/^  connectTimeoutMs: \d+$/m.test(text)) throw new Error(`no upstream.connectTimeoutMs line in ${configFile}`);
    writeFileSync(configFile, text.replace(/^(  connectTimeoutMs: \d+)$/m, `$1\n  pool: { maxIdle: ${opts.poolMaxIdle}, idleTimeoutSeconds: 60 }`));
  }
  const logFile = configFile.replace(/\.yaml$/, '') + '.log';
  const log = openSync(logFile, 'a');
  // This build's CLI (bin/pgveil.js runs dist/, which may be missing or older than the source under test).
  const script = fileURLToPath(new URL('./pgveil-serve.js', import.meta.url));
  // PGVEIL_BENCH_PROFILE=dir writes a CPU profile of the proxy process there.
  const profile = process.env.PGVEIL_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PGVEIL_BENCH_PROFILE}`] : [];
  const child = spawn(process.execPath, [...profile, ...(opts.nodeArgs ?? []), script, 'serve', '--config', configFile], {
    env: { ...process.env, PGVEIL_LOG_LEVEL: opts.logLevel ?? 'info' }, stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `exit ${code}`)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForPort(port, child, logFile);
    if (adminPort) await waitForPort(adminPort, child, logFile);
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: child.pid!, port, adminPort, child, logFile, exited, stop };
}

/** Resolves once something accepts TCP connections on the port (pgveil listens after loading its config and catalog). */
async function waitForPort(port: number, child: ChildProcess, logFile: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`pgveil exited with code ${child.exitCode} before listening on ${port}; its log:\n${tail(logFile)}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pgveil did not listen on ${port} within ${timeoutMs} ms; its log:\n${tail(logFile)}`);
}

/** The last lines of a log file. */
export function tail(file: string, lines = 20): string {
  try { return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}

/** A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), in KiB; NaN when it cannot be read. */
export function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Memory of a process from /proc/<pid>/status, in MiB: VmHWM (peak resident) and VmRSS (resident now). */
export function processMemoryMiB(pid: number): { hwm: number; rss: number } {
  return { hwm: statusKb(pid, 'VmHWM') / 1024, rss: statusKb(pid, 'VmRSS') / 1024 };
}

/** The value of one unlabelled metric from pgveil's /metrics (prom-client's defaults carry the pgveil_ prefix). */
export async function metricValue(adminPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+-]+)`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}
