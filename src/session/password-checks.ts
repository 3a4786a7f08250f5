// What a password sent in clear over TLS may prove, one check per kind of
// credential. The login asks each check in turn; the first that knows the
// name decides. A password the portal issued after a browser SSO login is
// asked about first, and claims the attempt only when it is a live one of
// that user (anything else goes on as if it did not exist). Then users of
// users.yaml (their password, and their TOTP code when they have one), then
// an OIDC access token for people who are not listed; a name no check knows
// runs the same key derivation against a fake verifier, so it takes as long
// as a listed user's wrong password.
import { fakeVerifier, parseVerifier, type ScramVerifier } from '../auth/scram-verifier.js';
import { passwordMatchesVerifier } from '../auth/verifier-password.js';
import { matchingStep, splitCode } from '../auth/totp.js';
import type { AuthFailureReason } from '../audit/record.js';
import type { User } from '../config/types.js';
import type { ProxyContext } from './context.js';
import { OidcTokenError, type OidcTokenVerifier } from '../auth/oidc-token.js';
import type { SsoCredentialStore } from '../sso/credential-store.js';
import { externalAccount } from '../sso/account.js';

/** What a session ended at the expiry of its SSO password is told. */
export const SSO_PASSWORD_EXPIRED = 'terminating connection because the password issued at SSO sign-in expired';

export interface CleartextAttempt {
  /** The StartupMessage's user. */
  user: string;
  /** What the client sent (never logged). */
  password: string;
}

/** A check's verdict; `method` names the credential in the audit record. */
export type CheckOutcome =
  | {
    ok: true; account: User; method: string;
    /** Whether auth.passwordPolicy.maxAgeDays applies (a users.yaml password: yes; a token: no). */
    passwordAge: boolean;
    /** When the credential stops being valid (ms): the session is ended then. */
    expiresAt?: number;
    /** The account is made from the credential, not read from users.yaml. */
    external?: boolean;
    /** What the session is told when it is ended at `expiresAt` (default: the access token expired). */
    expiryMessage?: string;
  }
  | { ok: false; reason: AuthFailureReason; method: string; /** Why a token was refused (safe to log). */ detail?: string };

export interface CleartextCheck {
  /** The verdict, or undefined when this check does not know the name (the next one is asked). */
  verify(attempt: CleartextAttempt): Promise<CheckOutcome> | undefined;
}

/** The checks in the order they are asked; the last one answers for every name. */
export function cleartextChecks(ctx: ProxyContext): CleartextCheck[] {
  return [
    ...(ctx.ssoCredentials ? [ssoPasswordCheck(ctx, ctx.ssoCredentials)] : []),
    usersFileCheck(ctx),
    ...(ctx.oidc ? [tokenCheck(ctx, ctx.oidc)] : []),
    unknownNameCheck(ctx),
  ];
}

export async function checkCleartext(checks: CleartextCheck[], attempt: CleartextAttempt): Promise<CheckOutcome> {
  for (const check of checks) {
    const outcome = check.verify(attempt);
    if (outcome) return outcome;
  }
  throw new Error('no cleartext check answered'); // unknownNameCheck always does
}

/**
 * Whether cleartext-over-TLS logins exist in this deployment. When they do,
 * every name is offered cleartext over TLS (never SCRAM), so the method a
 * client is offered says nothing about the name: not whether it exists, not
 * whether it has a second factor.
 */
export function cleartextInUse(ctx: ProxyContext): boolean {
  if (ctx.oidc || ctx.ssoCredentials) return true;
  const users = ctx.users();
  let any = withSecondFactor.get(users);
  if (any === undefined) withSecondFactor.set(users, any = [...users.users.values()].some((u) => u.totp !== undefined));
  return any;
}

const withSecondFactor = new WeakMap<object, boolean>();

/** The verifier a login checks against: the user's own, or a fake one (no password, or one that does not parse). */
export function verifierOf(account: User | undefined, user: string, ctx: ProxyContext): ScramVerifier {
  if (account?.password) {
    try { return parseVerifier(account.password); } catch { /* treated as unknown */ }
  }
  return fakeVerifier(user, ctx.fakeVerifierSecret);
}

/**
 * A password the portal issued after an SSO login, live and of this user.
 * A person listed in users.yaml gets the account users.yaml has now (so
 * disabling, or a new org or groups, apply at once); one who is not gets the
 * org and groups the sign-in proved, while users.yaml still lists that org
 * and still does not list the person. No lifetime rule of users.yaml
 * passwords applies: the session ends when the password expires.
 */
