// Self-service password reset on the portal, end to end: a real SMTP server
// (STARTTLS, AUTH), the portal over HTTPS read with Node's fetch, the new
// password proved through pgveil with pg against a real PostgreSQL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { seal } from '../../src/secrets/seal.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { silentLogger, createLogger } from '../../src/observe/log.js';
import pg from 'pg';
import { startHarness, clientConfig, connectError, writeConfig, today, passwords, type Harness } from '../helpers/harness.js';
import { waitFor } from '../helpers/run.js';
import { startSmtp, linkIn, SMTP_USER, SMTP_PASSWORD, type TestSmtp } from '../helpers/smtp.js';
import { rsaCert } from '../auth/test-certs.js';
import { trustingFetch, form } from './portal-fetch.js';

const PW = { dora: 'Dora-pass-0021', nomail: 'Nomi-pass-0022', olga: 'Olga-pass-0023' };
const extraUsers = `  dora:
    org: acme
    email: dora@acme.com   # hand-written comment that must survive a reset
    password: "${createVerifier(PW.dora)}"
    passwordChangedAt: ${today()}
  nomail:
    org: acme
    password: "${createVerifier(PW.nomail)}"
    passwordChangedAt: ${today()}
  olga@acme.com:
    org: acme
    password: "${createVerifier(PW.olga)}"
    passwordChangedAt: 2020-01-01
`;

let h: Harness;
let smtp: TestSmtp;
let proxy: ProxyHandle;
let get: Awaited<ReturnType<typeof trustingFetch>>;
let base: string;
let clockOffset = 0;
const auditFile = () => join(h.dir, 'audit.jsonl');

test.before(async () => {
  smtp = await startSmtp('starttls');
  h = await startHarness({ extraUsers, tlsMode: 'prefer', lockout: { maxFailures: 3, windowSeconds: 900, lockSeconds: 1800 } });
  const portalCert = rsaCert('127.0.0.1');
  writeFileSync(join(h.dir, 'portal.crt'), portalCert.certPem);
  writeFileSync(join(h.dir, 'portal.key'), portalCert.keyPem, { mode: 0o600 });
  writeFileSync(join(h.dir, 'smtp-ca.pem'), smtp.cert.certPem);
  const key = Buffer.from(readFileSync(join(h.dir, 'master.key'), 'utf8').trim(), 'base64');
  const configFile = writeConfig(h, [
    `smtp: { host: 127.0.0.1, port: ${smtp.port}, tls: starttls, user: ${SMTP_USER}, password: "${seal(SMTP_PASSWORD, key)}", from: "pgveil <noreply@acme.com>", ca: smtp-ca.pem }`,
    'reset: { linkBase: "https://portal.test/reset", ttlMinutes: 30 }',
    'portal: { host: 127.0.0.1, port: 0, tls: { cert: portal.crt, key: portal.key }, publicUrl: "https://portal.test" }',
    'audit: { file: audit.jsonl }',
  ]);
  proxy = await startProxy({ configFile, logger: process.env.PGVEIL_TEST_LOG ? createLogger({ level: "info" }) : silentLogger, now: () => Date.now() + clockOffset });
  base = `https://127.0.0.1:${proxy.portalPort}`;
  get = await trustingFetch(portalCert);
});
test.after(async () => { await proxy?.close(); await h?.close(); await smtp?.close(); });

/** Moves the portal's clock past the forgot form's per-address window (every test request comes from 127.0.0.1). */
const freshWindow = () => { clockOffset += 16 * 60_000; };

/** The portal URL of a mailed link (the test portal listens on an ephemeral port, not on linkBase's host). */
const onPortal = (link: string) => link.replace('https://portal.test', base);

async function askForLink(user: string): Promise<string> {
  const before = smtp.mails.length;
  const res = await get(`${base}/reset`, form({ user }));
  assert.is(res.status, 200);
  await waitFor('the reset mail', () => smtp.mails.length > before);
  return onPortal(linkIn(smtp.mails[smtp.mails.length - 1]));
}

async function auditRecords(): Promise<Array<Record<string, unknown>>> {
  try { return readFileSync(auditFile(), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>); } catch { return []; }
}

async function waitForStep(user: string, step: string): Promise<void> {
  await waitFor(`audit ${user} ${step}`, async () => (await auditRecords()).some((r) => r.event === 'password_reset' && r.user === user && r.step === step));
}

