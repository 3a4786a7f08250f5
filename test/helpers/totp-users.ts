// TOTP users for tests: a sealed secret for users.yaml (sealed with the
// harness's master key) and codes for any time step, made with otpauth as an
// authenticator app would make them.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { seal } from '../../src/secrets/seal.js';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { today, type Harness } from './harness.js';

export interface TotpUser { name: string; password: string; secret: string }

export function newTotpUser(name: string, password: string): TotpUser {
  return { name, password, secret: new Secret({ size: 20 }).base32 };
}

/** The users.yaml entry of `u`, its secret sealed with the harness's master key. */
export function totpUserYaml(h: Harness, u: TotpUser, extra = ''): string {
  const key = Buffer.from(readFileSync(join(h.dir, 'master.key'), 'utf8').trim(), 'base64');
  return `  ${u.name}:\n    org: acme\n    groups: [analysts]\n    password: "${createVerifier(u.password)}"\n    passwordChangedAt: ${today()}\n    totp: "${seal(u.secret, key)}"\n${extra}`;
}

/** Adds the users to the harness's users.yaml and reloads it. */
export async function addTotpUsers(h: Harness, users: TotpUser[]): Promise<void> {
  appendFileSync(join(h.dir, 'users.yaml'), users.map((u) => totpUserYaml(h, u)).join(''));
  if (!await h.proxy.reload()) throw new Error('users.yaml with TOTP users did not reload');
}

export function totpOf(secret: string): TOTP {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
}

/** The code of the step `offset` steps from the one at `at`. */
export function codeAt(secret: string, at: number, offset = 0): string {
  return totpOf(secret).generate({ timestamp: at + offset * 30_000 });
}

/** Waits until at least `seconds` of the current 30 s step are left (so a sequence of logins stays in one step). */
export async function startOfStep(seconds = 15): Promise<number> {
  for (;;) {
    const left = TOTP.remaining({ period: 30, timestamp: Date.now() }) / 1000;
    if (left >= seconds) return Date.now();
    await new Promise((r) => setTimeout(r, left * 1000 + 50));
  }
}
