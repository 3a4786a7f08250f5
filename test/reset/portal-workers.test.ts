// Under `workers: 2` the primary serves the portal: a reset done there lifts a
// lockout the primary holds for every worker, and both workers accept the new
// password (pgveil serve as a child process, real SMTP, fetch, pg).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { seal } from '../../src/secrets/seal.js';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { startHarness, connectError, today, type Harness } from '../helpers/harness.js';
import { serveChild, waitFor } from '../helpers/run.js';
import { startSmtp, linkIn, SMTP_USER, SMTP_PASSWORD, type TestSmtp } from '../helpers/smtp.js';
import { rsaCert } from '../auth/test-certs.js';
import { trustingFetch, form } from './portal-fetch.js';

const PW = { dora: 'Dora-pass-0051' };
let h: Harness;
let smtp: TestSmtp;

test.before(async () => {
  smtp = await startSmtp('starttls');
  h = await startHarness({
    tlsMode: 'prefer',
    lockout: { maxFailures: 3, windowSeconds: 900, lockSeconds: 1800 },
    extraUsers: `  dora:\n    org: acme\n    email: dora@acme.com\n    password: "${createVerifier(PW.dora)}"\n    passwordChangedAt: ${today()}\n`,
  });
});
test.after(async () => { await h?.close(); await smtp?.close(); });

test('workers: 2 — the primary\'s portal resets a locked-out user; both workers accept the new password and the lock is gone', async () => {
  const portalCert = rsaCert('127.0.0.1');
  writeFileSync(join(h.dir, 'portal.crt'), portalCert.certPem);
  writeFileSync(join(h.dir, 'portal.key'), portalCert.keyPem, { mode: 0o600 });
  writeFileSync(join(h.dir, 'smtp-ca.pem'), smtp.cert.certPem);
  const key = Buffer.from(readFileSync(join(h.dir, 'master.key'), 'utf8').trim(), 'base64');
  const [port, portalPort] = [await freePort(), await freePort()];
  const text = readFileSync(h.configFile, 'utf8').replace('listen: { host: 127.0.0.1, port: 0 }', `listen: { host: 127.0.0.1, port: ${port} }`);
  assert.ok(text.includes(`port: ${port}`));
  const configFile = join(h.dir, 'pgveil-workers.yaml');
  writeFileSync(configFile, `${text.trimEnd()}
workers: 2
smtp: { host: 127.0.0.1, port: ${smtp.port}, tls: starttls, user: ${SMTP_USER}, password: "${seal(SMTP_PASSWORD, key)}", from: "pgveil <noreply@acme.com>", ca: smtp-ca.pem }
reset: { linkBase: "https://portal.test/reset", ttlMinutes: 30 }
portal: { host: 127.0.0.1, port: ${portalPort}, tls: { cert: portal.crt, key: portal.key }, publicUrl: "https://portal.test" }
audit: { file: audit-workers.jsonl }
`);
  const serve = await serveChild(configFile, 'pgveil workers listening');
  try {
    assert.match(serve.output(), /"msg":"portal listening"/);
    assert.not.match(serve.output(), /"msg":"portal listening"[^\n]*"worker"/, 'only the primary serves the portal');
    for (let i = 0; i < 3; i++) await connectError(h, port, 'dora', { password: 'wrong-password-x' });
    const auditFile = join(h.dir, 'audit-workers.jsonl');
    const audit = () => (existsSync(auditFile) ? readFileSync(auditFile, 'utf8') : '');
    await waitFor('the lockout record', () => audit().includes('"event":"lockout","scope":"user","key":"dora"'));
    assert.is((await connectError(h, port, 'dora', { password: PW.dora }))?.code, '28P01', 'locked');

    const get = await trustingFetch(portalCert);
    const base = `https://127.0.0.1:${portalPort}`;
    assert.is((await get(`${base}/reset`, form({ user: 'dora' }))).status, 200);
    await waitFor('the reset mail', () => smtp.mails.length > 0);
    const link = linkIn(smtp.mails[0]).replace('https://portal.test', base);
    assert.is((await get(link, form({ password: 'Dora-new-pass-52', confirm: 'Dora-new-pass-52' }))).status, 200);
    // The 200 came after every worker reloaded: both accept it at once (consecutive connections alternate).
    assert.is(await connectError(h, port, 'dora', { password: 'Dora-new-pass-52' }), undefined);
    assert.is(await connectError(h, port, 'dora', { password: 'Dora-new-pass-52' }), undefined);
    await waitFor('the completed record', () => audit().includes('"event":"password_reset","user":"dora","step":"completed"'));
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
});

test.run();
