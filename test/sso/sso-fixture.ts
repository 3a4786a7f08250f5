// A pgveil with `portal` and `sso` configured on the harness's PostgreSQL,
// and the SSO handler the sign-in pages call, run in this process with
// identities the test makes (no identity provider is needed to check what
// happens after one proved who someone is).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { rsaCert } from '../auth/test-certs.js';
import { clientConfig, loginError, type Harness } from '../helpers/harness.js';
import { loadConfig } from '../../src/config/load.js';
import { AuditLog } from '../../src/audit/writer.js';
import { silentLogger, type Logger } from '../../src/observe/log.js';
import { ssoIdentityHandler } from '../../src/portal/start.js';
import type { SsoIdentity } from '../../src/sso/identity.js';
import type { PortalRequest } from '../../src/portal/server.js';

/** The policy of these tests: each org sees its own employees, except the auditors group. */
export const ssoPolicy = `tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
        except: { groups: [auditors] }
`;

/**
 * Writes `pgveil-sso.yaml` (or `name`) beside the harness's config: portal (publicUrl on
 * 127.0.0.1, so the page's psql line reaches this pgveil), sso, and an audit
 * file. `listenPort` 0 = ephemeral.
 */
export function writeSsoConfig(h: Harness, opts: { name?: string; listenPort?: number; portalPort?: number; credentialMinutes?: number; audit: string; extra?: string }): string {
  if (!existsSync(join(h.dir, 'portal.crt'))) { // one certificate per harness: a running portal keeps the one it read
    const cert = rsaCert('127.0.0.1');
    writeFileSync(join(h.dir, 'portal.crt'), cert.certPem);
    writeFileSync(join(h.dir, 'portal.key'), cert.keyPem, { mode: 0o600 });
  }
  let text = readFileSync(h.configFile, 'utf8');
  if (opts.listenPort !== undefined) text = text.replace('listen: { host: 127.0.0.1, port: 0 }', `listen: { host: 127.0.0.1, port: ${opts.listenPort} }`);
  const file = join(h.dir, opts.name ?? 'pgveil-sso.yaml');
  writeFileSync(file, `${text.trimEnd()}
portal: { host: 127.0.0.1, port: ${opts.portalPort ?? 0}, tls: { cert: portal.crt, key: portal.key }, publicUrl: "https://127.0.0.1:8443/", credentialMinutes: ${opts.credentialMinutes ?? 480} }
sso: { oidc: { issuer: "https://idp.test/", clientId: pgveil, clientSecret: not-used-here } }
audit: { file: ${opts.audit} }
${opts.extra ?? ''}`);
  return file;
}

export interface SignIn { status: number; html: string; password?: string }

export interface TestIssuer {
  signIn(identity: Partial<SsoIdentity> & { user: string }): Promise<SignIn>;
  /** Audit records the handler wrote (its own file). */
  records(): Array<Record<string, unknown>>;
  auditText(): string;
  close(): Promise<void>;
}

/** The handler for `configFile`, with its own audit file (default `audit-portal.jsonl`) and clock. */
export async function testIssuer(h: Harness, configFile: string, opts: { now?: () => number; databasePort: number; logger?: Logger; audit?: string }): Promise<TestIssuer> {
  const config = loadConfig(configFile);
  const auditFile = join(h.dir, opts.audit ?? 'audit-portal.jsonl');
  const audit = await AuditLog.open({ file: auditFile, retentionDays: 30, statements: 'fingerprint', onFailure: 'block', syncMs: 0 }, { logger: silentLogger });
  const handler = ssoIdentityHandler(config, { audit, logger: opts.logger ?? silentLogger, now: opts.now, databasePort: opts.databasePort });
  const request: PortalRequest = { method: 'POST', path: '/sso/test', params: [], form: new URLSearchParams(), query: new URLSearchParams(), cookies: new Map(), address: '127.0.0.1' };
  const auditText = () => (existsSync(auditFile) ? readFileSync(auditFile, 'utf8') : '');
  return {
    async signIn(identity) {
      const answer = await handler({ groups: [], via: 'oidc', ...identity }, request);
      return { status: answer.status, html: answer.html, password: passwordOnPage(answer.html) };
    },
    auditText,
    records: () => auditText().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    close: () => audit.close(),
  };
}

/** The credentials in the state file (hashes and what they stand for). */
export function stateEntries(h: Harness): Array<Record<string, unknown>> {
  const file = join(h.dir, 'users.yaml.sso.json');
  if (!existsSync(file)) return [];
  return (JSON.parse(readFileSync(file, 'utf8')) as { credentials: Array<Record<string, unknown>> }).credentials;
}

/** The database password a sign-in result page shows. */
export function passwordOnPage(html: string): string | undefined {
  return /<input id="password" readonly value="([^"]+)"/.exec(html)?.[1];
}

/** Logs in over TLS to pgveil on `port`; the org ids of the employees the session sees, or the login error. */
export async function orgsSeen(h: Harness, port: number, user: string, password: string): Promise<string[] | { code?: string; message: string }> {
  let seen: string[] = [];
  const error = await loginError({ ...clientConfig(h, user), port, password, connectionTimeoutMillis: 10000 }, async (c) => {
    seen = (await c.query('select org_id from crm.employees order by id')).rows.map((r: { org_id: string }) => r.org_id);
  });
  return error ?? seen;
}
