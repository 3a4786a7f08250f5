// After a browser SSO sign-in, the handler maps the person to an account,
// issues a short-lived database password and shows it; the password logs in
// over TLS (pg and psql) as that account until it expires. A person listed
// in users.yaml gets that account; one who is not gets the org and groups
// the sign-in proved, if users.yaml lists the org. Refusals get a 403 page
// and no password; a wrong, foreign or expired password fails as a wrong
// password does; SCRAM and plaintext never accept one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { startHarness, clientConfig, loginError, capturingLogger, today, type Harness, type LogLine } from '../helpers/harness.js';
import { psql, waitFor } from '../helpers/run.js';
import { ssoPolicy, writeSsoConfig, testIssuer, stateEntries, type TestIssuer, orgsSeen, passwordOnPage } from './sso-fixture.js';
import { trustingFetch } from '../reset/portal-fetch.js';
import { RawTlsClient, errorField } from '../helpers/raw-tls-client.js';
import { frame, int32, startupPacket } from '../helpers/raw-client.js';
import type { TestCert } from '../auth/test-certs.js';
import { loadConfig } from '../../src/config/load.js';
import { signInPage } from '../../src/sso/pages.js';

let h: Harness;
let proxy: ProxyHandle;
let issuer: TestIssuer;
let proxyLog: LogLine[];
let configFile: string;
/** Moves the clock of the proxy's password check and of the issuer (expiry without waiting). */
let skewMs = 0;
const clock = () => Date.now() + skewMs;
const PW = { dan: 'Dan-pass-0061' };

test.before(async () => {
  h = await startHarness({
    tlsMode: 'prefer',
    policyYaml: ssoPolicy,
    extraUsers: `  dan@acme.com:\n    org: acme\n    password: "${createVerifier(PW.dan)}"\n    passwordChangedAt: ${today()}\n    disabled: true\n`,
  });
  configFile = writeSsoConfig(h, { audit: 'audit-proxy.jsonl' });
  const captured = capturingLogger();
  proxyLog = captured.lines;
  proxy = await startProxy({ configFile, logger: captured.logger, now: clock });
  issuer = await testIssuer(h, configFile, { now: clock, databasePort: proxy.port });
});
test.after(async () => {
  await issuer?.close();
  await proxy?.close();
  await h?.close();
});

const proxyAudit = () => (existsSync(join(h.dir, 'audit-proxy.jsonl')) ? readFileSync(join(h.dir, 'audit-proxy.jsonl'), 'utf8') : '');
const proxyRecords = () => proxyAudit().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const has = (records: Array<Record<string, unknown>>, want: Record<string, unknown>) => records.some((r) => Object.entries(want).every(([k, v]) => r[k] === v));
const passwordFailure = (user: string) => ({ code: '28P01', message: `password authentication failed for user "${user}"` });

const orgsSeenAs = (user: string, password: string) => orgsSeen(h, proxy.port, user, password);

test('an unlisted person of a listed org gets a password that logs in over TLS; their org and groups drive the row filter', async () => {
  const zed = await issuer.signIn({ user: 'zed@acme.com', org: 'acme', groups: [] });
  assert.is(zed.status, 200);
  assert.ok(zed.password, 'the page shows the password');
  assert.equal(await orgsSeenAs('zed@acme.com', zed.password!), ['acme'], 'the org filter applies');
  const ada = await issuer.signIn({ user: 'ada@globex.com', org: 'globex', groups: ['auditors'], via: 'saml' });
  assert.equal(await orgsSeenAs('ada@globex.com', ada.password!), ['acme', 'globex'], 'the auditors group lifts the filter');
  const gil = await issuer.signIn({ user: 'gil@globex.com', org: 'globex', groups: ['analysts'] });
  assert.equal(await orgsSeenAs('gil@globex.com', gil.password!), ['globex']);
  await waitFor('auth records with method sso', () => has(proxyRecords(), { event: 'auth', user: 'zed@acme.com', outcome: 'success', method: 'sso' })
    && has(proxyRecords(), { event: 'auth', user: 'ada@globex.com', outcome: 'success', method: 'sso' }));
  await waitFor('sso_login records', () => has(issuer.records(), { event: 'sso_login', user: 'zed@acme.com', org: 'acme', via: 'oidc', outcome: 'issued' })
    && has(issuer.records(), { event: 'sso_login', user: 'ada@globex.com', org: 'globex', via: 'saml', outcome: 'issued' }));
});