function ssoPasswordCheck(ctx: ProxyContext, store: SsoCredentialStore): CleartextCheck {
  const method = 'sso';
  return {
    verify(attempt) {
      const credential = store.match(attempt.user, attempt.password);
      if (!credential) return undefined;
      const stale = (detail: string): Promise<CheckOutcome> => Promise.resolve({ ok: false, reason: 'stale_sso_password', method, detail });
      const users = ctx.users();
      const listed = users.users.get(attempt.user);
      const lifetime = { method, passwordAge: false, expiresAt: credential.expiresAt, expiryMessage: SSO_PASSWORD_EXPIRED } as const;
      if (credential.listed) {
        return listed ? Promise.resolve({ ok: true, account: listed, ...lifetime }) : stale('user_removed');
      }
      if (listed) return stale('now_listed');
      if (credential.org === undefined || !Object.hasOwn(users.organizations, credential.org)) return stale('unknown_org');
      return Promise.resolve({ ok: true, account: externalAccount(credential.user, credential.org, credential.groups), ...lifetime, external: true });
    },
  };
}

/** A users.yaml user: the password, then (with `totp`) the code that ends it, accepted once. */
function usersFileCheck(ctx: ProxyContext): CleartextCheck {
  return {
    verify(attempt) {
      const account = ctx.users().users.get(attempt.user);
      if (!account) return undefined;
      return account.totp ? passwordAndCode(ctx, account, attempt) : passwordOnly(ctx, account, attempt);
    },
  };
}

async function passwordOnly(ctx: ProxyContext, account: User, attempt: CleartextAttempt): Promise<CheckOutcome> {
  const method = 'password';
  if (!await passwordMatchesVerifier(attempt.password, verifierOf(account, attempt.user, ctx))) return { ok: false, reason: 'wrong_password', method };
  return { ok: true, account, method, passwordAge: true };
}

async function passwordAndCode(ctx: ProxyContext, account: User, attempt: CleartextAttempt): Promise<CheckOutcome> {
  const method = 'password+totp';
  const verifier = verifierOf(account, attempt.user, ctx);
  const { password, code } = splitCode(attempt.password);
  if (!await passwordMatchesVerifier(password, verifier)) return { ok: false, reason: 'wrong_password', method };
  // The password is right from here on: a missing, wrong or used code is a second-factor failure.
  const step = code === undefined ? undefined : matchingStep(account.totp!, account.name, code);
  if (step === undefined) return { ok: false, reason: 'bad_second_factor', method };
  if (!await ctx.usedCodes.claim(account.name, step)) return { ok: false, reason: 'replayed_second_factor', method };
  return { ok: true, account, method, passwordAge: true };
}

/**
 * A name not in users.yaml, with auth.oidc: the password is an access token.
 * Its user claim must be the StartupMessage's user, and its org one that
 * users.yaml lists (anything else fails closed); groups come from the token.
 */
function tokenCheck(ctx: ProxyContext, verifier: OidcTokenVerifier): CleartextCheck {
  const method = 'oidc';
  return {
    async verify(attempt) {
      // A refusal also costs a password check, so it takes as long as a listed user's wrong password.
      const refused = async (detail: string): Promise<CheckOutcome> => {
        await fakePasswordWork(ctx, attempt);
        return { ok: false, reason: 'bad_token', method, detail };
      };
      let identity;
      try {
        identity = await verifier.verify(attempt.password);
      } catch (err) {
        return refused(err instanceof OidcTokenError ? err.reason : 'verify_failed');
      }
      if (identity.user !== attempt.user) return refused('user_mismatch');
      if (!Object.hasOwn(ctx.users().organizations, identity.org)) return refused('unknown_org');
      const account: User = {
        name: identity.user, org: identity.org, groups: identity.groups,
        passwordHistory: [], attributes: Object.create(null) as Record<string, unknown>, clientCert: 'none', disabled: false,
      };
      return { ok: true, account, method, passwordAge: false, expiresAt: identity.expiresAt, external: true };
    },
  };
}

/** Any name no earlier check knew: the same work as a listed user's password, and always a failure. */
function unknownNameCheck(ctx: ProxyContext): CleartextCheck {
  return {
    async verify(attempt) {
      await fakePasswordWork(ctx, attempt);
      return { ok: false, reason: 'unknown_user', method: 'password' };
    },
  };
}

/** The key derivation a listed user's password check costs, against the name's fake verifier (always a mismatch). */
function fakePasswordWork(ctx: ProxyContext, attempt: CleartextAttempt): Promise<boolean> {
  return passwordMatchesVerifier(attempt.password, verifierOf(undefined, attempt.user, ctx));
}
