// Checks a password the client sent in clear (over TLS) against a stored
// SCRAM-SHA-256 verifier: SaltedPassword from the verifier's own salt and
// iteration count, then the same StoredKey/ServerKey a SCRAM client proves.
// Asynchronous (libuv's thread pool runs the PBKDF2), so a login's 4096+
// iterations never stall the other sessions of the process.
import { pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { scramPasswordBytes } from './saslprep.js';
import { isFakeVerifier, SCRAM_KEY_LEN, scramKeys, type ScramVerifier } from './scram-verifier.js';

const pbkdf2Async = promisify(pbkdf2);

/** Whether `password` is the one behind `verifier`; always false for a fake verifier (the work is still done). */
export async function passwordMatchesVerifier(password: string, verifier: ScramVerifier): Promise<boolean> {
  const salted = await pbkdf2Async(scramPasswordBytes(password), verifier.salt, verifier.iterations, SCRAM_KEY_LEN, 'sha256');
  const keys = scramKeys(salted);
  // Both keys at once, so the time does not depend on which one differs.
  const same = timingSafeEqual(Buffer.concat([keys.storedKey, keys.serverKey]), Buffer.concat([verifier.storedKey, verifier.serverKey]));
  return same && !isFakeVerifier(verifier);
}
