// The database passwords the portal issues after a browser SSO login, kept
// beside users.yaml in `<users.yaml>.sso.json` (mode 0600). Only a
// password's SHA-256 is stored (it is 150 random bits, so a fast hash is
// enough: the file alone logs nobody in), with the account it stands for
// and its expiry. The primary issues (it runs the portal); every process
// that serves clients checks, reading the file again whenever it changed
// on disk, so a password works at once on every worker and after a
// restart. A file that cannot be read or parsed matches nothing (fail
// closed) and is reported through `onError`.
import { createHash, randomInt } from 'node:crypto';
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { lockStateFile } from '../config/state-lock.js';
import { watchFiles } from '../config/watch.js';

/** What a stored credential stands for (never the password). */
export interface SsoCredential {
  user: string;
  /** Listed in users.yaml at issue: the login reads the account from users.yaml again. */
  listed: boolean;
  org?: string;
  groups: string[];
  via: 'oidc' | 'saml';
  /** ms since the epoch. */
  expiresAt: number;
}

interface Entry extends SsoCredential { hash: string }

/** Letters and digits without look-alikes (0/O, 1/l/I): double-click selects it whole, and it reads aloud. */
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789';
const LENGTH = 26;
/** Bits of one password: LENGTH × log2(alphabet size), about 150. */
export const CREDENTIAL_BITS = LENGTH * Math.log2(ALPHABET.length);
const PASSWORD_PATTERN = new RegExp(`^[${ALPHABET}]{${LENGTH}}$`);
/** Live credentials kept per user; a new sign-in past this drops the oldest (bounds the file). */
export const MAX_PER_USER = 5;

export function ssoStateFile(usersFile: string): string {
  return `${usersFile}.sso.json`;
}

function hashOf(password: string): string {
  return createHash('sha256').update(password).digest('hex');
}

export function newPassword(): string {
  let password = '';
  for (let i = 0; i < LENGTH; i++) password += ALPHABET[randomInt(ALPHABET.length)];
  return password;
}

/** The file as last read: its identity on disk, and what it held. */
interface Snapshot { stamp: string; entries: Map<string, Entry> }

export interface StoreOptions {
  now?: () => number;
  /** Told when the file cannot be read or parsed (its credentials then match nothing). */
  onError?: (message: string) => void;
}

export class SsoCredentialStore {
  private readonly now: () => number;
  private readonly onError: (message: string) => void;
  private snapshot?: Snapshot;
  private watcher?: { close(): void };
  /** Issues in this process run one after another (the lock covers other processes). */
  private issuing: Promise<unknown> = Promise.resolve();

  constructor(readonly file: string, opts: StoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.onError = opts.onError ?? (() => {});
  }

  /**
   * Stores a new credential and returns its password (shown once, never
   * stored). Expired entries are dropped on the way; an unreadable file is
   * replaced (its credentials matched nothing anyway).
   */
  issue(credential: Omit<SsoCredential, 'expiresAt'>, lifetimeMinutes: number): Promise<{ password: string; expiresAt: number }> {
    const password = newPassword();
    const expiresAt = this.now() + lifetimeMinutes * 60_000;
    const entry: Entry = { ...credential, groups: [...credential.groups], expiresAt, hash: hashOf(password) };
    const run = this.issuing.then(async () => {
      const release = await lockStateFile(this.file);
      try {
        const t = this.now();
        const live = [...this.readEntries(true).values()].filter((e) => e.expiresAt > t);
        const ofUser = live.filter((e) => e.user === entry.user).sort((a, b) => a.expiresAt - b.expiresAt);
        const dropped = new Set(ofUser.slice(0, Math.max(0, ofUser.length - (MAX_PER_USER - 1))));
        this.write([...live.filter((e) => !dropped.has(e)), entry]);
      } finally {
        release();
      }
      return { password, expiresAt };
    });
    this.issuing = run.catch(() => {});
    return run;
  }

  /** The live credential this password is for `user`, or undefined (not one, another user's, expired, unreadable file). */
  match(user: string, password: string): SsoCredential | undefined {
    if (!PASSWORD_PATTERN.test(password)) return undefined;
    const entry = this.current().get(hashOf(password));
    if (!entry || entry.user !== user || entry.expiresAt <= this.now()) return undefined;
    const { hash: _hash, ...credential } = entry;
    return credential;
  }

  /** Re-reads the file when it changes on disk, so a broken file is reported without waiting for a login. */
  watch(): void {
    this.watcher ??= watchFiles([this.file], () => { this.current(); });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** The entries by hash, read again when the file's identity on disk changed. */
  private current(): Map<string, Entry> {
    const stamp = this.stamp();
    if (this.snapshot?.stamp !== stamp) this.snapshot = { stamp, entries: this.readEntries(false) };
    return this.snapshot.entries;
  }

  /** Inode, size and change time: a rename over the file (every write) changes at least one. */
  private stamp(): string {
    try {
      const s = statSync(this.file, { bigint: true });
      return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : `error:${(err as Error).message}`;
    }
  }

  /** A missing file holds nothing; an unreadable one holds nothing and is reported (`writing`: it is about to be replaced). */
  private readEntries(writing: boolean): Map<string, Entry> {
    const entries = new Map<string, Entry>();
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.onError(`cannot read ${this.file}: ${(err as Error).message}`);
      return entries;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
    const list = (data as { credentials?: unknown } | undefined)?.credentials;
    if (!Array.isArray(list)) {
      this.onError(`${this.file} is not a pgveil SSO state file; no SSO password matches until it is ${writing ? 'replaced (now)' : 'rewritten by the next sign-in'}`);
      return entries;
    }
    for (const e of list) if (isEntry(e)) entries.set(e.hash, e);
    return entries;
  }

  /** Temporary file renamed into place: a reader never sees half a file. */
  private write(entries: Entry[]): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    rmSync(tmp, { force: true }); // a leftover would keep its own mode
    writeFileSync(tmp, JSON.stringify({ credentials: entries }) + '\n', { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

function isEntry(e: unknown): e is Entry {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as Record<string, unknown>;
  return typeof x.hash === 'string' && typeof x.user === 'string' && typeof x.listed === 'boolean'
    && (x.org === undefined || typeof x.org === 'string')
    && Array.isArray(x.groups) && x.groups.every((g) => typeof g === 'string')
    && (x.via === 'oidc' || x.via === 'saml') && typeof x.expiresAt === 'number';
}
