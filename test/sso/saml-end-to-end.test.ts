// SAML login end to end: a real pgveil (its portal started from the config,
// as `pgveil serve` does) on the harness's PostgreSQL, a test IdP that signs
// with its own key, a fetch-driven browser through start → IdP → ACS, and
// the database password the page shows used with pg over TLS, where the
// person's org filter applies. Refused responses and refused people get no
// password, and the audit log says why without any SAML content.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { psql, waitFor } from '../helpers/run.js';
import { startSamlIdp, type SamlIdp } from '../helpers/saml-idp.js';
import { rsaCert } from '../auth/test-certs.js';
import { ssoPolicy, writeSsoConfig, orgsSeen, passwordOnPage } from './sso-fixture.js';
import { samlBrowser, type SamlBrowser } from './saml-browser.js';
import { trustingFetch } from '../reset/portal-fetch.js';

const PUBLIC_URL = 'https://127.0.0.1:8443';
const ENTITY_ID = 'https://pgveil.test/saml';

let h: Harness;
let idp: SamlIdp;
let proxy: ProxyHandle;
let browser: SamlBrowser;
const auditFile = () => join(h.dir, 'audit-saml.jsonl');
const records = () => (existsSync(auditFile()) ? readFileSync(auditFile(), 'utf8') : '').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const has = (want: Record<string, unknown>) => records().some((r) => Object.entries(want).every(([k, v]) => r[k] === v));

test.before(async () => {
  idp = await startSamlIdp();
  h = await startHarness({ tlsMode: 'prefer', policyYaml: ssoPolicy });
  writeFileSync(join(h.dir, 'idp.crt'), idp.cert.certPem);
  const oidcOnly = writeSsoConfig(h, { audit: 'audit-saml.jsonl' });
  // The shared fixture writes an OIDC `sso:` line; these tests use SAML with the org and groups attributes Okta would send.
  const samlLine = `sso: { saml: { entryPoint: "${idp.entryPoint}", issuer: "${ENTITY_ID}", idpCert: idp.crt, attributes: { user: email, org: organization, groups: memberOf } } }`;
  writeFileSync(oidcOnly, readFileSync(oidcOnly, 'utf8').replace(/^sso: .*$/m, samlLine));
  proxy = await startProxy({ configFile: oidcOnly, logger: silentLogger });
  const portalCert = { certPem: readFileSync(join(h.dir, 'portal.crt'), 'utf8'), keyPem: '', der: Buffer.alloc(0) };
  browser = await samlBrowser(portalCert, `https://127.0.0.1:${proxy.portalPort}`, PUBLIC_URL, idp.tls);
});
test.after(async () => { await proxy?.close(); await h?.close(); await idp?.close(); });


const orgsSeenAs = (user: string, password: string) => orgsSeen(h, proxy.port, user, password);

test('a SAML login shows a database password that logs in with pg over TLS, filtered to the org the assertion named', async () => {
  idp.next = { nameID: 'zoe@globex.com', attributes: { email: 'zoe@globex.com', organization: 'globex', memberOf: ['analysts'] } };
  const res = await browser.login();
  const html = await res.text();
  assert.is(res.status, 200, html);
  const password = passwordOnPage(html);
  assert.ok(password, 'the page shows the password');
  assert.equal(await orgsSeenAs('zoe@globex.com', password!), ['globex']);
  assert.equal(await orgsSeenAs('zoe@globex.com', `${password!}x`), { code: '28P01', message: 'password authentication failed for user "zoe@globex.com"' });
  await waitFor('the sso_login and auth records', () => has({ event: 'sso_login', user: 'zoe@globex.com', org: 'globex', via: 'saml', outcome: 'issued' })
    && has({ event: 'auth', user: 'zoe@globex.com', outcome: 'success', method: 'sso' }));
  assert.not.ok(readFileSync(auditFile(), 'utf8').includes(password!), 'the audit log never holds the password');
});

test('the groups from the assertion apply: an auditor sees every org, with psql over TLS', async () => {
  idp.next = { nameID: 'abe@acme.com', attributes: { email: 'abe@acme.com', organization: 'acme', memberOf: ['auditors', 'staff'] } };
  const html = await (await browser.login()).text();
  const password = passwordOnPage(html);
  assert.ok(password, html);
  const conninfo = `host=127.0.0.1 port=${proxy.port} user=abe@acme.com dbname=analytics sslmode=verify-ca sslrootcert=${h.caFile}`;
  const out = await psql(conninfo, 'select org_id from crm.employees order by id', password!);
  assert.is(out.status, 0, out.stderr);
  assert.equal(out.stdout.trim().split('\n'), ['acme', 'globex']);
});

test('a person whose org users.yaml does not list is refused by the handler: 403 and no password', async () => {
  idp.next = { nameID: 'eve@initech.com', attributes: { email: 'eve@initech.com', organization: 'initech' } };
  const res = await browser.login();
  const html = await res.text();
  assert.is(res.status, 403);
  assert.is(passwordOnPage(html), undefined);
  await waitFor('the refused sso_login record', () => has({ event: 'sso_login', user: 'eve@initech.com', via: 'saml', outcome: 'refused' }));
});

test('a response signed by another key gets no password, and the audit record says why without SAML content', async () => {
  idp.next = { nameID: 'zoe@globex.com', attributes: { email: 'zoe@globex.com', organization: 'globex' }, signer: rsaCert('forger') };
  const res = await browser.login();
  assert.is(res.status, 400);
  assert.is(passwordOnPage(await res.text()), undefined);
  await waitFor('the refused record', () => has({ event: 'sso_login', via: 'saml', outcome: 'refused', reason: 'signature' }));
  const text = readFileSync(auditFile(), 'utf8');
  assert.not.ok(/Assertion|SAMLResponse|BEGIN CERTIFICATE/.test(text), 'no SAML content in the audit log');
});

test('the portal serves the SAML metadata and the sign-in page links to the SAML login', async () => {
  const get = await trustingFetch({ certPem: readFileSync(join(h.dir, 'portal.crt'), 'utf8'), keyPem: '', der: Buffer.alloc(0) });
  const metadata = await get(`https://127.0.0.1:${proxy.portalPort}/sso/saml/metadata`);
  assert.is(metadata.headers.get('content-type'), 'application/samlmetadata+xml');
  assert.match(await metadata.text(), `entityID="${ENTITY_ID}"`);
  assert.match(await (await get(`https://127.0.0.1:${proxy.portalPort}/`)).text(), '/sso/saml/start');
});

test.run();
