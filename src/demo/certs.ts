// A throw-away certificate authority and server certificates for the demo and
// the TLS tests. The certificates are built to pass strict verifiers
// (libpq verify-full, OpenSSL's X509_STRICT): CA with critical
// basicConstraints and keyUsage, server cert with serverAuth EKU, SKI/AKI,
// and subjectAltName entries typed as IP or DNS — verifiers match an IP
// address only against an iPAddress entry, never against a dNSName.
import forge from 'node-forge';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';

export interface CertificateAuthority { certPem: string; keyPem: string }
export interface IssuedCertificate { certPem: string; keyPem: string }

export interface ServerCertificateOptions {
  commonName: string;
  /** DNS names and IP addresses the certificate is valid for. */
  hosts: string[];
  days?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const CA_DAYS = 3650;
const SERVER_DAYS = 365;
/** Backdating tolerates a verifier whose clock is slightly behind ours. */
const BACKDATE_MS = 60 * 60 * 1000;

/** Node's native RSA generation: forge's pure-JS one takes seconds. */
function rsaKeyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; keyPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const publicKey = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
  return { privateKey: forgeKey, publicKey, keyPem };
}

/** A random positive 128-bit serial (DER INTEGER: the top bit must be clear). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01;
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate, days: number): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(now + days * DAY_MS);
}

export function createCertificateAuthority(commonName: string): CertificateAuthority {
  const { privateKey, publicKey, keyPem } = rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialNumber();
  validity(cert, CA_DAYS);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

function subjectAltNames(hosts: string[]): Array<{ type: number; value?: string; ip?: string }> {
  // GeneralName tags from RFC 5280: 2 = dNSName, 7 = iPAddress.
  return hosts.map((host) => (isIP(host) ? { type: 7, ip: host } : { type: 2, value: host }));
}

/** Signs a leaf certificate for `commonName` with the CA; `extensions` carry its purpose. */
function issue(ca: CertificateAuthority, commonName: string, days: number, extensions: object[]): IssuedCertificate {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const { publicKey, keyPem } = rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialNumber();
  validity(cert, days);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    ...extensions,
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

export function createServerCertificate(ca: CertificateAuthority, opts: ServerCertificateOptions): IssuedCertificate {
  if (opts.hosts.length === 0) throw new Error('createServerCertificate: at least one host is needed');
  return issue(ca, opts.commonName, opts.days ?? SERVER_DAYS, [
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: subjectAltNames(opts.hosts) },
  ]);
}

/** A client certificate (clientAuth) whose CN names a pgveil user, for `clientCert: required`. */
export function createClientCertificate(ca: CertificateAuthority, commonName: string, days = SERVER_DAYS): IssuedCertificate {
  return issue(ca, commonName, days, [{ name: 'extKeyUsage', clientAuth: true }]);
}
