// SAML login pages on a real HTTPS portal against a test IdP that signs with
// xml-crypto; node-saml checks each response. The identity handler here only
// records what reaches it (the handler that issues database passwords is
// tested end to end in saml-end-to-end.test.ts). Each bad response is refused
// with the same "start again" page, nothing reaches the handler, and the
// audit record names the reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import type { AuditEvent, AuditSink } from '../../src/audit/record.js';
import type { Config } from '../../src/config/types.js';
import { silentLogger } from '../../src/observe/log.js';
import { startPortal, type PortalHandle } from '../../src/portal/server.js';
import type { SsoIdentity } from '../../src/sso/identity.js';
import { samlLoginRoutes, SAML_MAX_BODY_BYTES } from '../../src/sso/saml-login.js';
import { rsaCert } from '../auth/test-certs.js';
import { trustingFetch } from '../reset/portal-fetch.js';
import { startSamlIdp, type SamlIdp } from '../helpers/saml-idp.js';
import { samlBrowser, type SamlBrowser } from './saml-browser.js';

const PUBLIC_URL = 'https://portal.test';
const ISSUER = 'https://portal.test/pgveil';
const dir = mkdtempSync(join(tmpdir(), 'pgveil-saml-'));
const portalCert = rsaCert('127.0.0.1');
writeFileSync(join(dir, 'portal.crt'), portalCert.certPem);
writeFileSync(join(dir, 'portal.key'), portalCert.keyPem);

let idp: SamlIdp;
const identities: SsoIdentity[] = [];
const events: AuditEvent[] = [];
const audit: AuditSink = { record: (e) => { events.push(e); }, statements: 'none', blocked: () => false };
const portals: PortalHandle[] = [];
let clockOffset = 0;

/** A portal serving the SAML pages with these attribute names; returns a browser for it. */
async function portalWith(attributes = { user: 'email', org: 'org', groups: 'groups' }, publicUrl = PUBLIC_URL, idpCert = join(dir, 'idp.crt')): Promise<SamlBrowser> {
  const config = {
    portal: { host: '127.0.0.1', port: 0, tls: { cert: join(dir, 'portal.crt'), key: join(dir, 'portal.key') }, publicUrl, credentialMinutes: 480 },
    sso: { saml: { entryPoint: idp.entryPoint, issuer: ISSUER, idpCert, attributes } },
  } as unknown as Config;
  const routes = samlLoginRoutes(config, {
    audit,
    logger: silentLogger,
    now: () => Date.now() + clockOffset,
    onIdentity: async (identity) => { identities.push(identity); return { status: 200, html: `welcome ${identity.user}` }; },
  });
  const portal = await startPortal(config.portal!, routes, silentLogger);
  portals.push(portal);
  return samlBrowser(portalCert, `https://127.0.0.1:${portal.port}`, publicUrl.replace(/\/+$/, ''), idp.tls);
}

let browser: SamlBrowser;
const ada = { nameID: 'ada@acme.com', attributes: { email: 'ada@acme.com', org: 'acme', groups: ['analysts', 'finance'] } };

test.before(async () => {
  idp = await startSamlIdp();
  writeFileSync(join(dir, 'idp.crt'), idp.cert.certPem);
  browser = await portalWith();
});
test.after(async () => { for (const p of portals) await p.close(); await idp?.close(); });
test.before.each(() => { idp.next = ada; identities.length = 0; events.length = 0; });

/** Asserts the "start again" page, that nothing reached the handler, and the audited reason. */
async function assertRefused(res: Response, reason: string): Promise<void> {
  const body = await res.text();
  assert.is(res.status, 400, body);
  assert.match(body, /Start again/);
  assert.not.match(body, /Assertion|signature|InResponseTo|audience|<saml/i, 'no XML or detail echoed');
  assert.match(res.headers.get('set-cookie') ?? '', /pgveil_saml_request=; .*Max-Age=0/);
  assert.equal(identities, []);
  assert.equal(events, [{ event: 'sso_login', via: 'saml', outcome: 'refused', reason, address: '127.0.0.1' }]);
}

test('metadata names the entity id and the ACS URL, as application/samlmetadata+xml', async () => {
  const get = await trustingFetch(portalCert);
  const res = await get(`https://127.0.0.1:${portals[0].port}/sso/saml/metadata`);
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), 'application/samlmetadata+xml');
  const xml = await res.text();
  assert.match(xml, `entityID="${ISSUER}"`);
  assert.match(xml, `Location="${PUBLIC_URL}/sso/saml/acs"`);
  assert.match(xml, /Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"/);
  assert.match(xml, /WantAssertionsSigned="true"/);
});

test('start redirects to the IdP with a deflated AuthnRequest and sets a cross-site, HttpOnly, Secure request cookie', async () => {
  await browser.start();
  const seen = idp.requests[idp.requests.length - 1];
  assert.match(seen.xml, /<samlp:AuthnRequest /);
  assert.is(seen.acsUrl, `${PUBLIC_URL}/sso/saml/acs`);
  assert.is(seen.issuer, ISSUER);
  assert.is(browser.cookie, `pgveil_saml_request=${seen.id}`);
});

