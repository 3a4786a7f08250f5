// Self-signed certificates for the channel-binding tests, signed with a
// chosen hash (forge for RSA; openssl, when installed, for other key types).
import forge from 'node-forge';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert { certPem: string; keyPem: string; der: Buffer }

export type ForgeHash = 'sha1' | 'sha256' | 'sha384' | 'sha512' | 'md5';

export function rsaCert(commonName: string, hash: ForgeHash = 'sha256'): TestCert {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '01' + Math.floor(Math.random() * 1e9).toString(16);
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 86400_000);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] }]);
  cert.sign(key, forge.md[hash].create());
  const certPem = forge.pki.certificateToPem(cert);
  return { certPem, keyPem, der: Buffer.from(new X509Certificate(certPem).raw) };
}

export function hasOpenssl(): boolean {
  try { execFileSync('openssl', ['version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** A self-signed certificate made by `openssl req` with extra arguments (key type, digest). */
export function opensslCert(args: string[]): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-cert-'));
  const certFile = join(dir, 'c.pem');
  const keyFile = join(dir, 'k.pem');
  execFileSync('openssl', ['req', '-x509', '-nodes', '-days', '1', '-subj', '/CN=test', '-keyout', keyFile, '-out', certFile, ...args], { stdio: 'ignore' });
  const certPem = readFileSync(certFile, 'utf8');
  return { certPem, keyPem: readFileSync(keyFile, 'utf8'), der: Buffer.from(new X509Certificate(certPem).raw) };
}
