// Test setup for the OIDC pages without a database: a config file loaded the
// way pgveil loads it (sealed client secret, the provider's CA as sso.oidc.ca),
// the portal serving only the OIDC routes, a handler that records the
// identities it is given, and a browser that signs in at the provider.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { AuditEvent, AuditSink } from '../../src/audit/record.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { startPortal, type PortalHandle } from '../../src/portal/server.js';
import { generateMasterKey } from '../../src/secrets/master-key.js';
import { seal } from '../../src/secrets/seal.js';
import type { IdentityHandler, SsoIdentity } from '../../src/sso/identity.js';
import { oidcLoginRoutes } from '../../src/sso/oidc-login.js';
import { rsaCert, type TestCert } from '../auth/test-certs.js';
import { capturingLogger, type LogLine } from '../helpers/harness.js';
import { Browser, type Page } from '../helpers/browser.js';
import { portalClient, type CodeFlowProvider } from '../helpers/oidc-code-provider.js';

export const publicUrl = 'https://portal.test';
export const callbackUrl = `${publicUrl}/sso/oidc/callback`;

export interface TestPortal {
  base: string;
  config: Config;
  cert: TestCert;
  identities: SsoIdentity[];
  audit: AuditEvent[];
  logs: LogLine[];
  browser(): Browser;
  close(): Promise<void>;
}

/** A handler that records the identity and answers a page naming the user; `refuse` names users it turns away. */
export function recordingHandler(identities: SsoIdentity[], refuse: Set<string> = new Set()): IdentityHandler {
  return async (identity) => {
    identities.push(identity);
    if (refuse.has(identity.user)) return { status: 403, html: 'this account has no database access' };
    return { status: 200, html: `signed in as ${identity.user}` };
  };
}

export async function startTestPortal(idp: CodeFlowProvider, opts: { claims?: string; refuse?: string[]; plainSecret?: boolean; now?: () => number } = {}): Promise<TestPortal> {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-oidc-'));
  const cert = rsaCert('pgveil test portal');
  const key = generateMasterKey();
  writeFileSync(join(dir, 'master.key'), `${key}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'portal.crt'), cert.certPem);
  writeFileSync(join(dir, 'portal.key'), cert.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'idp-ca.pem'), idp.cert.certPem);
  writeFileSync(join(dir, 'users.yaml'), 'organizations: { acme: {} }\nusers: {}\n');
  writeFileSync(join(dir, 'policy.yaml'), 'defaults: { unlistedRelations: allow }\ntables: {}\n');
  const secret = opts.plainSecret ? portalClient.secret : seal(portalClient.secret, Buffer.from(key, 'base64'));
  writeFileSync(join(dir, 'pgveil.yaml'), `tls: { mode: require, cert: portal.crt, key: portal.key }
upstream: { host: 127.0.0.1, database: analytics, user: svc }
users: users.yaml
policy: policy.yaml
secrets: { masterKeyFile: master.key }
portal: { host: 127.0.0.1, port: 0, tls: { cert: portal.crt, key: portal.key }, publicUrl: "${publicUrl}" }
sso:
  oidc: { issuer: "${idp.issuer}", clientId: ${portalClient.id}, clientSecret: "${secret}", ca: idp-ca.pem${opts.claims ? `, claims: ${opts.claims}` : ''} }
`);
  const config = loadConfig(join(dir, 'pgveil.yaml'));
  const identities: SsoIdentity[] = [];
  const audit: AuditEvent[] = [];
  const sink: AuditSink = { record: (e) => { audit.push(e); }, statements: 'none', blocked: () => false };
  const { logger, lines } = capturingLogger();
  const routes = oidcLoginRoutes(config, { onIdentity: recordingHandler(identities, new Set(opts.refuse)), audit: sink, logger, now: opts.now });
  const portal: PortalHandle = await startPortal(config.portal!, routes, logger);
  const base = `https://127.0.0.1:${portal.port}`;
  return {
    base, config, cert, identities, audit, logs: lines,
    browser: () => new Browser([cert.certPem, idp.cert.certPem], { 'portal.test': base }),
    close: () => portal.close(),
  };
}

/**
 * Starts a login on the portal and signs in at the provider as `login`;
 * returns the provider's redirect to the portal's callback (not followed).
 */
export async function signInAtProvider(browser: Browser, login: string): Promise<string> {
  const start = await browser.request(`${publicUrl}/sso/oidc/start`);
  assert.is(start.status, 303, `start: ${start.body}`);
  const loginForm = await browser.follow(String(start.headers.location));
  assert.match(loginForm.body, /name="login"/, 'the provider shows its login form');
  const stopAtPortal = (location: string) => location.startsWith(callbackUrl);
  const consent = await browser.submitForm(loginForm, { login, password: 'anything' }, stopAtPortal);
  const toPortal = isRedirectToPortal(consent) ? consent : await browser.submitForm(consent, {}, stopAtPortal);
  assert.ok(isRedirectToPortal(toPortal), `the provider sends the browser back to the portal: ${toPortal.status} ${toPortal.body.slice(0, 300)}`);
  return String(toPortal.headers.location);
}

function isRedirectToPortal(page: Page): boolean {
  return page.status >= 300 && page.status < 400 && String(page.headers.location ?? '').startsWith(callbackUrl);
}

/** The sso_login records of sign-ins the OIDC pages turned down (refused or error). */
export function failures(portal: TestPortal): Array<Extract<AuditEvent, { event: 'sso_login' }>> {
  return portal.audit.filter((e): e is Extract<AuditEvent, { event: 'sso_login' }> => e.event === 'sso_login' && e.outcome !== 'issued');
}
