// One password-reset request, from the CLI or the portal's form: issue a
// token, mail the link to the user's registered address, audit each step.
// The caller decides what a person learns (the portal: nothing).
import type { Config, User } from '../config/types.js';
import type { AuditSink } from '../audit/record.js';
import { ResetTokenStore, resetStateFile } from './token-store.js';
import { sendResetMail } from './mailer.js';

export type RequestOutcome = 'mail_sent' | 'no_email' | 'unknown_user' | 'user_disabled' | 'mail_failed';

export interface ResetRequest {
  config: Config;
  /** The user as users.yaml has it now, or undefined for an unknown name. */
  account: User | undefined;
  /** The name asked for (recorded as given when there is no such user). */
  name: string;
  audit: AuditSink;
  now?: () => number;
}

/** Where the mail goes: `email`, else the name when it is an address, else nowhere. */
export function resetAddress(user: User): string | undefined {
  if (user.email) return user.email;
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(user.name) ? user.name : undefined;
}

/** The page a reset link opens. */
export function resetLink(linkBase: string, token: string): string {
  return `${linkBase.replace(/\/+$/, '')}/${token}`;
}

export async function requestReset(req: ResetRequest): Promise<{ outcome: RequestOutcome; error?: string }> {
  const { config, account, name, audit } = req;
  const reset = config.reset!;
  audit.record({ event: 'password_reset', user: name, step: 'requested' });
  const finish = (outcome: RequestOutcome, error?: string) => {
    audit.record({ event: 'password_reset', user: name, step: outcome });
    return { outcome, error };
  };
  if (!account) return finish('unknown_user');
  if (account.disabled) return finish('user_disabled');
  const to = resetAddress(account);
  if (!to) return finish('no_email');
  const store = new ResetTokenStore(resetStateFile(config.users), req.now);
  const token = await store.issue(account.name, reset.ttlMinutes);
  try {
    await sendResetMail(config, to, account.name, resetLink(reset.linkBase, token), reset.ttlMinutes);
  } catch (err) {
    // A link nobody received must not stay usable.
    await store.discard(token).catch(() => {});
    return finish('mail_failed', err instanceof Error ? err.message : String(err));
  }
  return finish('mail_sent');
}
