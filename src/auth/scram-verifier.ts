// SCRAM-SHA-256 verifiers in PostgreSQL's pg_authid format:
//   SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>   (base64 fields)
// plus the key derivation shared by the server and client exchanges.
// Error messages never include the verifier text: it is a secret at rest.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { scramPasswordBytes } from './saslprep.js';

export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export const SCRAM_KEY_LEN = 32;
export const DEFAULT_ITERATIONS = 4096;
export const DEFAULT_SALT_LEN = 16;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes canonical base64 (RFC 4648, padded); null when the text is not exactly that. */
export function decodeBase64(text: string): Buffer | null {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : null;
}

export function hmac(key: Buffer, data: Buffer | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** SaltedPassword = Hi(SASLprep(password), salt, i) (RFC 5802 §3). */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(scramPasswordBytes(password), salt, iterations, SCRAM_KEY_LEN, 'sha256');
}

/** ClientKey, StoredKey and ServerKey from a SaltedPassword. */
export function scramKeys(salted: Buffer): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const clientKey = hmac(salted, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

/** Parses a pg_authid-format verifier; throws a plain Error (without the text) when malformed. */
export function parseVerifier(text: string): ScramVerifier {
  const m = /^SCRAM-SHA-256\$([0-9]+):([^$:]+)\$([^$:]+):([^$:]+)$/.exec(text);
  if (!m) throw new Error('malformed SCRAM-SHA-256 verifier: expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>');
  const iterations = Number(m[1]);
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > 0x7fffffff) {
    throw new Error('malformed SCRAM-SHA-256 verifier: bad iteration count');
  }
  const salt = decodeBase64(m[2]);
  const storedKey = decodeBase64(m[3]);
  const serverKey = decodeBase64(m[4]);
  if (!salt || salt.length === 0) throw new Error('malformed SCRAM-SHA-256 verifier: bad salt');
  if (!storedKey || storedKey.length !== SCRAM_KEY_LEN) throw new Error('malformed SCRAM-SHA-256 verifier: bad StoredKey');
  if (!serverKey || serverKey.length !== SCRAM_KEY_LEN) throw new Error('malformed SCRAM-SHA-256 verifier: bad ServerKey');
  return { iterations, salt, storedKey, serverKey };
}

export function formatVerifier(v: ScramVerifier): string {
  return `SCRAM-SHA-256$${v.iterations}:${v.salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

/** A new verifier for `password` (SASLprep'd as PostgreSQL does; see saslprep.ts). */
export function createVerifier(password: string, opts: { iterations?: number; salt?: Buffer } = {}): string {
  const iterations = opts.iterations ?? DEFAULT_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > 0x7fffffff) {
    throw new Error('SCRAM iteration count must be a positive 32-bit integer');
  }
  const salt = opts.salt ?? randomBytes(DEFAULT_SALT_LEN);
  if (salt.length === 0) throw new Error('SCRAM salt must not be empty');
  const { storedKey, serverKey } = scramKeys(saltedPassword(password, salt, iterations));
  return formatVerifier({ iterations, salt, storedKey, serverKey });
}

/** Whether `password` matches `verifier`; false for a malformed verifier. Constant-time comparison. */
export function verifierMatches(verifier: string, password: string): boolean {
  let v: ScramVerifier;
  try { v = parseVerifier(verifier); } catch { return false; }
  const keys = scramKeys(saltedPassword(password, v.salt, v.iterations));
  // Compare both keys at once so the time does not depend on which differs.
  return timingSafeEqual(Buffer.concat([keys.storedKey, keys.serverKey]), Buffer.concat([v.storedKey, v.serverKey]));
}

// Verifiers made by fakeVerifier: the server exchange fails them whatever
// the proof, so even a 2^-256 collision cannot authenticate an unknown user.
const fakes = new WeakSet<ScramVerifier>();

/**
 * A stand-in verifier for a user that does not exist (or has no password), so
 * that an unknown user runs the exact same exchange as a known one (threat
 * D2). Deterministic per (user, secret): the same salt on every attempt, as a
 * real user's would be. `secret` must be random and kept for the process's
 * life; with several workers it must be the same in all of them.
 */
export function fakeVerifier(user: string, secret: Buffer, iterations = DEFAULT_ITERATIONS): ScramVerifier {
  const derive = (label: string, len: number) => hmac(secret, `${label}\0${user}`).subarray(0, len);
  const v: ScramVerifier = {
    iterations,
    salt: derive('pgveil-fake-salt', DEFAULT_SALT_LEN),
    storedKey: derive('pgveil-fake-stored-key', SCRAM_KEY_LEN),
    serverKey: derive('pgveil-fake-server-key', SCRAM_KEY_LEN),
  };
  fakes.add(v);
  return v;
}

/** True for verifiers made by fakeVerifier. */
export function isFakeVerifier(v: ScramVerifier): boolean {
  return fakes.has(v);
}
