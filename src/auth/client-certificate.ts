// Verifies a client certificate against tls.clientCa. pgveil upgrades the
// raw socket itself (after SSLRequest), and a TLSSocket made that way never
// sets `authorized`, so the check is done here with node:crypto: issued and
// signed by one of the configured CAs, inside its validity period, and fit
// for client authentication. Chains through intermediates are not accepted.
import { X509Certificate } from 'node:crypto';

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

/** Parses every certificate of a PEM bundle. */
export function parseCaBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

export function verifyClientCertificate(cert: X509Certificate, cas: X509Certificate[], now = Date.now()): boolean {
  if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) return false;
  const usage = cert.keyUsage; // extended key usage OIDs; undefined when the extension is absent
  if (usage && !usage.includes(CLIENT_AUTH_OID)) return false;
  return cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey)
    && now >= Date.parse(ca.validFrom) && now <= Date.parse(ca.validTo));
}

/** The certificate's subject CN, the pgveil user name it vouches for. */
export function commonName(cert: X509Certificate): string | undefined {
  const line = cert.subject.split('\n').find((l) => l.startsWith('CN='));
  return line?.slice(3);
}
