// Password-reset tokens, kept beside users.yaml in `<users.yaml>.reset.json`.
// Only a token's SHA-256 is stored (the file alone cannot be used to reset a
// password), with its user and expiry. The CLI (`pgveil reset-request`) and the
// running portal both change the file, so every change happens under a lock
// file (`<state>.lock`, created exclusively) and is written to a temporary
// file renamed into place (a crash never leaves half a file).
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { lockStateFile } from '../config/state-lock.js';

interface Entry { hash: string; user: string; expires: number }
/** An audit step of `pgveil reset-request`, waiting for the running pgveil (which alone writes the audit log). */
export interface PendingStep { user: string; step: string }
interface State { tokens: Entry[]; pending: PendingStep[] }

/** 32 random bytes: 256 bits, as 43 base64url characters. */
const TOKEN_BYTES = 32;
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function resetStateFile(usersFile: string): string {
  return `${usersFile}.reset.json`;
}

function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class ResetTokenStore {
  constructor(readonly file: string, private readonly now: () => number = Date.now) {}

  /** A new token for `user`; every older token of the user stops working. */
  async issue(user: string, ttlMinutes: number): Promise<string> {
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    await this.update((entries) => [
      ...entries.filter((e) => e.user !== user),
      { hash: tokenHash(token), user, expires: this.now() + ttlMinutes * 60_000 },
    ]);
    return token;
  }

  /** Forgets a token (its mail could not be sent). */
  async discard(token: string): Promise<void> {
    const hash = tokenHash(token);
    await this.update((entries) => entries.filter((e) => e.hash !== hash));
  }

  /** The user a live token belongs to, or undefined (unknown, used or expired); reads without the lock. */
  userOf(token: string): string | undefined {
    if (!TOKEN_PATTERN.test(token)) return undefined;
    const hash = tokenHash(token);
    return this.read().find((e) => e.hash === hash && e.expires > this.now())?.user;
  }

  /**
   * Runs `use` with the token's user while holding the lock, so two requests
   * cannot both use one token. When `use` says `spent`, the token is removed.
   * Undefined when the token is unknown, used or expired.
   */
  async redeem<T>(token: string, use: (user: string) => Promise<{ spent: boolean; result: T }>): Promise<T | undefined> {
    if (!TOKEN_PATTERN.test(token)) return undefined;
    const hash = tokenHash(token);
    let outcome: T | undefined;
    await this.update(async (entries) => {
      const entry = entries.find((e) => e.hash === hash && e.expires > this.now());
      if (!entry) return entries;
      const { spent, result } = await use(entry.user);
      outcome = result;
      return spent ? entries.filter((e) => e.hash !== hash) : entries;
    });
    return outcome;
  }

  /** Queues audit steps for the running pgveil to record. */
  async queueSteps(steps: PendingStep[]): Promise<void> {
    if (steps.length) await this.update((entries) => entries, (pending) => [...pending, ...steps]);
  }

  /** Takes the queued audit steps (none: the file is not rewritten, so a watcher of it is not woken again). */
  async takeSteps(): Promise<PendingStep[]> {
    if (this.readState().pending.length === 0) return [];
    let taken: PendingStep[] = [];
    await this.update((entries) => entries, (pending) => { taken = pending; return []; });
    return taken;
  }

  private read(): Entry[] {
    return this.readState().tokens;
  }

  private readState(): State {
    let text: string;
    try { text = readFileSync(this.file, 'utf8'); } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { tokens: [], pending: [] };
      throw err;
    }
    const data = JSON.parse(text) as { tokens?: unknown; pending?: unknown };
    if (!Array.isArray(data.tokens)) throw new Error(`${this.file} is not a pgveil reset state file`);
    return {
      tokens: (data.tokens as Entry[]).filter((e) => typeof e.hash === 'string' && typeof e.user === 'string' && typeof e.expires === 'number'),
      pending: (Array.isArray(data.pending) ? data.pending as PendingStep[] : []).filter((p) => typeof p.user === 'string' && typeof p.step === 'string'),
    };
  }

  /** Read, change and write the state under the lock; expired entries are dropped on the way. */
  private async update(
    change: (entries: Entry[]) => Entry[] | Promise<Entry[]>,
    changePending: (pending: PendingStep[]) => PendingStep[] = (p) => p,
  ): Promise<void> {
    const release = await lockStateFile(this.file);
    try {
      const state = this.readState();
      const next = await change(state.tokens.filter((e) => e.expires > this.now()));
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ tokens: next, pending: changePending(state.pending) }) + '\n', { mode: 0o600 });
      renameSync(tmp, this.file);
    } finally {
      release();
    }
  }
}
