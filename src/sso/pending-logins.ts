// Logins started on this portal and not finished yet: what the callback must
// check (state, nonce) and prove (the PKCE verifier). They stay in the
// portal's memory, keyed by a random value the browser carries in a cookie;
// nothing secret goes to the browser. A pending login is taken at most once,
// lives a few minutes, and there are at most a bounded number (the oldest goes
// first), so a flood of started logins costs bounded memory.
import { randomBytes } from 'node:crypto';

export interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
  createdAt: number;
}

export interface PendingLoginOptions {
  /** How long a started login may take, ms. */
  maxAgeMs: number;
  /** Most logins in progress at once. */
  maxEntries: number;
  now: () => number;
}

export class PendingLogins {
  private readonly entries = new Map<string, PendingLogin>();

  constructor(private readonly opts: PendingLoginOptions) {}

  /** Keeps a started login; returns the key for the browser's cookie. */
  add(login: Omit<PendingLogin, 'createdAt'>): string {
    this.purgeExpired();
    // Map order is insertion order: the first entry is the oldest.
    while (this.entries.size >= this.opts.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    const key = randomBytes(32).toString('base64url');
    this.entries.set(key, { ...login, createdAt: this.opts.now() });
    return key;
  }

  /** The login for this key, removed so a second callback with the same key finds nothing; undefined when unknown or too old. */
  take(key: string): PendingLogin | undefined {
    const login = this.entries.get(key);
    if (!login) return undefined;
    this.entries.delete(key);
    return this.expired(login) ? undefined : login;
  }

  get size(): number { return this.entries.size; }

  private expired(login: PendingLogin): boolean {
    return this.opts.now() - login.createdAt >= this.opts.maxAgeMs;
  }

  private purgeExpired(): void {
    for (const [key, login] of this.entries) {
      if (!this.expired(login)) break; // older entries come first
      this.entries.delete(key);
    }
  }
}