test('a signed assertion for a started login reaches the handler with user, org and groups', async () => {
  const res = await browser.login();
  assert.is(res.status, 200);
  assert.is(await res.text(), 'welcome ada@acme.com');
  assert.match(res.headers.get('set-cookie') ?? '', /pgveil_saml_request=; .*Max-Age=0/);
  assert.equal(identities, [{ user: 'ada@acme.com', org: 'acme', groups: ['analysts', 'finance'], via: 'saml' }]);
  assert.equal(events, []);
});

test('a response signed as a whole with a signed assertion inside is accepted', async () => {
  idp.next = { ...ada, sign: 'both' };
  assert.is((await browser.login()).status, 200);
  assert.is(identities.length, 1);
});

test('without org and groups attributes the identity has no org and no groups', async () => {
  idp.next = { nameID: 'bob@acme.com', attributes: { email: 'bob@acme.com' } };
  assert.is((await browser.login()).status, 200);
  assert.equal(identities, [{ user: 'bob@acme.com', org: undefined, groups: [], via: 'saml' }]);
});

test('attributes.user: nameID takes the user from the Subject NameID', async () => {
  const byNameId = await portalWith({ user: 'nameID', org: 'org', groups: 'groups' });
  idp.next = { nameID: 'carol@acme.com', attributes: { email: 'someone-else@acme.com', org: 'acme' } };
  assert.is((await byNameId.login()).status, 200);
  assert.equal(identities, [{ user: 'carol@acme.com', org: 'acme', groups: [], via: 'saml' }]);
});

test('behind a publicUrl path (reverse proxy), the ACS URL, the cookie path and the start-again link carry it', async () => {
  const prefixed = await portalWith(undefined, 'https://portal.test/db/');
  const { samlResponse } = await prefixed.start();
  assert.is(idp.requests[idp.requests.length - 1].acsUrl, 'https://portal.test/db/sso/saml/acs');
  assert.is(prefixed.setCookie.split('; ').find((a) => a.startsWith('Path=')), 'Path=/db/sso/saml');
  assert.is((await prefixed.post(samlResponse)).status, 200);
  await prefixed.start();
  const refused = await prefixed.post('', { body: 'SAMLResponse=' });
  assert.match(await refused.text(), 'href="/db/sso/saml/start"');
  assert.match(refused.headers.get('set-cookie') ?? '', /Path=\/db\/sso\/saml; Max-Age=0/);
});

test('idpCert is read at each login: a new certificate applies without a restart, old and new both verify, an unusable file is an error', async () => {
  const file = join(dir, 'idp-rotating.crt');
  const nextIdpCert = rsaCert('next idp key').certPem;
  writeFileSync(file, nextIdpCert);
  const rotating = await portalWith(undefined, PUBLIC_URL, file);
  await assertRefused(await rotating.login(), 'signature');
  events.length = 0;
  writeFileSync(file, nextIdpCert + idp.cert.certPem);
  assert.is((await rotating.login()).status, 200);
  identities.length = 0;
  writeFileSync(file, 'not a certificate');
  const res = await rotating.login();
  assert.is(res.status, 400);
  assert.equal(identities, []);
  assert.equal(events, [{ event: 'sso_login', via: 'saml', outcome: 'error', reason: 'idp_cert', address: '127.0.0.1' }]);
});

test('an unsigned response is refused', async () => {
  idp.next = { ...ada, sign: 'none' };
  await assertRefused(await browser.login(), 'signature');
});

test('a response signed by another key is refused', async () => {
  idp.next = { ...ada, signer: rsaCert('someone else') };
  await assertRefused(await browser.login(), 'signature');
});

test('a signed response around an unsigned assertion is refused (the assertion itself must be signed)', async () => {
  idp.next = { ...ada, sign: 'response' };
  await assertRefused(await browser.login(), 'signature');
});

test('a replayed response is refused (its request id was taken by the first post)', async () => {
  const { samlResponse } = await browser.start();
  assert.is((await browser.post(samlResponse)).status, 200);
  identities.length = 0;
  await assertRefused(await browser.post(samlResponse), 'in_response_to');
});

test('a replayed response is refused also when only the Response (not the subject confirmation) names the request', async () => {
  idp.next = { ...ada, subjectInResponseTo: false };
  const { samlResponse } = await browser.start();
  assert.is((await browser.post(samlResponse)).status, 200);
  identities.length = 0;
  await assertRefused(await browser.post(samlResponse), 'in_response_to');
});

test('one response posted five times at once is accepted once', async () => {
  idp.next = { ...ada, subjectInResponseTo: false };
  const { samlResponse } = await browser.start();
  const answers = await Promise.all([1, 2, 3, 4, 5].map(() => browser.post(samlResponse)));
  assert.equal(answers.map((r) => r.status).sort(), [200, 400, 400, 400, 400]);
  assert.is(identities.length, 1);
  assert.equal(events.map((e) => e.event === 'sso_login' && e.reason), ['in_response_to', 'in_response_to', 'in_response_to', 'in_response_to']);
});