test('the result page: expiry, a psql line and a JDBC URL for this deployment without the password, and what to type in a BI tool', async () => {
  const page = await issuer.signIn({ user: 'zed@acme.com', org: 'acme' });
  const expiresAt = (stateEntries(h).at(-1)!.expiresAt as number);
  assert.ok(page.html.includes(new Date(expiresAt).toISOString().replace('T', ' ').slice(0, 16) + ' UTC'), 'the expiry time is shown');
  const line = /<pre[^>]*>(psql [^<]+)<\/pre>/.exec(page.html)?.[1].replaceAll('&#39;', "'");
  assert.is(line, `psql 'postgresql://zed%40acme.com@127.0.0.1:${proxy.port}/analytics?sslmode=require'`);
  assert.ok(page.html.includes(`jdbc:postgresql://127.0.0.1:${proxy.port}/analytics?sslmode=require`));
  for (const label of ['Host', 'Port', 'Database', 'User', 'Password']) assert.ok(page.html.includes(`<th scope="row">${label}</th>`), label);
  assert.is(page.html.split(page.password!).length, 2, 'the password appears once: in its field, never in a URL or command');
  // The psql line as shown, with the password pasted (PGPASSWORD stands in for the prompt).
  const uri = /'([^']+)'/.exec(line!)![1];
  const out = await psql(uri, 'select org_id from crm.employees order by id', page.password!);
  assert.is(out.status, 0, out.stderr);
  assert.is(out.stdout.trim(), 'acme');
});

test('a person listed in users.yaml gets the users.yaml account: its org, its groups (not the provider\'s)', async () => {
  // alice@acme.com is listed (acme, analysts); the provider claims auditors, which would lift the filter.
  const alice = await issuer.signIn({ user: 'alice@acme.com', groups: ['auditors'] });
  assert.is(alice.status, 200);
  assert.equal(await orgsSeenAs('alice@acme.com', alice.password!), ['acme']);
  const same = await issuer.signIn({ user: 'alice@acme.com', org: 'acme' });
  assert.is(same.status, 200, 'the listed org sent by the provider is accepted');
  assert.is(stateEntries(h).at(-1)!.listed, true);
  // Her own password still works beside it.
  assert.equal(await orgsSeenAs('alice@acme.com', 'Alice-pass-0001'), ['acme']);
});

test('refused sign-ins get a 403 page that says only that there is no database access, and no password', async () => {
  const before = stateEntries(h).length;
  const cases: Array<[Parameters<TestIssuer['signIn']>[0], string]> = [
    [{ user: 'nobody@nowhere.com' }, 'no_org'], // an unknown person: not listed, no org
    [{ user: 'pat@initech.com', org: 'initech' }, 'unknown_org'],
    [{ user: 'alice@acme.com', org: 'globex' }, 'org_mismatch'],
    [{ user: 'dan@acme.com', org: 'acme' }, 'disabled'],
    [{ user: '', org: 'acme' }, 'bad_user'],
    [{ user: 'eve\u0000@acme.com', org: 'acme' }, 'bad_user'],
  ];
  for (const [identity, reason] of cases) {
    const page = await issuer.signIn(identity);
    assert.is(page.status, 403, JSON.stringify(identity));
    assert.is(page.password, undefined);
    assert.match(page.html, /this account has no access to the database/);
    assert.not.match(page.html, /initech|globex|disabled|organi[sz]ation/i, 'the page does not say why');
    await waitFor(`sso_login refused ${reason}`, () => has(issuer.records(), { event: 'sso_login', user: identity.user, outcome: 'refused', reason }));
  }
  assert.is(stateEntries(h).length, before, 'no credential was stored');
});

test('a wrong password, another user\'s password and an expired one fail exactly like a wrong password', async () => {
  const zed = await issuer.signIn({ user: 'zed@acme.com', org: 'acme' });
  assert.equal(await orgsSeenAs('zed@acme.com', 'ABCDEFGHJKLMNPQRSTUVWXYZab'), passwordFailure('zed@acme.com'), 'wrong (the shape of one)');
  assert.equal(await orgsSeenAs('gil@globex.com', zed.password!), passwordFailure('gil@globex.com'), "another user's");
  assert.equal(await orgsSeenAs('alice@acme.com', zed.password!), passwordFailure('alice@acme.com'), "another user's, for a listed name");
  skewMs = 481 * 60_000;
  try {
    assert.equal(await orgsSeenAs('zed@acme.com', zed.password!), passwordFailure('zed@acme.com'), 'expired');
  } finally {
    skewMs = 0;
  }
  assert.equal(await orgsSeenAs('zed@acme.com', zed.password!), ['acme'], 'the same password before its expiry');
  await waitFor('the failures in the audit log', () => has(proxyRecords(), { event: 'auth', user: 'gil@globex.com', outcome: 'failure', reason: 'unknown_user' })
    && has(proxyRecords(), { event: 'auth', user: 'alice@acme.com', outcome: 'failure', reason: 'wrong_password' }));
});

