// The demo CA and server certificate must satisfy real verifiers: Node's TLS
// client with its default hostname check (the same rules as libpq
// verify-full), and OpenSSL in strict mode when the binary is available.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createCertificateAuthority, createServerCertificate } from '../../src/demo/certs.js';

const ca = createCertificateAuthority('pgveil test CA');
const server = createServerCertificate(ca, { commonName: 'pgveil test', hosts: ['localhost', '127.0.0.1', '::1'] });
const otherCa = createCertificateAuthority('some other CA');

let srv: tls.Server;
let port = 0;

test.before(async () => {
  srv = tls.createServer({ cert: server.certPem, key: server.keyPem }, (socket) => socket.end('hello\n'));
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  port = (srv.address() as AddressInfo).port;
});

test.after(async () => {
  await new Promise<void>((resolve) => srv.close(() => resolve()));
});

/** Connects to the test server as `host` (the name the client checks) and resolves with the greeting or rejects with the TLS error. */
function connectAs(host: string, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: host, ca: caPem, checkServerIdentity: (_h, cert) => tls.checkServerIdentity(host, cert) });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { data += d; });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

test('verify-full style connection succeeds for localhost', async () => {
  assert.is(await connectAs('localhost', ca.certPem), 'hello\n');
});

test('verify-full style connection succeeds for 127.0.0.1 (an IP SAN)', async () => {
  // With host set to an IP, Node checks the certificate against that IP, as libpq does.
  const data = await new Promise<string>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem });
    let out = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { out += d; });
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
  assert.is(data, 'hello\n');
});

test('a host not in the certificate is rejected', async () => {
  try {
    await connectAs('db.example.com', ca.certPem);
    assert.unreachable('connection should have failed');
  } catch (err) {
    assert.match(String((err as Error).message), /does not match|altnames/i);
  }
});

test('another CA does not accept the certificate', async () => {
  try {
    await connectAs('localhost', otherCa.certPem);
    assert.unreachable('connection should have failed');
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  }
});

test('certificate fields: SAN types, EKU, CA flag, SHA-256, RSA 2048', () => {
  const leaf = new X509Certificate(server.certPem);
  const root = new X509Certificate(ca.certPem);
  assert.ok(root.ca, 'CA certificate has cA=true');
  assert.not.ok(leaf.ca, 'server certificate is not a CA');
  assert.ok(leaf.verify(root.publicKey), 'signed by the CA');
  assert.ok(leaf.checkIssued(root));
  assert.is(leaf.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  assert.ok(leaf.checkIP('127.0.0.1'));
  assert.is(leaf.checkHost('127.0.0.1'), undefined, 'an IP must not be listed as a DNS name');
  assert.equal(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  assert.is(leaf.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  assert.ok(new Date(leaf.validFrom) <= new Date(), 'valid now');
  const days = (new Date(leaf.validTo).getTime() - Date.now()) / 86_400_000;
  assert.ok(days > 364 && days < 366, `default lifetime is a year, got ${days}`);
});

test('days option sets the lifetime', () => {
  const short = createServerCertificate(ca, { commonName: 'short', hosts: ['localhost'], days: 2 });
  const days = (new Date(new X509Certificate(short.certPem).validTo).getTime() - Date.now()) / 86_400_000;
  assert.ok(days > 1.9 && days < 2.1, `got ${days}`);
});

test('OpenSSL strict verification for purpose sslserver', () => {
  const probe = spawnSync('openssl', ['version']);
  if (probe.status !== 0) { console.log('  (openssl not installed: skipped)'); return; }
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-certs-'));
  try {
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    writeFileSync(join(dir, 'server.crt'), server.certPem);
    const verify = (extra: string[]) => spawnSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.crt'), ...extra, join(dir, 'server.crt')], { encoding: 'utf8' });
    const ok = verify(['-verify_ip', '127.0.0.1']);
    assert.is(ok.status, 0, ok.stdout + ok.stderr);
    assert.is(verify(['-verify_hostname', 'localhost']).status, 0);
    assert.is.not(verify(['-verify_hostname', 'db.example.com']).status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
