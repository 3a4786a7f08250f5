// `pgveil demo`: a throw-away PostgreSQL with the sample CRM data, a freshly
// generated pgveil configuration and the proxy in front of it. Ready-to-paste
// psql lines go to stdout (easy to grep); progress and logs go to stderr.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, stringOption, UsageError } from './args.js';
import type { Command } from './main.js';
import { startEmbeddedPostgres, type RunningPostgres } from '../demo/embedded-postgres.js';
import { sampleDataSql, serviceRoleSql, SERVICE_ROLE } from '../demo/sample-data.js';
import { generatePassword, writeDemoFiles, type DemoFiles, type DemoUser } from '../demo/setup.js';
import { createLogger } from '../observe/log.js';
import { MASTER_KEY_ENV } from '../secrets/master-key.js';
import { startProxy } from '../session/server.js';
import { scrambleInstallSqlForConfig } from '../policy/scramble-install.js';

const DATABASE = 'analytics';
const USAGE = 'usage: pgveil demo [--port N] [--keep]';

function progress(msg: string): void {
  process.stderr.write(`pgveil demo: ${msg}\n`);
}

/** One POSIX shell word, always single-quoted so every printed line looks alike. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A libpq conninfo value, quoted when it holds a space, quote or backslash. */
function conninfoValue(v: string): string {
  return /^[^\s'\\]+$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function psqlLine(user: DemoUser, params: Record<string, string>): string {
  const conninfo = Object.entries(params).map(([k, v]) => `${k}=${conninfoValue(v)}`).join(' ');
  return `PGPASSWORD=${shellQuote(user.password)} psql ${shellQuote(conninfo)}`;
}

function banner(files: DemoFiles, proxy: { host: string; port: number }, pg: RunningPostgres): string {
  const base = { host: proxy.host, port: String(proxy.port), dbname: DATABASE };
  const lines = [
    '',
    `pgveil demo is running: pgveil on ${proxy.host}:${proxy.port} in front of PostgreSQL on ${pg.host}:${pg.port} (database ${DATABASE}).`,
    `demo directory: ${files.dir}`,
    '',
    'Connect as one of the demo users (paste a line into a shell):',
    '',
  ];
  for (const user of files.users) {
    lines.push(`# ${user.name}: org ${user.org}, groups ${user.groups.join(', ')}`);
    lines.push(psqlLine(user, { ...base, user: user.name, sslmode: 'require' }));
  }
  const first = files.users[0];
  lines.push(`# ${first.name} again, checking pgveil's certificate against the demo CA:`);
  lines.push(psqlLine(first, { ...base, user: first.name, sslmode: 'verify-full', sslrootcert: files.caCert }));
  lines.push(
    '',
    'Then try:',
    "  select current_user, current_setting('application_name'), version();",
    '  select * from crm.employees;   -- alice: acme rows, SSNs and e-mails masked, no salaries',
    '                                 -- hana (hr): acme rows with SSNs and salaries; bob: globex rows',
    '  select org_id, count(*) from crm.events group by 1;',
    '',
    'Press Ctrl-C to stop.',
    '',
  );
  return lines.join('\n');
}

/**
 * Resolves on the first SIGINT, SIGTERM or SIGHUP. A closed terminal (SIGHUP)
 * stops the demo too, so no master key is left behind in /tmp; policy edits
 * are still picked up, by the proxy's file watcher.
 */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      for (const s of STOP_SIGNALS) process.off(s, onSignal);
      resolve(sig);
    };
    for (const s of STOP_SIGNALS) process.on(s, onSignal);
  });
}

/** Resolves once nothing accepts connections on host:port any more. */
function portClosed(host: string, port: number): Promise<void> {
  return new Promise((resolve) => {
    const probe = () => {
      const socket = netConnect({ host, port });
      socket.once('connect', () => { socket.destroy(); setTimeout(probe, 100); });
      socket.once('error', () => { socket.destroy(); resolve(); });
    };
    probe();
  });
}

/**
 * Stops PostgreSQL. A Ctrl-C in a terminal reaches the whole process group,
 * postgres included; the helper's stop() then waits for an exit that already
 * happened, so the closed port counts as stopped too.
 */
async function stopPostgres(pg: RunningPostgres): Promise<void> {
  await Promise.race([pg.stop(), portClosed(pg.host, pg.port)]);
}

/** If the process ends any other way (a crash), still signal postgres: stop() sends SIGINT synchronously. */
function stopOnExit(pg: RunningPostgres): () => void {
  const onExit = () => { pg.stop().catch(() => {}); };
  process.once('exit', onExit);
  return () => process.off('exit', onExit);
}

async function loadSample(pg: RunningPostgres, servicePassword: string): Promise<void> {
  const admin = await pg.connect('postgres');
  try {
    await admin.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await admin.end();
  }
  const db = await pg.connect(DATABASE);
  try {
    await db.query(sampleDataSql());
    await db.query(serviceRoleSql({ database: DATABASE, password: servicePassword }));
  } finally {
    await db.end();
  }
}

function parsePort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new UsageError(`--port must be a port number (0-65535), got "${value}"`);
  return Number(value);
}

async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { port: 'value', keep: 'flag' });
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const listenPort = parsePort(stringOption(args, 'port'));
  const keep = args.options.has('keep');

  const cleanups: Array<() => Promise<void> | void> = [];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) {
      try { await step(); } catch (err) { progress(`cleanup: ${err instanceof Error ? err.message : String(err)}`); }
    }
    cleanups.length = 0;
  };
  const stopped = waitForSignal();
  let interrupted = false;
  void stopped.then(() => { interrupted = true; });

  try {
    const started = Date.now();
    progress('starting PostgreSQL…');
    const pg = await startEmbeddedPostgres();
    const forgetExitHook = stopOnExit(pg);
    cleanups.push(async () => { await stopPostgres(pg); forgetExitHook(); });

    progress(`loading the sample data into database ${DATABASE}…`);
    const servicePassword = generatePassword(32);
    await loadSample(pg, servicePassword);

    const dir = mkdtempSync(join(tmpdir(), 'pgveil-demo-'));
    cleanups.push(() => {
      if (keep) progress(`kept ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    });
    const files = writeDemoFiles(dir, {
      host: pg.host, port: pg.port, database: DATABASE, user: SERVICE_ROLE, password: servicePassword,
    }, { listenPort });

    // The environment's master key would win over the demo's own key file
    // and then fail to open the values the demo just sealed.
    if (process.env[MASTER_KEY_ENV]) {
      progress(`ignoring ${MASTER_KEY_ENV}: the demo uses its own master key`);
      delete process.env[MASTER_KEY_ENV];
    }
    progress('installing the scramble helpers upstream…');
    const superuser = await pg.connect(DATABASE);
    try {
      await superuser.query(scrambleInstallSqlForConfig(files.configFile));
    } finally {
      await superuser.end();
    }
    progress('starting pgveil…');
    const proxy = await startProxy({ configFile: files.configFile, logger: createLogger() });
    cleanups.push(() => proxy.close());
    if (interrupted) throw new Error('interrupted');
    progress(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    process.stdout.write(banner(files, proxy, pg) + '\n');
    const sig = await stopped;
    progress(`${sig}: stopping…`);
    await cleanup();
    return 0;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

export const command: Command = {
  summary: 'start an embedded Postgres with sample data and pgveil in front of it; print ready-to-paste psql lines',
  usage: USAGE,
  run,
};