test('an open session ends with 57P01 when its password expires, and the disconnect is audited', async () => {
  // Issued as if 57 s ago with a one-minute lifetime: it expires 3 s from now.
  const configFile = writeSsoConfig(h, { name: 'pgveil-sso-1min.yaml', audit: 'audit-unused.jsonl', credentialMinutes: 1 });
  const shortLived = await testIssuer(h, configFile, { now: () => Date.now() - 57_000, databasePort: proxy.port, audit: 'audit-portal-1min.jsonl' });
  const kit = await shortLived.signIn({ user: 'kit@acme.com', org: 'acme' });
  await shortLived.close();
  const c = new pg.Client({ ...clientConfig(h, 'kit@acme.com'), port: proxy.port, password: kit.password }) as pg.Client & { lastError?: Error & { code?: string } };
  c.on('error', (err: Error & { code?: string }) => { c.lastError ??= err; });
  await c.connect();
  assert.is((await c.query('select 1 as one')).rows[0].one, 1);
  await waitFor('the session to be ended', () => c.lastError !== undefined, 30000);
  assert.is(c.lastError?.code, '57P01');
  assert.match(c.lastError!.message, /password issued at SSO sign-in expired/);
  await waitFor('disconnect record', () => has(proxyRecords(), { event: 'disconnect', user: 'kit@acme.com', reason: 'credential_expired' }));
  assert.equal(await orgsSeenAs('kit@acme.com', kit.password!), passwordFailure('kit@acme.com'), 'and it no longer logs in');
});

test('without TLS the client is offered SCRAM, which never accepts an SSO password (listed or not)', async () => {
  const zed = await issuer.signIn({ user: 'zed@acme.com', org: 'acme' });
  const alice = await issuer.signIn({ user: 'alice@acme.com' });
  for (const [user, password] of [['zed@acme.com', zed.password!], ['alice@acme.com', alice.password!]]) {
    const error = await loginError({ ...clientConfig(h, user), port: proxy.port, password, ssl: false, connectionTimeoutMillis: 10000 });
    assert.equal(error, passwordFailure(user));
  }
  await waitFor('SCRAM failures', () => has(proxyRecords(), { event: 'auth', user: 'zed@acme.com', outcome: 'failure', method: 'scram-sha-256' }));
  assert.equal(await orgsSeenAs('zed@acme.com', zed.password!), ['acme'], 'the same password over TLS');
});

test('over TLS, SCRAM is never offered, and a SCRAM message sent in place of the SSO password is a protocol violation', async () => {
  const zed = await issuer.signIn({ user: 'zed@acme.com', org: 'acme' });
  const probe = await RawTlsClient.connect(proxy.port);
  const attempt = await probe.scram('zed@acme.com', zed.password!);
  probe.socket.destroy();
  assert.equal(attempt.offered, [], 'no SASL mechanisms offered');
  assert.is(attempt.messages[0]?.body.readInt32BE(0), 3, 'AuthenticationCleartextPassword');
  const c = await RawTlsClient.connect(proxy.port);
  c.send(startupPacket({ user: 'zed@acme.com', database: 'analytics' }));
  assert.is((await c.message())?.body.readInt32BE(0), 3);
  const first = Buffer.from(`n,,n=,r=${'x'.repeat(24)}`);
  c.send(frame('p', Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int32(first.length), first])));
  const answer = await c.message();
  assert.is(answer?.type, 'E');
  assert.is(errorField(answer, 'C'), '08P01');
  c.socket.destroy();
});

test('a listed user disabled after the sign-in cannot log in with the password (users.yaml is read at login)', async () => {
  const carol = await issuer.signIn({ user: 'carol@acme.com', org: 'acme' });
  assert.equal(await orgsSeenAs('carol@acme.com', carol.password!), ['acme']);
  const users = join(h.dir, 'users.yaml');
  const original = readFileSync(users, 'utf8');
  writeFileSync(users, original.replace(/(  carol@acme\.com:\n)/, '$1    disabled: true\n'));
  try {
    assert.ok(await proxy.reload());
    assert.equal(await orgsSeenAs('carol@acme.com', carol.password!), passwordFailure('carol@acme.com'));
    await waitFor('disabled record', () => has(proxyRecords(), { event: 'auth', user: 'carol@acme.com', outcome: 'failure', reason: 'disabled', method: 'sso' }));
  } finally {
    writeFileSync(users, original);
    assert.ok(await proxy.reload());
  }
});

