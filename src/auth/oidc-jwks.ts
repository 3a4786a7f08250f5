// Where the keys that sign OIDC access tokens come from: a JWKS file read
// once per config load, or the provider's https JWKS URL (cached by jose,
// fetched again when a token names a key id it has not seen).
import { readFileSync } from 'node:fs';
import type { CustomFetchOptions } from 'openid-client';
import { fetchTrusting as httpsFetchTrusting } from '../sso/https-fetch.js';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type FetchImplementation, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

/** Key types that can verify the asymmetric algorithms accepted for tokens. */
const asymmetricKty = new Set(['RSA', 'EC', 'OKP']);

/** Why a JWKS file cannot be used, or undefined when it can. Safe to show: names no key material. */
export function jwksProblem(text: string): string | undefined {
  let doc: unknown;
  try { doc = JSON.parse(text); } catch { return 'not JSON'; }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(keys)) return 'not a JWKS (expected an object with a "keys" array)';
  if (!keys.some((k) => typeof k === 'object' && k !== null && asymmetricKty.has((k as { kty?: unknown }).kty as string))) {
    return 'has no RSA, EC or OKP public key';
  }
  try { createLocalJWKSet(doc as JSONWebKeySet); } catch (err) { return `not a JWKS: ${(err as Error).message}`; }
  return undefined;
}

export function localKeys(file: string): JWTVerifyGetKey {
  const text = readFileSync(file, 'utf8');
  const problem = jwksProblem(text);
  if (problem) throw new Error(`${file}: ${problem}`);
  return createLocalJWKSet(JSON.parse(text) as JSONWebKeySet);
}

export interface RemoteKeyOptions {
  /** PEM CA bundle trusted for this URL instead of Node's list (NODE_EXTRA_CA_CERTS extends that list for everyone). */
  ca?: string | Buffer;
  /** Least time between two fetches caused by unknown key ids (jose's default: 30 s). */
  cooldownMs?: number;
}

export function remoteKeys(url: string, opts: RemoteKeyOptions = {}): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(url), {
    ...(opts.cooldownMs !== undefined && { cooldownDuration: opts.cooldownMs }),
    ...(opts.ca !== undefined && { [customFetch]: fetchTrusting(opts.ca) }),
  });
}

/** jose's fetch hook on the CA-trusting fetch the OIDC sign-in uses (Node's fetch has no per-request CA option). */
function fetchTrusting(ca: string | Buffer): FetchImplementation {
  const trusted = httpsFetchTrusting(ca);
  return (url, options) => trusted(url, { method: options.method, headers: Object.fromEntries(options.headers), signal: options.signal } as CustomFetchOptions);
}
