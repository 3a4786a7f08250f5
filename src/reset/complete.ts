// The last step of a reset: a token and a new password (typed twice) become
// the user's new SCRAM verifier in users.yaml (the same edit as
// `pgveil passwd --write`: comments and layout kept, old verifier moved into
// passwordHistory, passwordChangedAt today). The user comes from the token
// alone, never from anything else the request carries.
import type { AuditSink } from '../audit/record.js';
import { checkPasswordPolicy } from '../auth/password-policy.js';
import { createVerifier } from '../auth/scram-verifier.js';
import { loadUsers } from '../config/load.js';
import type { Config } from '../config/types.js';
import { writeUsersFile } from '../cli/passwd.js';
import { ResetTokenStore, resetStateFile } from './token-store.js';

export type CompleteResult =
  | { status: 'done'; user: string }
  /** Written to users.yaml, but the running pgveil rejected the files (an unrelated mistake in them): the old password still works. */
  | { status: 'not_loaded'; user: string }
  | { status: 'rejected'; problems: string[] }
  | { status: 'bad_token' };

export interface CompleteOptions {
  config: Config;
  audit: AuditSink;
  /** Lifts the user's lockout (under workers: N, in the primary and every worker). */
  unlock: (user: string) => Promise<unknown>;
  /** Makes the running pgveil read users.yaml now; false when it rejected the files and kept the old ones. */
  reload: () => Promise<boolean>;
  now?: () => number;
}

export async function completeReset(opts: CompleteOptions, token: string, password: string, confirm: string): Promise<CompleteResult> {
  const { config, audit } = opts;
  const store = new ResetTokenStore(resetStateFile(config.users), opts.now);
  const result = await store.redeem<CompleteResult>(token, async (user) => {
    const account = loadUsers(config.users, config).users.get(user);
    // A user removed or disabled since the mail: the token is spent for nothing.
    if (!account || account.disabled) return { spent: true, result: { status: 'bad_token' } };
    const problems: string[] = [];
    if (password !== confirm) problems.push('the two passwords do not match');
    if (password === '') problems.push('the password is empty');
    const previous = [account.password, ...account.passwordHistory].filter((v): v is string => typeof v === 'string' && v !== '');
    problems.push(...checkPasswordPolicy(password, config.auth.passwordPolicy, previous));
    if (problems.length > 0) {
      audit.record({ event: 'password_reset', user, step: 'rejected_weak' });
      return { spent: false, result: { status: 'rejected', problems } };
    }
    writeUsersFile(config.users, user, createVerifier(password), account.password || undefined, config.auth.passwordPolicy.history);
    return { spent: true, result: { status: 'done', user } };
  });
  if (!result || result.status === 'bad_token') {
    // No user to name: the token was unknown, used or expired.
    audit.record({ event: 'password_reset', user: '', step: 'rejected_token' });
    return { status: 'bad_token' };
  }
  if (result.status === 'done') {
    audit.record({ event: 'password_reset', user: result.user, step: 'completed' });
    // Reload first: a login between the unlock and the reload would fail with the new password and count toward a new lock.
    if (!await opts.reload()) {
      // Fail closed: the person is not told the new password works while pgveil still checks the old one.
      audit.record({ event: 'password_reset', user: result.user, step: 'not_loaded' });
      return { status: 'not_loaded', user: result.user };
    }
    await opts.unlock(result.user);
  }
  return result;
}
