// The identity provider's signing certificates from `sso.saml.idpCert`: a PEM
// file with one certificate, or several while the IdP rotates its key (any of
// them verifies). Checked when the config loads, read again at each login so a
// replaced file applies without a restart.
import { X509Certificate } from 'node:crypto';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates in the file's text; throws when there is none or one does not parse. */
export function idpCertificates(text: string): string[] {
  const certs = text.match(PEM_CERTIFICATE) ?? [];
  if (certs.length === 0) throw new Error('holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  for (const pem of certs) {
    try { new X509Certificate(pem); } catch { throw new Error('holds a certificate that does not parse'); }
  }
  return certs;
}

/** Why the file's text cannot verify assertions, or undefined when it can. */
export function idpCertProblem(text: string): string | undefined {
  try { idpCertificates(text); return undefined; } catch (err) { return (err as Error).message; }
}
