// users.yaml after schema validation: typed users, organizations that exist,
// verifiers that really parse, dates that are real dates, TOTP secrets that
// open with the master key.
import { parseVerifier } from '../auth/scram-verifier.js';
import type { Config, Organization, User, UsersFile } from './types.js';
import type { YamlSource } from './yaml-source.js';
import { TotpSecret } from '../auth/totp.js';
import { isSealed, openSealed } from '../secrets/seal.js';
import { loadMasterKey } from '../secrets/master-key.js';

interface RawUsers {
  organizations: Record<string, { attributes?: Record<string, unknown> } | null>;
  users: Record<string, Omit<User, 'name' | 'attributes'> & { attributes?: Record<string, unknown>; totp?: string }>;
}


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
    const totp = u.totp === undefined ? undefined : openTotp(source, [...path, 'totp'], u.totp, config);
    if (config && u.clientCert !== 'none' && !config.tls.clientCa) {
      source.report([...path, 'clientCert'], `clientCert ${u.clientCert} needs tls.clientCa in the config (client certificates are off)`);
    }
    const { totp: _sealed, ...fields } = u;
    const user: User = { ...fields, name, attributes: plainMap(u.attributes), ...(totp ? { totp } : {}) };
    users.set(name, user);
  }
  return { file: source.file, organizations, users };
}

export function known(names: string[]): string {
  return names.length ? ` (known: ${names.join(', ')})` : ' (no organizations are defined)';
}

/**
 * A `totp` value must be sealed and must open with the master key: a second
 * factor that cannot be checked is a load error (on reload, the previous
 * users stay), never a login without it.
 */
function openTotp(source: YamlSource, path: Array<string | number>, value: string, config: Config | undefined): TotpSecret | undefined {
  if (!isSealed(value)) {
    source.report(path, 'must be sealed (pgveil totp enroll writes it so); a plain secret is refused');
    return undefined;
  }
  if (!config) {
    source.report(path, 'cannot be opened without the config (its master key)');
    return undefined;
  }
  try {
    return new TotpSecret(openSealed(value, loadMasterKey(config.secrets)));
  } catch (err) {
    // Neither message carries the secret: seal.ts and the base32 decoder name only what is wrong.
    source.report(path, `cannot be opened: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
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
