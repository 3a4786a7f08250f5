// Which database account a proven SSO identity gets, if any.
//
// - A person listed in users.yaml gets that account: its org, groups and
//   attributes. Refused when it is disabled, or when the identity provider
//   sent an org other than the listed one (the two disagree about who this
//   is: fail closed). The provider's groups are not used for a listed
//   person: users.yaml is where the operator grants groups (a group may lift
//   a mask), and a group added at the provider must not widen a listed
//   account.
// - A person not listed gets an account made from the identity: the org must
//   be one users.yaml lists (its attributes apply), the groups are the
//   provider's, no attributes of their own. No org, or an org users.yaml
//   does not list: nothing, as for an OIDC access token used as a password.
// - A name that cannot be a database user name (empty, too long, control
//   characters) gets nothing.
import type { User, UsersFile } from '../config/types.js';
import type { SsoIdentity } from './identity.js';

/** Why an identity has no database account (the audit record's reason; the person is told only that there is none). */
export type MappingRefusal = 'bad_user' | 'disabled' | 'org_mismatch' | 'no_org' | 'unknown_org';

export type Mapping =
  | { ok: true; account: User; listed: boolean }
  | { ok: false; reason: MappingRefusal };

/** Longest user name accepted, in characters (a StartupMessage carries it; nobody's e-mail address is longer). */
const MAX_USER_LENGTH = 256;

export function mapIdentity(identity: SsoIdentity, users: UsersFile): Mapping {
  const name = identity.user;
  // eslint-disable-next-line no-control-regex
  if (name.length === 0 || name.length > MAX_USER_LENGTH || /[\u0000-\u001f\u007f]/.test(name)) return { ok: false, reason: 'bad_user' };
  const listed = users.users.get(name);
  if (listed) {
    if (listed.disabled) return { ok: false, reason: 'disabled' };
    if (identity.org !== undefined && identity.org !== listed.org) return { ok: false, reason: 'org_mismatch' };
    return { ok: true, account: listed, listed: true };
  }
  if (identity.org === undefined || identity.org === '') return { ok: false, reason: 'no_org' };
  if (!Object.hasOwn(users.organizations, identity.org)) return { ok: false, reason: 'unknown_org' };
  return { ok: true, account: externalAccount(name, identity.org, identity.groups), listed: false };
}

/** The account of a person who is not in users.yaml: org and groups from the identity provider, nothing else. */
export function externalAccount(name: string, org: string, groups: readonly string[]): User {
  return {
    name, org, groups: [...new Set(groups.filter((g) => g !== ''))],
    passwordHistory: [], attributes: Object.create(null) as Record<string, unknown>, clientCert: 'none', disabled: false,
  };
}
