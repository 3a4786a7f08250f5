// pgveil hands each client its own (process id, secret key) pair and never
// the upstream backend's, so a client cannot cancel another session's query
// upstream by guessing, and cancel routing stays pgveil's decision.
//
// Under `workers: N` the top 7 bits of every process id name the worker that
// issued it (1–127), so a CancelRequest that lands on another worker can be
// routed to the owner without asking anyone (PgBouncer's peer_id scheme).
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

export interface CancelTarget {
  cancel(): void;
}

interface Entry { secret: Buffer; target: CancelTarget }

/** Bits below the worker id in a process id. */
export const WORKER_SHIFT = 24;
/** Most workers a process id can name. */
export const MAX_WORKERS = 127;

/** The worker a process id was issued by (0 for a single-process pgveil). */
export function workerOfProcessId(processId: number): number {
  return processId >>> WORKER_SHIFT;
}

export class CancelKeys {
  private readonly entries = new Map<number, Entry>();

  /** workerId: this process's worker id, 1–127, or 0 when pgveil runs as one process. */
  constructor(readonly workerId = 0) {
    if (!Number.isInteger(workerId) || workerId < 0 || workerId > MAX_WORKERS) throw new RangeError(`worker id ${workerId} out of range`);
  }

  /** Issues a fresh key for a session. */
  issue(target: CancelTarget): { processId: number; secretKey: Buffer } {
    let processId: number;
    do {
      processId = this.workerId === 0 ? randomInt(1, 0x7fffffff) : (this.workerId << WORKER_SHIFT) | randomInt(1, 1 << WORKER_SHIFT);
    } while (this.entries.has(processId));
    const secret = randomBytes(4);
    this.entries.set(processId, { secret, target });
    return { processId, secretKey: secret };
  }

  release(processId: number): void {
    this.entries.delete(processId);
  }

  /** True when another worker issued this process id: the CancelRequest must be routed to it. */
  issuedElsewhere(processId: number): boolean {
    return this.workerId !== 0 && workerOfProcessId(processId) !== this.workerId;
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
