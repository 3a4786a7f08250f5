// The password policy `auth.passwordPolicy` (docs/configuration.md): minimum length,
// minimum number of character classes, and no reuse of the last `history`
// passwords (checked against their verifiers, as only verifiers are kept).
// maxAgeDays is enforced at login, not here.
import type { PasswordPolicy } from '../config/types.js';
import { verifierMatches } from './scram-verifier.js';

const CLASSES: Array<{ name: string; test: RegExp }> = [
  { name: 'lowercase letters', test: /\p{Ll}/u },
  { name: 'uppercase letters', test: /\p{Lu}/u },
  { name: 'digits', test: /\p{Nd}/u },
  { name: 'other characters', test: /[^\p{Ll}\p{Lu}\p{Nd}]/u },
];

/**
 * Problems with `password` under `policy`, as sentences for a person; empty
 * when it is acceptable. `previousVerifiers` is newest first (the current
 * password, then the history); only the first `policy.history` are checked.
 * The messages never contain the password.
 */
export function checkPasswordPolicy(password: string, policy: PasswordPolicy, previousVerifiers: string[]): string[] {
  const problems: string[] = [];
  // Length in characters (code points), not UTF-16 units or bytes.
  const length = [...password].length;
  if (length < policy.minLength) {
    problems.push(`password is too short: ${length} characters, at least ${policy.minLength} required`);
  }
  const present = CLASSES.filter((c) => c.test.test(password)).length;
  if (present < policy.minClasses) {
    problems.push(`password uses ${present} of the character classes, at least ${policy.minClasses} required `
      + `(${CLASSES.map((c) => c.name).join(', ')})`);
  }
  const recent = previousVerifiers.slice(0, Math.max(0, policy.history));
  if (recent.some((v) => verifierMatches(v, password))) {
    problems.push(`password was used recently: it must differ from the last ${policy.history} passwords`);
  }
  return problems;
}
