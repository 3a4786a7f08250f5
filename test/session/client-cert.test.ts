// clientCert: required — the password is not enough; a client certificate
// signed by tls.clientCa whose CN is the user name is the second factor.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCertificateAuthority, createClientCertificate } from '../../src/demo/certs.js';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { startHarness, today, type Harness } from '../helpers/harness.js';
import { psql } from '../helpers/run.js';

const davePassword = 'Dave-pass-0004';
let h: Harness;
test.before(async () => {
  h = await startHarness({
    clientCa: true,
    extraUsers: `  dave@acme.com:\n    org: acme\n    password: "${createVerifier(davePassword)}"\n    passwordChangedAt: ${today()}\n    clientCert: required\n`,
  });
});
test.after(async () => { await h?.close(); });

function writeCert(name: string, cert: { certPem: string; keyPem: string }): string {
  writeFileSync(join(h.dir, `${name}.crt`), cert.certPem);
  writeFileSync(join(h.dir, `${name}.key`), cert.keyPem, { mode: 0o600 });
  return `sslcert=${join(h.dir, `${name}.crt`)} sslkey=${join(h.dir, `${name}.key`)}`;
}

const base = () => `host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=dave@acme.com sslmode=verify-full sslrootcert=${h.caFile}`;

test('D3 a user with clientCert: required is refused without a certificate, even with the right password', async () => {
  const r = await psql(base(), 'select 1', davePassword);
  assert.is.not(r.status, 0);
  assert.match(r.stderr, /certificate authentication failed/);
});

test('D3 the right certificate plus the right password logs in', async () => {
  const files = writeCert('dave', createClientCertificate(h.ca, 'dave@acme.com'));
  const r = await psql(`${base()} ${files}`, 'select 6 * 7', davePassword);
  assert.is(r.stderr, '');
  assert.is(r.stdout.trim(), '42');
});

test('D3 a certificate for another user, or from another CA, is refused', async () => {
  const other = writeCert('alice', createClientCertificate(h.ca, 'alice@acme.com'));
  const r1 = await psql(`${base()} ${other}`, 'select 1', davePassword);
  assert.is.not(r1.status, 0);
  const foreign = writeCert('foreign', createClientCertificate(createCertificateAuthority('other CA'), 'dave@acme.com'));
  const r2 = await psql(`${base()} ${foreign}`, 'select 1', davePassword);
  assert.is.not(r2.status, 0);
});

test('users without clientCert: required still log in with a password only', async () => {
  const r = await psql(`host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=alice@acme.com sslmode=require`, 'select 1', 'Alice-pass-0001');
  assert.is(r.stdout.trim(), '1');
});

test.run();
