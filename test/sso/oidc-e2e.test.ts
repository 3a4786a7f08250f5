// OIDC sign-in end to end: a real OpenID provider, pgveil serving its portal
// (the OIDC pages wired to the real SSO handler) in front of a real
// PostgreSQL, a browser that signs in at the provider, and pg logging in over
// TLS with the password the result page shows. The person's org and groups,
// proved by the provider, drive the row filter; a person the handler refuses
// gets no password.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seal } from '../../src/secrets/seal.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { capturingLogger, startHarness, writeConfig, type Harness, type LogLine } from '../helpers/harness.js';
import { waitFor } from '../helpers/run.js';
import { Browser } from '../helpers/browser.js';
import { portalClient, startCodeFlowProvider, type CodeFlowProvider } from '../helpers/oidc-code-provider.js';
import { rsaCert, type TestCert } from '../auth/test-certs.js';
import { ssoPolicy, orgsSeen, passwordOnPage } from './sso-fixture.js';
import { callbackUrl, publicUrl, signInAtProvider } from './oidc-portal.js';

const people = {
  'zoe@acme.com': { email: 'zoe@acme.com', org: 'acme', groups: ['analysts'] },
  'ivy@globex.com': { email: 'ivy@globex.com', org: 'globex', groups: 'auditors' },
  'pat@initech.com': { email: 'pat@initech.com', org: 'initech', groups: ['analysts'] },
  'alice@acme.com': { email: 'alice@acme.com', org: 'globex' },
};

let h: Harness;
let idp: CodeFlowProvider;
let proxy: ProxyHandle;
let portalCert: TestCert;
let logs: LogLine[];
const auditFile = () => join(h.dir, 'audit-oidc.jsonl');
const records = () => (existsSync(auditFile()) ? readFileSync(auditFile(), 'utf8') : '').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const has = (want: Record<string, unknown>) => records().some((r) => Object.entries(want).every(([k, v]) => r[k] === v));

test.before(async () => {
  idp = await startCodeFlowProvider({ redirectUri: callbackUrl, people });
  h = await startHarness({ tlsMode: 'prefer', policyYaml: ssoPolicy });
  portalCert = rsaCert('pgveil portal');
  writeFileSync(join(h.dir, 'portal.crt'), portalCert.certPem);
  writeFileSync(join(h.dir, 'portal.key'), portalCert.keyPem, { mode: 0o600 });
  writeFileSync(join(h.dir, 'idp-ca.pem'), idp.cert.certPem);
  const key = Buffer.from(readFileSync(join(h.dir, 'master.key'), 'utf8').trim(), 'base64');
  const configFile = writeConfig(h, [
    `portal: { host: 127.0.0.1, port: 0, tls: { cert: portal.crt, key: portal.key }, publicUrl: "${publicUrl}" }`,
    `sso: { oidc: { issuer: "${idp.issuer}", clientId: ${portalClient.id}, clientSecret: "${seal(portalClient.secret, key)}", ca: idp-ca.pem } }`,
    'audit: { file: audit-oidc.jsonl }',
  ]);
  const captured = capturingLogger();
  logs = captured.lines;
  proxy = await startProxy({ configFile, logger: captured.logger });
});
test.after(async () => { await proxy?.close(); await h?.close(); await idp?.close(); });

const browser = () => new Browser([portalCert.certPem, idp.cert.certPem], { 'portal.test': `https://127.0.0.1:${proxy.portalPort}` });

/** Signs in as `login` through the provider; the result page. */
async function signIn(login: string): Promise<{ status: number; body: string; password?: string }> {
  const b = browser();
  const page = await b.request(await signInAtProvider(b, login));
  const password = passwordOnPage(page.body);
  return { status: page.status, body: page.body, password };
}

const orgsSeenAs = (user: string, password: string) => orgsSeen(h, proxy.port, user, password);

test('the portal sign-in page links to the OIDC sign-in', async () => {
  const page = await browser().request(`${publicUrl}/`);
  assert.is(page.status, 200);
  assert.match(page.body, /href="https:\/\/portal\.test\/sso\/oidc\/start"/);
});

test('a person signed in at the provider gets a password that logs in with pg over TLS, and their org filters the rows', async () => {
  const zoe = await signIn('zoe@acme.com');
  assert.is(zoe.status, 200, zoe.body);
  assert.ok(zoe.password, 'the page shows a password');
  assert.equal(await orgsSeenAs('zoe@acme.com', zoe.password!), ['acme']);
  // Another person of another org, in the group the policy exempts (a groups claim that is one string).
  const ivy = await signIn('ivy@globex.com');
  assert.equal(await orgsSeenAs('ivy@globex.com', ivy.password!), ['acme', 'globex']);
  // The password is that person's only.
  const foreign = await orgsSeenAs('ivy@globex.com', zoe.password!);
  assert.is((foreign as { code?: string }).code, '28P01');
  await waitFor('sso_login and auth records', () => has({ event: 'sso_login', user: 'zoe@acme.com', org: 'acme', via: 'oidc', outcome: 'issued' })
    && has({ event: 'auth', user: 'zoe@acme.com', outcome: 'success', method: 'sso' }));
  const text = readFileSync(auditFile(), 'utf8') + JSON.stringify(logs);
  assert.not.ok(text.includes(zoe.password!) || text.includes(ivy.password!), 'no password in the audit log or the log');
});

test('a person of an org users.yaml does not list gets no password (403) and the refusal is audited', async () => {
  const pat = await signIn('pat@initech.com');
  assert.is(pat.status, 403);
  assert.is(pat.password, undefined);
  await waitFor('the refusal record', () => has({ event: 'sso_login', user: 'pat@initech.com', via: 'oidc', outcome: 'refused' }));
});

test('a listed person whose provider org differs from users.yaml gets no password', async () => {
  const alice = await signIn('alice@acme.com');
  assert.is(alice.status, 403);
  assert.is(alice.password, undefined);
});

test('a bad callback through the running pgveil is refused and audited with the browser address', async () => {
  const page = await browser().request(`${callbackUrl}?code=stolen&state=guessed`);
  assert.is(page.status, 400);
  await waitFor('the refusal record', () => has({ event: 'sso_login', via: 'oidc', outcome: 'refused', reason: 'bad_state', detail: 'no_cookie', address: '127.0.0.1' }));
});

test.run();