test('a live password whose account no longer holds is refused: listed user removed, unlisted person now listed, org removed', async () => {
  const users = join(h.dir, 'users.yaml');
  const original = readFileSync(users, 'utf8');
  const withUmbrella = original.replace('organizations:\n', 'organizations:\n  umbrella: {}\n');
  writeFileSync(users, withUmbrella);
  try {
    assert.ok(await proxy.reload());
    const ray = await issuer.signIn({ user: 'ray@umbrella.com', org: 'umbrella' });
    const nia = await issuer.signIn({ user: 'nia@globex.com', org: 'globex' });
    const bob = await issuer.signIn({ user: 'bob@globex.com', org: 'globex' });
    assert.equal(await orgsSeenAs('ray@umbrella.com', ray.password!), []);
    const edited = original
      .replace(/  bob@globex\.com:\n(    .*\n)+/, '')
      .replace('users:\n', 'users:\n  nia@globex.com:\n    org: globex\n');
    assert.not.ok(edited.includes('bob@globex.com'));
    writeFileSync(users, edited);
    assert.ok(await proxy.reload());
    for (const [user, password, detail] of [['ray@umbrella.com', ray.password!, 'unknown_org'], ['nia@globex.com', nia.password!, 'now_listed'], ['bob@globex.com', bob.password!, 'user_removed']]) {
      assert.equal(await orgsSeenAs(user, password), passwordFailure(user), user);
      await waitFor(`stale ${detail}`, () => has(proxyRecords(), { event: 'auth', user, outcome: 'failure', reason: 'stale_sso_password', detail }));
    }
  } finally {
    writeFileSync(users, original);
    assert.ok(await proxy.reload());
  }
});

test('a truncated or garbage state file matches no password (logged), and the next sign-in starts it afresh', async () => {
  const zed = await issuer.signIn({ user: 'zed@acme.com', org: 'acme' });
  const file = join(h.dir, 'users.yaml.sso.json');
  const text = readFileSync(file, 'utf8');
  for (const broken of [text.slice(0, Math.floor(text.length / 2)), 'garbage', '{"credentials": 7}']) {
    writeFileSync(file, broken);
    assert.equal(await orgsSeenAs('zed@acme.com', zed.password!), passwordFailure('zed@acme.com'), JSON.stringify(broken.slice(0, 20)));
  }
  await waitFor('the logged error', () => proxyLog.some((l) => l.level === 'error' && l.msg.includes('SSO password state unusable')));
  const fresh = await issuer.signIn({ user: 'zed@acme.com', org: 'acme' });
  assert.equal(await orgsSeenAs('zed@acme.com', fresh.password!), ['acme']);
  assert.is(statSync(file).mode & 0o777, 0o600);
});

test('the audit logs hold the sign-ins and logins and never a password', async () => {
  const page = await issuer.signIn({ user: 'zed@acme.com', org: 'acme' });
  assert.equal(await orgsSeenAs('zed@acme.com', page.password!), ['acme']);
  await waitFor('the records', () => has(proxyRecords(), { event: 'auth', user: 'zed@acme.com', method: 'sso', outcome: 'success' }) && issuer.auditText().includes('sso_login'));
  const state = readFileSync(join(h.dir, 'users.yaml.sso.json'), 'utf8');
  for (const text of [proxyAudit(), issuer.auditText(), state]) assert.not.ok(text.includes(page.password!), 'no password');
  assert.not.ok(proxyLog.some((l) => JSON.stringify(l).includes(page.password!)), 'nor in the log');
});

test('the portal\'s sign-in page at / links the configured sign-in methods (and the reset page when reset is set)', async () => {
  const get = await trustingFetch({ certPem: readFileSync(join(h.dir, 'portal.crt'), 'utf8') } as TestCert);
  const answer = await get(`https://127.0.0.1:${proxy.portalPort}/`);
  assert.is(answer.status, 200);
  const html = await answer.text();
  assert.ok(html.includes('href="https://127.0.0.1:8443/sso/oidc/start"'), html);
  assert.not.ok(html.includes('/sso/saml/start'), 'saml is not configured');
  assert.not.ok(html.includes('Forgot'), 'reset is not configured');
  const config = loadConfig(configFile);
  const both = signInPage({ ...config, sso: { ...config.sso, saml: { entryPoint: 'https://idp.test/saml', issuer: 'pgveil', idpCert: '/x', attributes: { user: 'email', org: 'org', groups: 'groups' } } }, reset: { linkBase: 'https://127.0.0.1:8443/reset', ttlMinutes: 30 } });
  assert.ok(both.includes('href="https://127.0.0.1:8443/sso/saml/start"'));
  assert.ok(both.includes('href="https://127.0.0.1:8443/reset"'));
  assert.is((await get(`https://127.0.0.1:${proxy.portalPort}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' })).status, 405);
});

test.run();
