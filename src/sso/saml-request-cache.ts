// The AuthnRequest ids this portal sent and has not yet seen answered, for
// node-saml's InResponseTo check. Bounded in number and age (anyone can ask
// /sso/saml/start for a new id), and an id is taken once: after a response
// to it was accepted or refused, a replay of that response finds nothing.
import type { CacheItem, CacheProvider } from '@node-saml/node-saml';

/** Most pending requests kept; past it the oldest is forgotten (its login must start again). */
export const MAX_PENDING_REQUESTS = 10_000;

export class SamlRequestCache implements CacheProvider {
  private readonly pending = new Map<string, CacheItem>();

  constructor(readonly maxAgeMs: number, private readonly now: () => number = Date.now, private readonly maxEntries = MAX_PENDING_REQUESTS) {}

  async saveAsync(key: string, value: string): Promise<CacheItem | null> {
    this.prune();
    if (this.pending.has(key)) return null;
    while (this.pending.size >= this.maxEntries) this.pending.delete(this.pending.keys().next().value as string);
    const item = { value, createdAt: this.now() };
    this.pending.set(key, item);
    return item;
  }

  async getAsync(key: string): Promise<string | null> {
    const item = this.pending.get(key);
    if (!item) return null;
    if (this.expired(item)) { this.pending.delete(key); return null; }
    return item.value;
  }

  async removeAsync(key: string | null): Promise<string | null> {
    if (key === null) return null;
    const item = this.pending.get(key);
    this.pending.delete(key);
    return item?.value ?? null;
  }

  /** How many requests still wait for their answer (tests). */
  get size(): number { this.prune(); return this.pending.size; }

  private expired(item: CacheItem): boolean {
    return this.now() - item.createdAt >= this.maxAgeMs;
  }

  /** Drops expired ids; insertion order is age order, so it stops at the first live one. */
  private prune(): void {
    for (const [key, item] of this.pending) {
      if (!this.expired(item)) break;
      this.pending.delete(key);
    }
  }
}
