// The person an OIDC access token speaks for, read from the claims that
// auth.oidc.claims names.
import type { JWTPayload } from 'jose';

export interface OidcIdentity { user: string; org: string; groups: string[]; expiresAt: number }

export type ClaimProblem = 'missing_user_claim' | 'missing_org_claim' | 'bad_groups_claim';

/**
 * A claim name is looked up as a top-level key first (namespaced claims such as
 * `https://example.com/groups` contain dots), then as a dotted path into nested
 * objects (`realm_access.roles`).
 */
export function claimAt(payload: JWTPayload, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let value: unknown = payload;
  for (const part of name.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

export function identityFrom(
  payload: JWTPayload, names: { user: string; org: string; groups: string },
): OidcIdentity | ClaimProblem {
  const user = claimAt(payload, names.user);
  if (typeof user !== 'string' || user === '') return 'missing_user_claim';
  const org = claimAt(payload, names.org);
  if (typeof org !== 'string' || org === '') return 'missing_org_claim';
  const groups = groupsFrom(claimAt(payload, names.groups));
  if (!groups) return 'bad_groups_claim';
  // exp is required by the verifier before claims are read.
  return { user, org, groups, expiresAt: (payload.exp as number) * 1000 };
}

/** No claim: no groups. One string: one group. Otherwise only an array of strings. */
export function groupsFrom(value: unknown): string[] | undefined {
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((g) => typeof g === 'string')) return [...value] as string[];
  return undefined;
}
