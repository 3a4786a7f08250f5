// pgveil as a child process of a bench, with the harness's config on fixed
// ports, so its memory (/proc/<pid>/status) and CPU are its own and not the
// bench's clients'. Also the /proc readers the memory benches share.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
  stop(): Promise<void>;
}

export interface PgveilProcessOptions {
  /** Serve the admin endpoint (/metrics) on a port of its own. */
  admin?: boolean;
  /** Node.js flags before the script (e.g. --expose-gc). */
  nodeArgs?: string[];
  /** More top-level config lines (writeConfig's form). */
  configLines?: string[];
}

export async function startPgveilProcess(h: Harness, opts: PgveilProcessOptions = {}): Promise<PgveilProcess> {
  const port = await freePort();
  const adminPort = opts.admin ? await freePort() : undefined;
  const configFile = writeConfig(h, [
    `listen: { host: 127.0.0.1, port: ${port} }`,
    ...(adminPort ? [`admin: { host: 127.0.0.1, port: ${adminPort} }`] : []),
    ...(opts.configLines ?? []),
  ]);
  const script = fileURLToPath(new URL('../../bin/pgveil.js', import.meta.url));
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), script, 'serve', '--config', configFile], {
    env: { ...process.env, PGVEIL_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForPort(port, child);
    if (adminPort) await waitForPort(adminPort, child);
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: child.pid!, port, adminPort, child, stop };
}

/** Resolves once something accepts TCP connections on the port (pgveil listens after loading its config and catalog). */
async function waitForPort(port: number, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`pgveil exited with code ${child.exitCode} before listening on ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pgveil did not listen on ${port} within ${timeoutMs} ms`);
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

/** The value of one unlabelled metric from pgveil's /metrics (prom-client's defaults carry the pgveil_ prefix). */
export async function metricValue(adminPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+-]+)`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}
