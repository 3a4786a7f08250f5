// auth.passwordPolicy.maxAgeDays, checked at login only after a correct
// proof (an unknown user or a wrong password gets the ordinary failure, so
// the "expired" message never tells an outsider that an account exists).
// A password without passwordChangedAt has an unknown age: it counts as
// expired (fail closed) unless maxAgeDays is 0.
import type { User } from '../config/types.js';
import { PgError, SqlState } from '../errors.js';

const DAY_MS = 86_400_000;

/** Why the user's password may no longer be used, or undefined when it may. */
export function passwordExpiry(user: User, maxAgeDays: number, now = Date.now()): 'expired' | 'undated' | undefined {
  if (maxAgeDays <= 0) return undefined;
  const changed = user.passwordChangedAt;
  if (changed === undefined) return 'undated';
  // Same reading as the loader's date check: `YYYY-MM-DD` is midnight UTC.
  const at = Date.parse(changed.includes(' ') ? changed.replace(' ', 'T') : changed);
  if (Number.isNaN(at)) return 'undated';
  return now - at > maxAgeDays * DAY_MS ? 'expired' : undefined;
}

/**
 * The error an expired password gets. `resetPage`: the portal's reset page,
 * when the portal and reset are configured (the hint names it first).
 */
export function passwordExpiredError(user: string, maxAgeDays: number, why: 'expired' | 'undated', resetPage?: string): PgError {
  const detail = why === 'expired'
    ? `It was last changed more than ${maxAgeDays} days ago (auth.passwordPolicy.maxAgeDays).`
    : `users.yaml records no passwordChangedAt for it, so its age is unknown; passwords expire after ${maxAgeDays} days (auth.passwordPolicy.maxAgeDays).`;
  return new PgError(SqlState.InvalidPassword, `password for user "${user}" has expired`, {
    severity: 'FATAL',
    detail,
    hint: resetPage
      ? `Choose a new password at ${resetPage} (a link is mailed to you), or ask a pgveil administrator to run "pgveil reset-request --config <pgveil.yaml> ${user}".`
      : `Ask a pgveil administrator to mail you a reset link with "pgveil reset-request --config <pgveil.yaml> ${user}" or to set a new password with "pgveil passwd --config <pgveil.yaml> --write ${user}".`,
  });
}
