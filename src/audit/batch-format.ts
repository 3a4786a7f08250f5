// Turning queued records into chained lines: the CPU part of writing a batch
// (serialising each record, hashing each line), free of I/O. It stays on the
// event loop: a format thread was tried and cost more CPU per statement
// (a structured clone each way and a thread wake-up per batch) than it took
// off the loop, which on a machine as busy as its cores lowers throughput.
//
// Lines are encoded once, straight into one reused buffer, and each line's
// hash is taken over those bytes: a batch text built as a string was
// flattened by the hash, encoded again for the write, and left a fresh
// buffer per batch to the allocator (perf showed string copies, malloc and
// the scavenger above the SHA-256 itself).
import type { ChainHead } from './active-file.js';
import { formatLine, lineHash } from './chain.js';
import { eventFieldsJson } from './fields.js';
import type { AuditEvent } from './record.js';

export interface Queued { ts: number; event: AuditEvent }

/** A batch buffer larger than this is let go after its write rather than kept for the next batch. */
const KEEP_BYTES = 1024 * 1024;

/** The bytes of one batch being built: whole lines, each ending in a newline. Reused across batches. */
export class BatchBytes {
  private buf = Buffer.allocUnsafe(64 * 1024);
  length = 0;

  /** Starts a new batch (the previous batch's bytes must be written by now). */
  reset(): void {
    this.length = 0;
    if (this.buf.length > KEEP_BYTES) this.buf = Buffer.allocUnsafe(64 * 1024);
  }

  /** Appends `line` and a newline; returns the SHA-256 (hex) of the line's bytes. */
  addLine(line: string): string {
    const start = this.reserve(line.length * 3 + 1); // UTF-8 takes at most 3 bytes per UTF-16 unit
    const end = start + this.buf.write(line, start, 'utf8');
    this.buf[end] = 0x0a;
    this.length = end + 1;
    return lineHash(this.buf.subarray(start, end));
  }

  /** Appends a bare newline (terminating a torn line left by a crash). */
  addNewline(): void {
    this.buf[this.reserve(1)] = 0x0a;
    this.length++;
  }

  /** The batch so far: a view valid until the next reset. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  private reserve(most: number): number {
    if (this.length + most > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + most));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    return this.length;
  }
}

export interface FormatRequest {
  records: readonly Queued[];
  /** How many of the records to take at most (from the front). */
  count: number;
  /** The line before the first record (its seq and hash). */
  head: ChainHead;
  statements: 'none' | 'fingerprint' | 'full';
  /** Stop taking records once the batch is this many bytes (the rest wait for the next batch). */
  maxBytes: number;
  /** Return each line too (for the syslog copy). */
  wantLines: boolean;
}

export interface CopiedLine { text: string; event: string; ts: number }

export interface FormattedBatch {
  /** The last line's seq and hash: where the chain stands once the batch is written. */
  head: ChainHead;
  /** How many of the records the batch holds (from the front). */
  taken: number;
  lines: CopiedLine[] | null;
}

/** Appends the records' lines to `out`. */
export function formatBatch(out: BatchBytes, req: FormatRequest): FormattedBatch {
  let { seq, hash } = req.head;
  let taken = 0;
  const lines: CopiedLine[] | null = req.wantLines ? [] : null;
  while (taken < req.count && out.length < req.maxBytes) {
    const { ts, event } = req.records[taken++];
    const line = formatLine(ts, ++seq, eventFieldsJson(event, req.statements), hash);
    hash = out.addLine(line);
    lines?.push({ text: line, event: event.event, ts });
  }
  return { head: { seq, hash }, taken, lines };
}
