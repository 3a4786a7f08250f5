// Under `workers: 2` the primary serves the portal and its OIDC pages: a
// sign-in at a real provider through `pgveil serve` (a child process) gives
// a password both workers accept, with the org filter the provider proved.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seal } from '../../src/secrets/seal.js';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { serveChild } from '../helpers/run.js';
import { Browser } from '../helpers/browser.js';
import { portalClient, startCodeFlowProvider, type CodeFlowProvider } from '../helpers/oidc-code-provider.js';
import { rsaCert } from '../auth/test-certs.js';
import { ssoPolicy, orgsSeen, passwordOnPage } from './sso-fixture.js';
import { callbackUrl, publicUrl, signInAtProvider } from './oidc-portal.js';

let h: Harness;
let idp: CodeFlowProvider;
test.before(async () => {
  idp = await startCodeFlowProvider({ redirectUri: callbackUrl, people: { 'wes@globex.com': { email: 'wes@globex.com', org: 'globex' } } });
  h = await startHarness({ tlsMode: 'prefer', policyYaml: ssoPolicy });
});
test.after(async () => { await h?.close(); await idp?.close(); });

test("workers: 2 — the primary's OIDC sign-in issues a password both workers accept, filtered to the provider's org", async () => {
  const portalCert = rsaCert('pgveil portal');
  writeFileSync(join(h.dir, 'portal.crt'), portalCert.certPem);
  writeFileSync(join(h.dir, 'portal.key'), portalCert.keyPem, { mode: 0o600 });
  writeFileSync(join(h.dir, 'idp-ca.pem'), idp.cert.certPem);
  const key = Buffer.from(readFileSync(join(h.dir, 'master.key'), 'utf8').trim(), 'base64');
  const [port, portalPort] = [await freePort(), await freePort()];
  const text = readFileSync(h.configFile, 'utf8').replace('listen: { host: 127.0.0.1, port: 0 }', `listen: { host: 127.0.0.1, port: ${port} }`);
  assert.ok(text.includes(`port: ${port}`));
  const configFile = join(h.dir, 'pgveil-oidc-workers.yaml');
  writeFileSync(configFile, `${text.trimEnd()}
workers: 2
portal: { host: 127.0.0.1, port: ${portalPort}, tls: { cert: portal.crt, key: portal.key }, publicUrl: "${publicUrl}" }
sso: { oidc: { issuer: "${idp.issuer}", clientId: ${portalClient.id}, clientSecret: "${seal(portalClient.secret, key)}", ca: idp-ca.pem } }
`);
  const serve = await serveChild(configFile, 'pgveil workers listening');
  try {
    assert.match(serve.output(), /"msg":"portal listening"[^\n]*"OIDC sign-in"/);
    const browser = new Browser([portalCert.certPem, idp.cert.certPem], { 'portal.test': `https://127.0.0.1:${portalPort}` });
    const page = await browser.request(await signInAtProvider(browser, 'wes@globex.com'));
    assert.is(page.status, 200, page.body);
    const password = passwordOnPage(page.body);
    assert.ok(password, 'the page shows a password');
    // Consecutive connections alternate between the workers.
    for (let i = 0; i < 2; i++) assert.equal(await orgsSeen(h, port, 'wes@globex.com', password), ['globex']);
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
});

test.run();
