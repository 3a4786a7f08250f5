// auth.oidc with an https JWKS URL behind a private CA (`auth.oidc.ca`), and
// a login whose client leaves while its token is being checked: the check's
// outcome must not be recorded as a success for a session that is gone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { startHarness, clientConfig, loginError, type Harness } from '../helpers/harness.js';
import { waitFor } from '../helpers/run.js';
import { rsaCert } from '../auth/test-certs.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { silentLogger } from '../../src/observe/log.js';

const issuer = 'https://idp.test/';
const audience = 'pgveil';
const zoe = { email: 'zoe@acme.com', org: 'acme', groups: ['analysts'] };

let h: Harness;
let jwksServer: Server;
let jwksUrl: string;
let privateKey: CryptoKey;
let jwksRequests = 0;
/** While set, JWKS requests wait for it (a slow identity provider). */
let gate: Promise<void> | undefined;
let openGate: () => void = () => {};
const proxies: ProxyHandle[] = [];

test.before(async () => {
  h = await startHarness();
  const keys = await generateKeyPair('RS256', { extractable: true });
  privateKey = keys.privateKey;
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] });
  const cert = rsaCert('127.0.0.1');
  writeFileSync(join(h.dir, 'idp-ca.pem'), cert.certPem);
  jwksServer = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    jwksRequests++;
    void (gate ?? Promise.resolve()).then(() => res.writeHead(200, { 'content-type': 'application/json' }).end(jwks));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `https://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
});
test.after(async () => {
  for (const p of proxies) await p.close();
  openGate();
  jwksServer.closeAllConnections();
  await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
  await h.close();
});

/** A proxy whose auth.oidc fetches the keys from the test's JWKS URL (`ca` line or none), auditing to `auditName`. */
async function proxyWith(caLine: string, auditName: string): Promise<ProxyHandle> {
  const oidc = `  oidc: { issuer: "${issuer}", audience: ${audience}, jwks: "${jwksUrl}",${caLine} claims: { user: email, org: org, groups: groups } }`;
  const config = readFileSync(h.configFile, 'utf8').replace(/^auth:$/m, `auth:\n${oidc}`) + `\naudit: { file: ${auditName} }\n`;
  assert.ok(config.includes('  oidc:'));
  const file = join(h.dir, `pgveil-${auditName}.yaml`);
  writeFileSync(file, config);
  const proxy = await startProxy({ configFile: file, logger: silentLogger, watch: false });
  proxies.push(proxy);
  return proxy;
}

const now = () => Math.floor(Date.now() / 1000);
const token = () => new SignJWT({ ...zoe }).setProtectedHeader({ alg: 'RS256', kid: 'k1' })
  .setIssuer(issuer).setAudience(audience).setIssuedAt(now()).setExpirationTime(now() + 600).sign(privateKey);

interface Rec { event: string; user?: string; outcome?: string; reason?: string; detail?: string; method?: string }
const records = (name: string): Rec[] => {
  const file = join(h.dir, name);
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Rec) : [];
};

// Runs first: the proxy's first JWKS fetch is the one held back.
test('a client that leaves while its token is checked is recorded as abandoned, never as a success', async () => {
  const proxy = await proxyWith(` ca: idp-ca.pem,`, 'audit-abandoned.jsonl');
  gate = new Promise<void>((resolve) => { openGate = resolve; });
  const before = jwksRequests;
  const c = new pg.Client({ ...clientConfig(h, zoe.email), port: proxy.port, password: await token(), connectionTimeoutMillis: 10000 });
  c.on('error', () => {});
  const connecting = c.connect().then(() => 'connected', () => 'failed');
  await waitFor('the JWKS request of the check', () => jwksRequests > before);
  (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  await waitFor('the disconnect', () => records('audit-abandoned.jsonl').some((r) => r.event === 'disconnect'));
  openGate();
  gate = undefined;
  await waitFor('the abandoned record', () => records('audit-abandoned.jsonl').some((r) => r.event === 'auth' && r.reason === 'abandoned'));
  assert.is(await connecting, 'failed');
  const auth = records('audit-abandoned.jsonl').filter((r) => r.event === 'auth');
  assert.equal(auth.map((r) => [r.user, r.outcome, r.reason, r.method]), [[zoe.email, 'failure', 'abandoned', 'oidc']]);
  // The keys are cached now: the same token logs in when the client stays.
  assert.is(await loginError({ ...clientConfig(h, zoe.email), port: proxy.port, password: await token() }), undefined);
});

test('auth.oidc.ca: keys from a JWKS URL behind a private CA verify tokens; without ca the same URL fails closed with the ordinary error', async () => {
  const trusting = await proxyWith(` ca: idp-ca.pem,`, 'audit-ca.jsonl');
  assert.is(await loginError({ ...clientConfig(h, zoe.email), port: trusting.port, password: await token() }), undefined);
  const plain = await proxyWith('', 'audit-no-ca.jsonl');
  const err = await loginError({ ...clientConfig(h, zoe.email), port: plain.port, password: await token() });
  assert.equal(err, { code: '28P01', message: `password authentication failed for user "${zoe.email}"` });
  await waitFor('bad_token record', () => records('audit-no-ca.jsonl').some((r) => r.event === 'auth' && r.reason === 'bad_token'));
});

test('auth.oidc.ca with a JWKS file is a config error naming the key', async () => {
  writeFileSync(join(h.dir, 'jwks-file.json'), JSON.stringify({ keys: [] }));
  const config = readFileSync(h.configFile, 'utf8').replace(/^auth:$/m, `auth:\n  oidc: { issuer: "${issuer}", audience: ${audience}, jwks: jwks-file.json, ca: idp-ca.pem }`);
  const file = join(h.dir, 'pgveil-ca-file.yaml');
  writeFileSync(file, config);
  const err = await startProxy({ configFile: file, logger: silentLogger, watch: false }).then(() => undefined, (e: Error) => e);
  assert.ok(err, 'start-up fails');
  assert.match(err!.message, /auth\.oidc\.ca/);
});

test.run();
