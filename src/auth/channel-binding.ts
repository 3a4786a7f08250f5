// tls-server-end-point channel binding data (RFC 5929 §4.1): a hash of the
// server's DER certificate, using the hash of the certificate's signature
// algorithm, except that MD5 and SHA-1 are replaced by SHA-256. The same
// rules as PostgreSQL (OpenSSL's X509_get_signature_info), so Ed25519 hashes
// with SHA-512 and Ed448 is unsupported, as it is there.
import { createHash } from 'node:crypto';

export const TLS_SERVER_END_POINT = 'tls-server-end-point';

const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
const OID_SHA1 = '1.3.14.3.2.26';

/** Signature algorithm OID → digest named the way node:crypto names it. */
const SIGNATURE_DIGESTS: Record<string, string> = {
  // RSA PKCS#1 v1.5
  '1.2.840.113549.1.1.4': 'md5',
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.15': 'sha512-224',
  '1.2.840.113549.1.1.16': 'sha512-256',
  // ECDSA
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  // DSA
  '1.2.840.10040.4.3': 'sha1',
  '2.16.840.1.101.3.4.3.1': 'sha224',
  '2.16.840.1.101.3.4.3.2': 'sha256',
  '2.16.840.1.101.3.4.3.3': 'sha384',
  '2.16.840.1.101.3.4.3.4': 'sha512',
  // ECDSA and RSA with SHA-3
  '2.16.840.1.101.3.4.3.9': 'sha3-224',
  '2.16.840.1.101.3.4.3.10': 'sha3-256',
  '2.16.840.1.101.3.4.3.11': 'sha3-384',
  '2.16.840.1.101.3.4.3.12': 'sha3-512',
  '2.16.840.1.101.3.4.3.13': 'sha3-224',
  '2.16.840.1.101.3.4.3.14': 'sha3-256',
  '2.16.840.1.101.3.4.3.15': 'sha3-384',
  '2.16.840.1.101.3.4.3.16': 'sha3-512',
  // Ed25519: OpenSSL reports SHA-512 for it, and PostgreSQL uses that
  '1.3.101.112': 'sha512',
};

/** Hash algorithm OIDs, for RSASSA-PSS whose hash is in the parameters. */
const HASH_OIDS: Record<string, string> = {
  '1.2.840.113549.2.5': 'md5',
  [OID_SHA1]: 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.5': 'sha512-224',
  '2.16.840.1.101.3.4.2.6': 'sha512-256',
  '2.16.840.1.101.3.4.2.7': 'sha3-224',
  '2.16.840.1.101.3.4.2.8': 'sha3-256',
  '2.16.840.1.101.3.4.2.9': 'sha3-384',
  '2.16.840.1.101.3.4.2.10': 'sha3-512',
};

interface Tlv { tag: number; start: number; end: number }

function readTlv(der: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new Error('truncated DER');
  const tag = der[offset];
  let length = der[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > limit) throw new Error('bad DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i];
    start += count;
  }
  const end = start + length;
  if (end > limit) throw new Error('truncated DER');
  return { tag, start, end };
}

function expect(der: Buffer, offset: number, limit: number, tag: number): Tlv {
  const tlv = readTlv(der, offset, limit);
  if (tlv.tag !== tag) throw new Error('unexpected DER tag');
  return tlv;
}

function decodeOid(der: Buffer, tlv: Tlv): string {
  if (tlv.end <= tlv.start) throw new Error('empty OID');
  const first = der[tlv.start];
  const parts = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  let value = 0;
  for (let i = tlv.start + 1; i < tlv.end; i++) {
    value = value * 128 + (der[i] & 0x7f);
    if (!(der[i] & 0x80)) { parts.push(value); value = 0; }
  }
  return parts.join('.');
}

/** The hash of the signature algorithm of a DER certificate, before the MD5/SHA-1 substitution. */
function signatureDigest(der: Buffer): string {
  const SEQUENCE = 0x30, OID = 0x06, CONTEXT_0 = 0xa0;
  const cert = expect(der, 0, der.length, SEQUENCE);
  const tbs = expect(der, cert.start, cert.end, SEQUENCE);
  const algId = expect(der, tbs.end, cert.end, SEQUENCE);
  const oidTlv = expect(der, algId.start, algId.end, OID);
  const oid = decodeOid(der, oidTlv);
  if (oid !== OID_RSASSA_PSS) {
    const digest = SIGNATURE_DIGESTS[oid];
    if (!digest) throw new Error(`channel binding is not supported for certificates signed with algorithm ${oid}`);
    return digest;
  }
  // RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1, ... }
  if (oidTlv.end >= algId.end) return 'sha1';
  const params = expect(der, oidTlv.end, algId.end, SEQUENCE);
  if (params.start >= params.end || der[params.start] !== CONTEXT_0) return 'sha1';
  const hashWrap = expect(der, params.start, params.end, CONTEXT_0);
  const hashAlg = expect(der, hashWrap.start, hashWrap.end, SEQUENCE);
  const hashOid = decodeOid(der, expect(der, hashAlg.start, hashAlg.end, OID));
  const digest = HASH_OIDS[hashOid];
  if (!digest) throw new Error(`channel binding is not supported for RSASSA-PSS with hash ${hashOid}`);
  return digest;
}

/** The hash algorithm tls-server-end-point uses for this certificate. Throws when unsupported. */
export function endPointDigest(der: Buffer): string {
  const digest = signatureDigest(der);
  return digest === 'md5' || digest === 'sha1' ? 'sha256' : digest;
}

/** tls-server-end-point channel binding data for a DER certificate. Throws when unsupported. */
export function tlsServerEndPointHash(der: Buffer): Buffer {
  return createHash(endPointDigest(der)).update(der).digest();
}

/** Whether tls-server-end-point can be computed for this certificate (decides whether -PLUS is offered). */
export function supportsChannelBinding(der: Buffer | undefined): boolean {
  if (!der) return false;
  try { endPointDigest(der); return true; } catch { return false; }
}
