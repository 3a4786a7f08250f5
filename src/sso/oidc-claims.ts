// The person an OIDC browser login proved, read from the claims `sso.oidc.claims`
// names. The ID token decides; a claim it does not carry is read from the
// provider's userinfo endpoint (many providers put only a few claims into the
// ID token and the rest behind userinfo, unless told otherwise).
import type { IdentityFields } from '../config/types.js';
import { claimAt, groupsFrom } from '../auth/oidc-identity.js';
import type { SsoIdentity } from './identity.js';

export type OidcClaimProblem = 'missing_user_claim' | 'unverified_email' | 'bad_org_claim' | 'bad_groups_claim';

/** The names of the claims `oidcIdentity` reads that the ID token lacks (email_verified too when the user is the email). */
export function missingClaims(claims: Record<string, unknown>, names: IdentityFields): string[] {
  const wanted = [names.user, names.org, names.groups, ...(names.user === 'email' ? ['email_verified'] : [])];
  return wanted.filter((name) => claimAt(claims, name) === undefined);
}

/**
 * The identity, with each claim taken from the ID token when it has it and
 * from `userinfo` otherwise. User: a non-empty string (as `email`, not one
 * the IdP marks `email_verified: false`). Org: absent, or a
 * non-empty string. Groups: absent (none), one string, or a list of strings.
 */
export function oidcIdentity(
  idToken: Record<string, unknown>, userinfo: Record<string, unknown> | undefined, names: IdentityFields,
): SsoIdentity | OidcClaimProblem {
  const read = (name: string) => {
    const fromToken = claimAt(idToken, name);
    return fromToken !== undefined || !userinfo ? fromToken : claimAt(userinfo, name);
  };
  const user = read(names.user);
  if (typeof user !== 'string' || user === '') return 'missing_user_claim';
  // An address the IdP says it has not verified could be anyone's: refused when
  // it is the user name. (Providers that never send email_verified are trusted.)
  if (names.user === 'email' && read('email_verified') === false) return 'unverified_email';
  const org = read(names.org);
  if (org !== undefined && (typeof org !== 'string' || org === '')) return 'bad_org_claim';
  const groups = groupsFrom(read(names.groups));
  if (!groups) return 'bad_groups_claim';
  return { user, ...(org !== undefined && { org }), groups, via: 'oidc' };
}