test('portal pages carry no-store, a CSP with frame-ancestors none, and refuse bodies over the size limit', async () => {
  const res = await get(`${base}/reset`);
  assert.is(res.status, 200);
  assert.match(await res.text(), /<form method="post"/);
  assert.is(res.headers.get('cache-control'), 'no-store');
  assert.match(String(res.headers.get('content-security-policy')), /frame-ancestors 'none'/);
  assert.match(String(res.headers.get('content-security-policy')), /default-src 'none'/);
  assert.is(res.headers.get('x-frame-options'), 'DENY');
  const big = await get(`${base}/reset`, form({ user: 'x'.repeat(20_000) }));
  assert.is(big.status, 413);
  assert.is((await get(`${base}/nothing-here`)).status, 404);
  assert.is((await get(`${base}/reset`, { method: 'PUT', body: 'user=dora' })).status, 405);
  const json = await get(`${base}/reset`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":"dora"}' });
  assert.is(json.status, 415);
  const empty = await get(`${base}/reset`, form({ user: '' }));
  assert.is(empty.status, 400);
  assert.match(await empty.text(), /Enter your database user name/);
  const markup = await get(`${base}/reset/${'B'.repeat(43)}`, form({ password: '<script>x</script>', confirm: '<b>' }));
  assert.is(markup.status, 410, 'an unknown token is refused before anything else');
});

test('forgot form → mail over STARTTLS with AUTH → link → new password: pg logs in with it through pgveil at once, the old one fails', async () => {
  freshWindow();
  const link = await askForLink('dora');
  assert.equal(smtp.mails[smtp.mails.length - 1].to, ['dora@acme.com']);
  const page = await get(link);
  assert.is(page.status, 200);
  assert.match(await page.text(), /name="confirm"/);
  const done = await get(link, form({ password: 'Dora-new-pass-7', confirm: 'Dora-new-pass-7' }));
  assert.is(done.status, 200);
  assert.is(await connectError(h, proxy.port, 'dora', { password: 'Dora-new-pass-7' }), undefined);
  assert.is((await connectError(h, proxy.port, 'dora', { password: PW.dora }))?.code, '28P01');
  const users = readFileSync(join(h.dir, 'users.yaml'), 'utf8');
  assert.match(users, /# hand-written comment that must survive a reset/);
  assert.match(users, new RegExp(`dora:[\\s\\S]*passwordChangedAt: ${today()}[\\s\\S]*passwordHistory`));
  // Used once: the same link is gone.
  assert.is((await get(link)).status, 410);
  assert.is((await get(link, form({ password: 'Dora-other-pass-8', confirm: 'Dora-other-pass-8' }))).status, 410);
  await waitForStep('dora', 'mail_sent');
  await waitForStep('dora', 'completed');
  await waitForStep('', 'rejected_token');
  const token = link.slice(link.lastIndexOf('/') + 1);
  const log = readFileSync(auditFile(), 'utf8');
  assert.not.ok(log.includes(token), 'the token is not in the audit log');
  assert.not.ok(log.includes('Dora-new-pass-7'), 'the password is not in the audit log');
  const state = readFileSync(join(h.dir, 'users.yaml.reset.json'), 'utf8');
  assert.not.ok(state.includes(token), 'only the hash of a token is stored');
});

test('a weak password, a mismatched confirm and a password from the history get 400 naming the rule; the token stays usable', async () => {
  freshWindow();
  const link = await askForLink('dora');
  const weak = await get(link, form({ password: 'short', confirm: 'short' }));
  assert.is(weak.status, 400);
  assert.match(await weak.text(), /too short/);
  const mismatch = await get(link, form({ password: 'Dora-next-pass-9', confirm: 'Dora-next-pass-0' }));
  assert.is(mismatch.status, 400);
  assert.match(await mismatch.text(), /do not match/);
  const reused = await get(link, form({ password: PW.dora, confirm: PW.dora }));
  assert.is(reused.status, 400);
  assert.match(await reused.text(), /used recently/);
  await waitForStep('dora', 'rejected_weak');
  assert.is((await get(link, form({ password: 'Dora-next-pass-9', confirm: 'Dora-next-pass-9' }))).status, 200);
  assert.is(await connectError(h, proxy.port, 'dora', { password: 'Dora-next-pass-9' }), undefined);
});

test('a token only changes its own user: fields naming another user are ignored', async () => {
  freshWindow();
  const link = await askForLink('dora');
  const res = await get(link, form({ password: 'Dora-third-pass-1', confirm: 'Dora-third-pass-1', user: 'alice@acme.com', name: 'alice@acme.com', token: 'x' }));
  assert.is(res.status, 200);
  assert.is(await connectError(h, proxy.port, 'dora', { password: 'Dora-third-pass-1' }), undefined);
  assert.is(await connectError(h, proxy.port, 'alice@acme.com', { password: passwords['alice@acme.com'] }), undefined);
  assert.is((await connectError(h, proxy.port, 'alice@acme.com', { password: 'Dora-third-pass-1' }))?.code, '28P01');
});

test('the forgot form answers an unknown user and a user without an address exactly like a known one, and mails nothing', async () => {
  freshWindow();
  const before = smtp.mails.length;
  const known = await get(`${base}/reset`, form({ user: 'dora' }));
  const knownBody = await known.text();
  await waitFor('the known user\'s mail', () => smtp.mails.length > before);
  const count = smtp.mails.length;
  for (const user of ['nobody-here', 'nomail']) {
    const res = await get(`${base}/reset`, form({ user }));
    assert.is(res.status, known.status, user);
    assert.is(await res.text(), knownBody, user);
  }
  await waitForStep('nobody-here', 'unknown_user');
  await waitForStep('nomail', 'no_email');
  assert.is(smtp.mails.length, count);
});

test('a newer request makes the older link stop working; an expired link answers 410', async () => {
  freshWindow();
  const first = await askForLink('dora');
  const second = await askForLink('dora');
  assert.is((await get(first)).status, 410);
  assert.is((await get(second)).status, 200);
  clockOffset += 31 * 60_000;
  assert.is((await get(second)).status, 410);
  assert.is((await get(second, form({ password: 'Dora-late-pass-2', confirm: 'Dora-late-pass-2' }))).status, 410);
  assert.is((await get(`${base}/reset/${'A'.repeat(43)}`)).status, 410);
});

test('past 5 forgot-form requests from one address in 15 minutes, the answer is the same and nothing is sent', async () => {
  freshWindow();
  for (let i = 0; i < 5; i++) await askForLink('dora');
  const count = smtp.mails.length;
  const res = await get(`${base}/reset`, form({ user: 'dora' }));
  assert.is(res.status, 200);
  assert.match(await res.text(), /If that account has a registered e-mail address/);
  await waitForStep('dora', 'rate_limited');
  assert.is(smtp.mails.length, count);
});

test('a reset lifts the user\'s lockout', async () => {
  freshWindow();
  for (let i = 0; i < 3; i++) await connectError(h, proxy.port, 'dora', { password: 'wrong-password-x' });
  await waitFor('dora locked', async () => (await auditRecords()).some((r) => r.event === 'lockout' && r.key === 'dora'));
  const link = await askForLink('dora');
  assert.is((await get(link, form({ password: 'Dora-unlock-pass-3', confirm: 'Dora-unlock-pass-3' }))).status, 200);
  assert.is(await connectError(h, proxy.port, 'dora', { password: 'Dora-unlock-pass-3' }), undefined);
});

test('an expired password names the portal\'s reset page and reset-request; the audit log says expired', async () => {
  const client = new pg.Client({ ...clientConfig(h, 'olga@acme.com'), password: PW.olga, port: proxy.port, ssl: false });
  client.on('error', () => {});
  const err = await client.connect().then(() => undefined, (e: { code?: string; message: string; hint?: string }) => e);
  await client.end().catch(() => {});
  assert.is(err?.code, '28P01');
  assert.is(err?.message, 'password for user "olga@acme.com" has expired');
  assert.match(String(err?.hint), /https:\/\/portal\.test\/reset/);
  assert.match(String(err?.hint), /pgveil reset-request --config <pgveil\.yaml> olga@acme\.com/);
  await waitFor('the expired auth record', async () => (await auditRecords()).some((r) => r.event === 'auth' && r.user === 'olga@acme.com' && r.reason === 'expired'));
});

test('a reset whose reload is rejected (a policy file cut short mid-save) answers 503, keeps the old password working and says so in the audit log; fixing the file makes the new one work', async () => {
  freshWindow();
  const policyFile = join(h.dir, 'policy.yaml');
  const policy = readFileSync(policyFile, 'utf8');
  try {
    writeFileSync(policyFile, policy.slice(0, Math.floor(policy.length / 2)) + '\n  broken: [');
    await waitFor('the rejected reload', async () => (await auditRecords()).some((r) => r.event === 'policy_reload' && r.outcome === 'rejected'));
    const link = await askForLink('dora');
    const answer = await get(link, form({ password: 'Dora-held-pass-44', confirm: 'Dora-held-pass-44' }));
    assert.is(answer.status, 503);
    assert.match(await answer.text(), /old password still works/);
    await waitForStep('dora', 'not_loaded');
    assert.is(await connectError(h, proxy.port, 'dora', { password: 'Dora-unlock-pass-3' }), undefined, 'the old password works while the files are rejected');
    assert.is((await connectError(h, proxy.port, 'dora', { password: 'Dora-held-pass-44' }))?.code, '28P01');
  } finally {
    writeFileSync(policyFile, policy);
  }
  const reloads = async () => (await auditRecords()).filter((r) => r.event === 'policy_reload');
  await waitFor('the files load again', async () => (await reloads()).at(-1)?.outcome === 'applied');
  assert.is(await connectError(h, proxy.port, 'dora', { password: 'Dora-held-pass-44' }), undefined);
});

test.run();