test('a response for another audience is refused', async () => {
  idp.next = { ...ada, audience: 'https://other-app.test' };
  await assertRefused(await browser.login(), 'audience');
});

test('an assertion for another service (SubjectConfirmation Recipient not this ACS URL) is refused', async () => {
  idp.next = { ...ada, recipient: 'https://other-app.test/acs' };
  await assertRefused(await browser.login(), 'recipient');
});

test('an assertion without a Recipient is refused', async () => {
  idp.next = { ...ada, recipient: null };
  await assertRefused(await browser.login(), 'recipient');
});

test('an expired assertion is refused', async () => {
  idp.next = { ...ada, shiftMs: -20 * 60_000 };
  await assertRefused(await browser.login(), 'expired');
});

test('an assertion not yet valid is refused', async () => {
  idp.next = { ...ada, shiftMs: 20 * 60_000 };
  await assertRefused(await browser.login(), 'expired');
});

test('an unsolicited response (no InResponseTo) is refused', async () => {
  idp.next = { ...ada, inResponseTo: null };
  await assertRefused(await browser.login(), 'in_response_to');
});

test('a response to a request this portal never made is refused', async () => {
  idp.next = { ...ada, inResponseTo: '_00112233445566778899aabbccddeeff00112233' };
  await assertRefused(await browser.login(), 'in_response_to');
});

test('a login started longer ago than the request lifetime is refused', async () => {
  const { samlResponse } = await browser.start();
  clockOffset += 11 * 60_000;
  try {
    await assertRefused(await browser.post(samlResponse), 'in_response_to');
  } finally { clockOffset = 0; }
});

test('signature wrapping: a second, unsigned assertion beside the signed one is refused', async () => {
  idp.next = { ...ada, wrap: { how: 'beside', as: 'root@acme.com' } };
  await assertRefused(await browser.login(), 'signature');
});

test('signature wrapping: an unsigned assertion holding the signed one inside is refused', async () => {
  idp.next = { ...ada, wrap: { how: 'nested', as: 'root@acme.com' } };
  await assertRefused(await browser.login(), 'signature');
});

test('an error status from the IdP (no assertion) is refused without showing its message', async () => {
  idp.next = { ...ada, status: 'urn:oasis:names:tc:SAML:2.0:status:Responder' };
  const res = await browser.login();
  assert.not.match(await res.clone().text(), /user not assigned|script/);
  await assertRefused(res, 'idp_status');
});

test('an assertion without the user attribute is refused', async () => {
  idp.next = { nameID: 'ada@acme.com', attributes: { org: 'acme' } };
  await assertRefused(await browser.login(), 'missing_user');
});

test('a user attribute with several values is refused', async () => {
  idp.next = { nameID: 'ada@acme.com', attributes: { email: ['ada@acme.com', 'root@acme.com'] } };
  await assertRefused(await browser.login(), 'bad_attribute');
});

test('a response posted without the request cookie (another browser) is refused', async () => {
  const { samlResponse } = await browser.start();
  await assertRefused(await browser.post(samlResponse, { withCookie: false }), 'no_request');
});

test("a valid response posted with another login's cookie is refused, and is used up", async () => {
  idp.next = { ...ada, subjectInResponseTo: false };
  const victim = await browser.start();
  const attacker = await portalBrowserSharingPortal();
  await attacker.start();
  await assertRefused(await attacker.post(victim.samlResponse), 'other_browser');
  events.length = 0;
  await assertRefused(await browser.post(victim.samlResponse), 'in_response_to');
});

test('a post without SAMLResponse is refused', async () => {
  await browser.start();
  await assertRefused(await browser.post('', { body: 'RelayState=x' }), 'no_response');
});

test('XML that is not a SAML response is refused (it answers no request)', async () => {
  await browser.start();
  await assertRefused(await browser.post(Buffer.from('<not-saml/>').toString('base64')), 'in_response_to');
});

test('bytes that are not XML are refused', async () => {
  await browser.start();
  await assertRefused(await browser.post(deflateRawSync('x').toString('base64')), 'malformed');
});

test(`a body over ${SAML_MAX_BODY_BYTES} bytes is refused with 413`, async () => {
  await browser.start();
  const res = await browser.post('', { body: `SAMLResponse=${'A'.repeat(SAML_MAX_BODY_BYTES + 1)}` });
  assert.is(res.status, 413);
  assert.equal(identities, []);
});

/** A second browser (its own cookie) on the first portal. */
function portalBrowserSharingPortal(): Promise<SamlBrowser> {
  return samlBrowser(portalCert, `https://127.0.0.1:${portals[0].port}`, PUBLIC_URL, idp.tls);
}

test.run();
