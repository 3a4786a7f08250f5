// auth.oidc: a person not in users.yaml logs in over TLS with an OIDC access
// token as the password. The StartupMessage user must be the token's user
// claim, the org must be one users.yaml lists, and the session ends (57P01,
// audited) when the token expires. Every refusal is the ordinary password
// failure; the audit log says why.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, clientConfig, loginError, type Harness } from '../helpers/harness.js';
import { waitFor } from '../helpers/run.js';
import { startOidcProvider, testAudience, type TestOidcProvider } from '../helpers/oidc-provider.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { silentLogger } from '../../src/observe/log.js';

let h: Harness;
let idp: TestOidcProvider;
let proxy: ProxyHandle;
const zoe = { email: 'zoe@acme.com', org: 'acme', groups: ['analysts'] };

test.before(async () => {
  h = await startHarness();
  idp = await startOidcProvider();
  writeFileSync(join(h.dir, 'idp-jwks.json'), JSON.stringify(idp.publicJwks()));
  const oidc = `  oidc: { issuer: "${idp.issuer}", audience: ${testAudience}, jwks: idp-jwks.json, claims: { user: email, org: org, groups: groups } }`;
  const config = readFileSync(h.configFile, 'utf8').replace(/^auth:$/m, `auth:\n${oidc}`) + '\naudit: { file: audit-oidc.jsonl }\n';
  assert.ok(config.includes('  oidc:'));
  const file = join(h.dir, 'pgveil-oidc.yaml');
  writeFileSync(file, config);
  proxy = await startProxy({ configFile: file, logger: silentLogger });
});
test.after(async () => {
  await proxy.close();
  await idp.close();
  await h.close();
});

const now = () => Math.floor(Date.now() / 1000);
const signed = (over: Record<string, unknown>) => idp.signToken({ iss: idp.issuer, aud: testAudience, iat: now(), exp: now() + 600, ...zoe, ...over });

function client(user: string, password: string): pg.Client & { lastError?: Error & { code?: string } } {
  const c = new pg.Client({ ...clientConfig(h, user), port: proxy.port, password, connectionTimeoutMillis: 10000 }) as pg.Client & { lastError?: Error & { code?: string } };
  c.on('error', (err: Error & { code?: string }) => { c.lastError ??= err; });
  return c;
}

function tokenLoginError(user: string, token: string): Promise<{ code?: string; message: string } | undefined> {
  return loginError({ ...clientConfig(h, user), port: proxy.port, password: token, connectionTimeoutMillis: 10000 });
}

interface Record_ { event: string; user?: string; outcome?: string; reason?: string; method?: string; detail?: string }
function records(): Record_[] {
  const file = join(h.dir, 'audit-oidc.jsonl');
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record_) : [];
}
const hasRecord = (want: Partial<Record_>) => records().some((r) => Object.entries(want).every(([k, v]) => r[k as keyof Record_] === v));

const passwordFailure = (user: string) => ({ code: '28P01', message: `password authentication failed for user "${user}"` });

test('a token the provider issued logs its user in, who sees only their org rows', async () => {
  const c = client(zoe.email, await idp.issueToken(zoe));
  await c.connect();
  const rows = (await c.query('select org_id from crm.employees')).rows;
  assert.equal(rows, [{ org_id: 'acme' }]);
  await c.end();
  await waitFor('success record', () => hasRecord({ event: 'auth', user: zoe.email, outcome: 'success', method: 'oidc' }));
});

test('an expired token, a token for another audience, and a token of another user are refused with the ordinary error', async () => {
  assert.equal(await tokenLoginError(zoe.email, await signed({ iat: now() - 7200, exp: now() - 3600 })), passwordFailure(zoe.email));
  assert.equal(await tokenLoginError(zoe.email, await signed({ aud: 'some-other-api' })), passwordFailure(zoe.email));
  assert.equal(await tokenLoginError('yan@acme.com', await idp.issueToken(zoe)), passwordFailure('yan@acme.com'));
  assert.equal(await tokenLoginError(zoe.email, 'not a token at all'), passwordFailure(zoe.email));
  for (const detail of ['expired', 'wrong_audience', 'malformed']) {
    await waitFor(`bad_token ${detail}`, () => hasRecord({ event: 'auth', user: zoe.email, outcome: 'failure', reason: 'bad_token', detail }));
  }
  await waitFor('user mismatch', () => hasRecord({ event: 'auth', user: 'yan@acme.com', reason: 'bad_token', detail: 'user_mismatch' }));
});

test('a token whose org is not in users.yaml is refused (fail closed)', async () => {
  assert.equal(await tokenLoginError('pat@initech.com', await idp.issueToken({ ...zoe, email: 'pat@initech.com', org: 'initech' })), passwordFailure('pat@initech.com'));
  await waitFor('unknown org', () => hasRecord({ event: 'auth', user: 'pat@initech.com', reason: 'bad_token', detail: 'unknown_org' }));
});

test('users.yaml users still log in with their password on the same TLS path, and a token is not their password', async () => {
  const c = new pg.Client({ ...clientConfig(h, 'alice@acme.com'), port: proxy.port });
  await c.connect();
  await c.end();
  assert.equal(await tokenLoginError('alice@acme.com', await idp.issueToken({ ...zoe, email: 'alice@acme.com' })), passwordFailure('alice@acme.com'));
});

test('the session ends with 57P01 when its token expires, and the disconnect is audited', async () => {
  const c = client(zoe.email, await signed({ exp: now() + 3 }));
  await c.connect();
  assert.is((await c.query('select 1 as one')).rows[0].one, 1);
  await waitFor('the session to be ended', () => c.lastError !== undefined, 30000);
  assert.is(c.lastError?.code, '57P01');
  assert.match(c.lastError!.message, /access token expired/);
  await waitFor('disconnect record', () => hasRecord({ event: 'disconnect', user: zoe.email, reason: 'credential_expired' }));
});

test.run();
