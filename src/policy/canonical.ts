// Interning needs one text per effective policy: equal content, equal text,
// whatever order the policy or the user's groups were written in. The text is
// hashed into the profile key that rewrite-cache entries are filed under.
import { createHash } from 'node:crypto';
import type { Profile } from './types.js';

/** JSON with object keys sorted and Maps as sorted [key, value] lists, so equal data gives equal text. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(normalise(value));
}

function normalise(value: unknown): unknown {
  if (value instanceof Map) {
    const entries: Array<[string, unknown]> = [...value.entries()].map(([k, v]) => [String(k), normalise(v)]);
    return entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = normalise(v);
    }
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
 * The content that decides a rewrite. The generation is left out: the cache
 * key carries it separately, and a reload that changes nothing for a user
 * keeps that user's key.
 */
export function canonicalProfile(p: Omit<Profile, 'key' | 'generation'>): string {
  return stableStringify({ unlistedRelations: p.unlistedRelations, writes: p.writes, tables: p.tables });
}

/** `length` hex characters of sha256(text); 12 (48 bits) unless a collision forces more. */
export function profileKey(canonical: string, length = 12): string {
  return createHash('sha256').update(canonical).digest('hex').slice(0, length);
}
