// RFC 6238 one-time codes (SHA1, 6 digits, 30 s steps), computed by the
// otpauth library: a user's secret, the code a login carries, and the time
// step it matched (what replay protection remembers).
import { inspect } from 'node:util';
import { Secret, TOTP } from 'otpauth';

export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_SECONDS = 30;
/** Steps accepted either side of now: one, for clocks a little off. */
export const TOTP_WINDOW = 1;
const ISSUER = 'pgveil';

/**
 * A user's opened TOTP secret. Kept out of JSON, logs and util.inspect, so a
 * User object that is logged or serialised by mistake does not carry it.
 */
export class TotpSecret {
  readonly #base32: string;
  /** Throws when the text is not base32 of at least 80 bits (the message never quotes the text). */
  constructor(base32: string) {
    let secret: Secret;
    try { secret = Secret.fromBase32(base32); } catch { throw new Error('the sealed text is not a base32 TOTP secret'); }
    if (secret.bytes.length < 10) throw new Error('the TOTP secret is shorter than 80 bits');
    this.#base32 = secret.base32;
  }
  totp(user: string): TOTP {
    return new TOTP({ issuer: ISSUER, label: user, secret: Secret.fromBase32(this.#base32), algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS });
  }
  toJSON(): string { return '[totp secret]'; }
  [inspect.custom](): string { return '[totp secret]'; }
}

/** A new random secret (160 bits, as RFC 4226 recommends), base32. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The otpauth:// URI an authenticator app enrols from (issuer pgveil, label the user). */
export function totpUri(secret: TotpSecret, user: string): string {
  return secret.totp(user).toString();
}

/** The password and the code of "password" + 6 digits; no code when the text does not end in 6 digits. */
export function splitCode(text: string): { password: string; code?: string } {
  const code = text.slice(-TOTP_DIGITS);
  if (text.length < TOTP_DIGITS || !/^[0-9]{6}$/.test(code)) return { password: text };
  return { password: text.slice(0, -TOTP_DIGITS), code };
}

/** The time step `code` is valid for (now ± the window), or undefined when it is not a current code. */
export function matchingStep(secret: TotpSecret, user: string, code: string, now = Date.now()): number | undefined {
  const totp = secret.totp(user);
  const delta = totp.validate({ token: code, timestamp: now, window: TOTP_WINDOW });
  if (delta === null) return undefined;
  return totp.counter({ timestamp: now }) + delta;
}
