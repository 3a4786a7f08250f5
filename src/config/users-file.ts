// users.yaml after schema validation: typed users, organizations that exist,
// verifiers that really parse, dates that are real dates.
import { parseVerifier } from '../auth/scram-verifier.js';
import type { Config, Organization, User, UsersFile } from './types.js';
import type { YamlSource } from './yaml-source.js';

interface RawUsers {
  organizations: Record<string, { attributes?: Record<string, unknown> } | null>;
  users: Record<string, Omit<User, 'name' | 'attributes'> & { attributes?: Record<string, unknown>; totp?: string }>;
}

/**
 * The users.yaml key `totp` (a second factor) is not built. Ignoring it would let the
 * user log in with the password alone while the DBA believes a second factor
 * is enforced, so it is refused, in serve, check and reload alike.
 */
export const totpRefusal = 'TOTP second factors are not supported by this pgveil version; remove the key (the user would log in without it)';

/**
 * `source.data` must already be schema-valid. With `config`, also checks
 * that users asking for client certificates can get them.
 */
export function buildUsers(source: YamlSource, config?: Config): UsersFile {
  const raw = source.data as RawUsers;
  // Null-prototype maps: a name like "constructor" must not find Object's.
  const organizations: Record<string, Organization> = Object.create(null) as Record<string, Organization>;
  for (const [name, org] of Object.entries(raw.organizations)) {
    organizations[name] = { attributes: plainMap(org?.attributes) };
  }
  const users = new Map<string, User>();
  for (const [name, u] of Object.entries(raw.users)) {
    const path = ['users', name];
    if (u.org !== undefined && !Object.hasOwn(organizations, u.org)) {
      source.report([...path, 'org'], `unknown organization ${JSON.stringify(u.org)}` + known(Object.keys(organizations)));
    }
    if (u.password !== undefined) checkVerifier(source, [...path, 'password'], u.password);
    u.passwordHistory.forEach((v, i) => checkVerifier(source, [...path, 'passwordHistory', i], v));
    if (u.passwordChangedAt !== undefined && !isRealDate(u.passwordChangedAt)) {
      source.report([...path, 'passwordChangedAt'], 'not a valid date');
    }
    if (u.totp !== undefined) source.report([...path, 'totp'], totpRefusal, 'key');
    if (config && u.clientCert !== 'none' && !config.tls.clientCa) {
      source.report([...path, 'clientCert'], `clientCert ${u.clientCert} needs tls.clientCa in the config (client certificates are off)`);
    }
    const { totp: _refused, ...fields } = u;
    const user: User = { ...fields, name, attributes: plainMap(u.attributes) };
    users.set(name, user);
  }
  return { file: source.file, organizations, users };
}

export function known(names: string[]): string {
  return names.length ? ` (known: ${names.join(', ')})` : ' (no organizations are defined)';
}

function checkVerifier(source: YamlSource, path: Array<string | number>, text: string): void {
  try {
    parseVerifier(text);
  } catch (err) {
    // parseVerifier's message never contains the verifier itself.
    source.report(path, err instanceof Error ? err.message : 'malformed SCRAM-SHA-256 verifier');
  }
}

function plainMap(values: Record<string, unknown> | undefined): Record<string, unknown> {
  return Object.assign(Object.create(null) as Record<string, unknown>, values ?? {});
}

/** The pattern admits 2026-02-31; Date would roll it over to March, so compare the parts. */
function isRealDate(text: string): boolean {
  const ms = Date.parse(text.includes(' ') ? text.replace(' ', 'T') : text);
  if (Number.isNaN(ms)) return false;
  const [y, m, d] = text.slice(0, 10).split('-').map(Number);
  const check = new Date(Date.UTC(y, m - 1, d));
  return check.getUTCFullYear() === y && check.getUTCMonth() === m - 1 && check.getUTCDate() === d;
}
