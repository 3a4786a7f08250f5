// Sealed config values: "sealed:" + base64(24-byte nonce ‖ secretbox), with
// tweetnacl's secretbox (XSalsa20-Poly1305) under the 256-bit master key.
// Errors never include the value, sealed or open.
import nacl from 'tweetnacl';

export const SEALED_PREFIX = 'sealed:';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function checkKey(key: Uint8Array): void {
  if (key.length !== nacl.secretbox.keyLength) {
    throw new Error(`master key must be ${nacl.secretbox.keyLength} bytes, got ${key.length}`);
  }
}

export function isSealed(value: string): boolean {
  return value.startsWith(SEALED_PREFIX);
}

export function seal(plaintext: string, key: Uint8Array): string {
  checkKey(key);
  const nonce = nacl.randomBytes(nacl.secretbox.nonceLength);
  const box = nacl.secretbox(new TextEncoder().encode(plaintext), nonce, key);
  return SEALED_PREFIX + Buffer.concat([nonce, box]).toString('base64');
}

export function openSealed(value: string, key: Uint8Array): string {
  checkKey(key);
  if (!isSealed(value)) throw new Error('value is not sealed (expected "sealed:…")');
  const body = value.slice(SEALED_PREFIX.length).trim();
  const raw = BASE64.test(body) ? Buffer.from(body, 'base64') : null;
  if (!raw || raw.length < nacl.secretbox.nonceLength + nacl.secretbox.overheadLength) {
    throw new Error('sealed value is malformed (expected "sealed:" followed by the base64 that `pgveil seal` prints)');
  }
  const nonce = raw.subarray(0, nacl.secretbox.nonceLength);
  const opened = nacl.secretbox.open(raw.subarray(nacl.secretbox.nonceLength), nonce, key);
  if (!opened) throw new Error('sealed value could not be opened with this master key (was it sealed with another key?)');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(opened);
  } catch {
    throw new Error('sealed value does not hold UTF-8 text');
  }
}

/** A sealed config value that could not be opened: not retryable, and its message names the file and key. */
export class SealedValueError extends Error {
  override name = 'SealedValueError';
}

/**
 * Opens a sealed value and passes a plain one through. The key is loaded
 * only when a sealed value is met, so configs without any need no key.
 * `where` names the value for errors (`pgveil.yaml: upstream.password`);
 * the value itself never appears in them.
 */
export function resolveSecret(value: string | undefined, key: () => Uint8Array, where: string): string | undefined {
  if (value === undefined || !isSealed(value)) return value;
  try {
    return openSealed(value, key());
  } catch (err) {
    throw new SealedValueError(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
