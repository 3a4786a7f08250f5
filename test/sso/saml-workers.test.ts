// Under `workers: 2` the primary serves the portal and its SAML pages: a
// login through `pgveil serve` (a child process) and the test IdP gives a
// password both workers accept, with the org filter the assertion named.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { serveChild } from '../helpers/run.js';
import { startSamlIdp, type SamlIdp } from '../helpers/saml-idp.js';
import { rsaCert } from '../auth/test-certs.js';
import { ssoPolicy, orgsSeen, passwordOnPage } from './sso-fixture.js';
import { samlBrowser } from './saml-browser.js';

const PUBLIC_URL = 'https://portal.test';

let h: Harness;
let idp: SamlIdp;
test.before(async () => {
  idp = await startSamlIdp();
  h = await startHarness({ tlsMode: 'prefer', policyYaml: ssoPolicy });
});
test.after(async () => { await h?.close(); await idp?.close(); });

test("workers: 2 — the primary's SAML login issues a password both workers accept, filtered to the assertion's org", async () => {
  const portalCert = rsaCert('127.0.0.1');
  writeFileSync(join(h.dir, 'portal.crt'), portalCert.certPem);
  writeFileSync(join(h.dir, 'portal.key'), portalCert.keyPem, { mode: 0o600 });
  writeFileSync(join(h.dir, 'idp.crt'), idp.cert.certPem);
  const [port, portalPort] = [await freePort(), await freePort()];
  const text = readFileSync(h.configFile, 'utf8').replace('listen: { host: 127.0.0.1, port: 0 }', `listen: { host: 127.0.0.1, port: ${port} }`);
  assert.ok(text.includes(`port: ${port}`));
  const configFile = join(h.dir, 'pgveil-saml-workers.yaml');
  writeFileSync(configFile, `${text.trimEnd()}
workers: 2
portal: { host: 127.0.0.1, port: ${portalPort}, tls: { cert: portal.crt, key: portal.key }, publicUrl: "${PUBLIC_URL}" }
sso: { saml: { entryPoint: "${idp.entryPoint}", issuer: pgveil-test, idpCert: idp.crt } }
`);
  const serve = await serveChild(configFile, 'pgveil workers listening');
  try {
    assert.match(serve.output(), /"msg":"portal listening"[^\n]*"SAML login"/);
    idp.next = { nameID: 'wes@globex.com', attributes: { email: 'wes@globex.com', org: 'globex' } };
    const browser = await samlBrowser(portalCert, `https://127.0.0.1:${portalPort}`, PUBLIC_URL, idp.tls);
    const page = await browser.login();
    const html = await page.text();
    assert.is(page.status, 200, `${html}\n${serve.output()}`);
    const password = passwordOnPage(html);
    assert.ok(password, 'the page shows a password');
    // Consecutive connections alternate between the workers.
    for (let i = 0; i < 2; i++) assert.equal(await orgsSeen(h, port, 'wes@globex.com', password), ['globex']);
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
});

test.run();
