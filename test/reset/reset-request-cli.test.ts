// `pgveil reset-request` as a child process against a real SMTP server with
// implicit TLS and AUTH; the mailed link is followed on the portal with
// Node's fetch and the new password proved through pgveil with pg. Also what
// happens when the mail cannot be sent (server down, login refused).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { seal } from '../../src/secrets/seal.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { startHarness, connectError, writeConfig, today, type Harness } from '../helpers/harness.js';
import { pgveil, waitFor } from '../helpers/run.js';
import { startSmtp, linkIn, SMTP_USER, SMTP_PASSWORD, type TestSmtp } from '../helpers/smtp.js';
import { rsaCert } from '../auth/test-certs.js';
import { trustingFetch, form } from './portal-fetch.js';

const PW = { erin: 'Erin-pass-0031', nomail: 'Nomi-pass-0032' };
const extraUsers = `  erin@acme.com:
    org: acme
    password: "${createVerifier(PW.erin)}"
    passwordChangedAt: ${today()}
  nomail:
    org: acme
    password: "${createVerifier(PW.nomail)}"
    passwordChangedAt: ${today()}
`;

let h: Harness;
let smtp: TestSmtp;
let proxy: ProxyHandle;
let get: Awaited<ReturnType<typeof trustingFetch>>;
let configFile: string;
let key: Buffer;
const auditText = () => { const f = join(h.dir, 'audit.jsonl'); return existsSync(f) ? readFileSync(f, 'utf8') : ''; };

/** The config lines of the test, with `smtp` and `audit` as given. */
function configWith(smtpLine: string, auditFile: string): string {
  return writeConfig(h, [
    smtpLine,
    'reset: { linkBase: "https://portal.test/reset", ttlMinutes: 30 }',
    'portal: { host: 127.0.0.1, port: 0, tls: { cert: portal.crt, key: portal.key }, publicUrl: "https://portal.test" }',
    `audit: { file: ${auditFile} }`,
  ]);
}

const smtpLine = (port: number, password: string) =>
  `smtp: { host: 127.0.0.1, port: ${port}, tls: tls, user: ${SMTP_USER}, password: "${seal(password, key)}", from: "pgveil <noreply@acme.com>", ca: smtp-ca.pem }`;

test.before(async () => {
  smtp = await startSmtp('tls');
  h = await startHarness({ extraUsers, tlsMode: 'prefer' });
  const portalCert = rsaCert('127.0.0.1');
  writeFileSync(join(h.dir, 'portal.crt'), portalCert.certPem);
  writeFileSync(join(h.dir, 'portal.key'), portalCert.keyPem, { mode: 0o600 });
  writeFileSync(join(h.dir, 'smtp-ca.pem'), smtp.cert.certPem);
  key = Buffer.from(readFileSync(join(h.dir, 'master.key'), 'utf8').trim(), 'base64');
  configFile = configWith(smtpLine(smtp.port, SMTP_PASSWORD), 'audit.jsonl');
  proxy = await startProxy({ configFile, logger: silentLogger });
  get = await trustingFetch(portalCert);
});
test.after(async () => { await proxy?.close(); await h?.close(); await smtp?.close(); });

test('reset-request mails the link over implicit TLS with AUTH to the user\'s name as address; the link sets a password pg logs in with', async () => {
  const r = await pgveil(['reset-request', '--config', configFile, 'erin@acme.com']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /sent to erin@acme\.com/);
  assert.is(smtp.mails.length, 1);
  assert.equal(smtp.mails[0].to, ['erin@acme.com']);
  const link = linkIn(smtp.mails[0]).replace('https://portal.test', `https://127.0.0.1:${proxy.portalPort}`);
  assert.not.ok(r.stdout.includes(link.slice(-43)) || r.stderr.includes(link.slice(-43)), 'the CLI does not print the token');
  assert.is((await get(link)).status, 200);
  assert.is((await get(link, form({ password: 'Erin-new-pass-41', confirm: 'Erin-new-pass-41' }))).status, 200);
  assert.is(await connectError(h, proxy.port, 'erin@acme.com', { password: 'Erin-new-pass-41' }), undefined);
  assert.is((await connectError(h, proxy.port, 'erin@acme.com', { password: PW.erin }))?.code, '28P01');
  // The running pgveil records the command's steps from the state file.
  await waitFor('the CLI\'s audit steps', () => auditText().includes('"event":"password_reset","user":"erin@acme.com","step":"mail_sent","via":"cli"'));
  assert.match(auditText(), /"user":"erin@acme.com","step":"requested","via":"cli"/);
  assert.match(auditText(), /"user":"erin@acme.com","step":"completed"/);
});

test('reset-request for a user without an address or an unknown user exits 1 saying why, and sends nothing', async () => {
  const before = smtp.mails.length;
  const none = await pgveil(['reset-request', '--config', configFile, 'nomail']);
  assert.is(none.status, 1);
  assert.match(none.stderr, /no email/);
  const unknown = await pgveil(['reset-request', '--config', configFile, 'nobody-here']);
  assert.is(unknown.status, 1);
  assert.match(unknown.stderr, /no such user/);
  assert.is(smtp.mails.length, before);
  await waitFor('the CLI\'s no_email and unknown_user steps', () => auditText().includes('"user":"nomail","step":"no_email","via":"cli"')
    && auditText().includes('"user":"nobody-here","step":"unknown_user","via":"cli"'));
  const usage = await pgveil(['reset-request', '--config', configFile]);
  assert.is(usage.status, 2);
});

test('SMTP down: reset-request exits 1 with a clear message and leaves no usable token; the portal audits mail_failed', async () => {
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
  const deadPort = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const downConfig = configWith(smtpLine(deadPort, SMTP_PASSWORD), 'audit-down.jsonl');
  const r = await pgveil(['reset-request', '--config', downConfig, 'erin@acme.com']);
  assert.is(r.status, 1);
  assert.match(r.stderr, new RegExp(`the mail could not be sent through 127\\.0\\.0\\.1:${deadPort}`));
  const state = JSON.parse(readFileSync(join(h.dir, 'users.yaml.reset.json'), 'utf8')) as { tokens: Array<{ user: string }> };
  assert.is(state.tokens.filter((t) => t.user === 'erin@acme.com').length, 0);
  await waitFor('the CLI\'s mail_failed step', () => auditText().includes('"user":"erin@acme.com","step":"mail_failed","via":"cli"'));

  const down = await startProxy({ configFile: downConfig, logger: silentLogger, watch: false });
  try {
    const res = await get(`https://127.0.0.1:${down.portalPort}/reset`, form({ user: 'erin@acme.com' }));
    assert.is(res.status, 200);
    const auditFile = join(h.dir, 'audit-down.jsonl');
    await waitFor('the mail_failed record', () => existsSync(auditFile) && readFileSync(auditFile, 'utf8').includes('"step":"mail_failed"'));
  } finally {
    await down.close();
  }
});

test('a refused SMTP login is a failed mail: exit 1, the server saw the wrong password', async () => {
  const wrong = configWith(smtpLine(smtp.port, 'not-the-smtp-password'), 'audit-wrong.jsonl');
  const before = smtp.refusedLogins;
  const r = await pgveil(['reset-request', '--config', wrong, 'erin@acme.com']);
  assert.is(r.status, 1);
  assert.match(r.stderr, /could not be sent/);
  assert.not.ok(r.stderr.includes('not-the-smtp-password'), 'the SMTP password is not printed');
  assert.is(smtp.refusedLogins, before + 1);
});

test.run();
