// pgveil hands each client its own (process id, secret key) pair and never
// the upstream backend's, so a client cannot cancel another session's query
// upstream by guessing, and cancel routing stays pgveil's decision.
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

export interface CancelTarget {
  cancel(): void;
}

interface Entry { secret: Buffer; target: CancelTarget }

export class CancelKeys {
  private readonly entries = new Map<number, Entry>();

  /** Issues a fresh key for a session. */
  issue(target: CancelTarget): { processId: number; secretKey: Buffer } {
    let processId: number;
    do processId = randomInt(1, 0x7fffffff); while (this.entries.has(processId));
    const secret = randomBytes(4);
    this.entries.set(processId, { secret, target });
    return { processId, secretKey: secret };
  }

  release(processId: number): void {
    this.entries.delete(processId);
  }

  /** Finds the session a CancelRequest names; a wrong secret finds nothing. */
  lookup(processId: number, secretKey: Buffer): CancelTarget | undefined {
    const entry = this.entries.get(processId);
    if (!entry || entry.secret.length !== secretKey.length) return undefined;
    return timingSafeEqual(entry.secret, secretKey) ? entry.target : undefined;
  }

  get size(): number {
    return this.entries.size;
  }
}
