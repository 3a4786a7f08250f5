// Reads who signed in from a SAML assertion node-saml has already verified
// (signature, audience, times, InResponseTo): the configured attributes name
// the user, org and groups. The user may also be the Subject's NameID.
import type { Profile } from '@node-saml/node-saml';
import type { IdentityFields } from '../config/types.js';
import type { SsoIdentity } from './identity.js';

/** The `attributes.user` value that takes the user name from the Subject's NameID instead of an attribute. */
export const NAME_ID = 'nameID';

/** Longest user, org or group name taken from an assertion. */
const MAX_NAME_LENGTH = 256;
/** Most groups taken from an assertion; more make the identity refused. */
const MAX_GROUPS = 256;

export type SamlIdentityResult = { identity: SsoIdentity } | { problem: 'missing_user' | 'bad_attribute' };

export function samlIdentity(profile: Profile, fields: IdentityFields): SamlIdentityResult {
  const attributes = (profile.attributes ?? {}) as Record<string, unknown>;
  const userValue = fields.user === NAME_ID ? profile.nameID : attributes[fields.user];
  if (userValue === undefined || userValue === null || userValue === '') return { problem: 'missing_user' };
  const user = single(userValue);
  if (user === undefined) return { problem: 'bad_attribute' };

  let org: string | undefined;
  const orgValue = attributes[fields.org];
  if (orgValue !== undefined && orgValue !== '') {
    org = single(orgValue);
    if (org === undefined) return { problem: 'bad_attribute' };
  }

  const groupsValue = attributes[fields.groups];
  const groups = groupsValue === undefined ? [] : list(groupsValue);
  if (groups === undefined) return { problem: 'bad_attribute' };
  return { identity: { user, org, groups, via: 'saml' } };
}

/** One usable name: a non-empty string, not too long, no control characters; anything else (several values, XML) is refused. */
function single(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  // eslint-disable-next-line no-control-regex
  if (text === '' || text.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(text)) return undefined;
  return text;
}

/** One value or a list of them, each a usable name, without duplicates. */
function list(value: unknown): string[] | undefined {
  const values = Array.isArray(value) ? value : [value];
  if (values.length > MAX_GROUPS) return undefined;
  const names: string[] = [];
  for (const v of values) {
    const name = single(v);
    if (name === undefined) return undefined;
    if (!names.includes(name)) names.push(name);
  }
  return names;
}
