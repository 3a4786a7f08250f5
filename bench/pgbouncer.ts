// PgBouncer in front of the harness's PostgreSQL, for the benches that compare
// against it: session pooling (the same one-server-connection-per-client
// shape as pgveil), SCRAM from a plain-text userlist. Installed by
// `bash scripts/install-bench-tools.sh`; undefined when it is not.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../src/demo/embedded-postgres.js';

export interface PgBouncer {
  /** libpq environment for clients (PGHOST … PGSSLMODE). */
  env: NodeJS.ProcessEnv;
  port: number;
  /** Its process id, for reading its CPU time. */
  pid: number;
  stop(): void;
}

export const bouncerUser = { user: 'bench', password: 'bench-password' };

export async function startPgBouncer(upstream: { port: number; user: string; password: string }, poolSize: number): Promise<PgBouncer | undefined> {
  const found = await new Promise<boolean>((resolve) => {
    const probe = spawn('pgbouncer', ['--version']);
    probe.on('error', () => resolve(false));
    probe.on('close', (code) => resolve(code === 0));
  });
  if (!found) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-bench-pgbouncer-'));
  chmodSync(dir, 0o777); // as root PgBouncer runs as the postgres user (-u), which must write its log here
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(join(dir, 'userlist.txt'), `"${bouncerUser.user}" "${bouncerUser.password}"\n`, { mode: 0o644 });
  writeFileSync(ini, [
    '[databases]',
    `analytics = host=127.0.0.1 port=${upstream.port} dbname=analytics user=${upstream.user} password=${upstream.password}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1', `listen_port = ${port}`, 'unix_socket_dir =',
    'auth_type = scram-sha-256', `auth_file = ${join(dir, 'userlist.txt')}`,
    'pool_mode = session', `default_pool_size = ${poolSize}`, `max_client_conn = ${Math.max(200, poolSize * 2)}`,
    'ignore_startup_parameters = extra_float_digits',
    `logfile = ${join(dir, 'pgbouncer.log')}`, `pidfile = ${join(dir, 'pgbouncer.pid')}`,
  ].join('\n') + '\n', { mode: 0o644 });
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', ini] : [ini];
  const child: ChildProcess = spawn('pgbouncer', args, { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) { // ready when it accepts connections
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    env: { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: bouncerUser.user, PGPASSWORD: bouncerUser.password, PGDATABASE: 'analytics', PGSSLMODE: 'disable' },
    port,
    pid: child.pid!,
    stop: () => { child.kill('SIGTERM'); },
  };
}
