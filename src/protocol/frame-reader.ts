// Splits the client's byte stream into whole protocol frames. Frames are
// read straight out of the incoming chunk; only a frame that straddles
// chunks is carried over, into a fresh buffer, because forwarded slices may
// still sit in a socket's write queue and must never be overwritten.
// Chunks of a frame still incomplete wait in a list and are copied together
// once it is whole, so a large frame costs linear time, not a copy of all
// earlier bytes per chunk.
import { PgError, SqlState } from '../errors.js';

export class FrameReader {
  /** The buffer the current frame lives in. */
  buf: Buffer = Buffer.alloc(0);
  /** Type byte of the current frame (0 for untyped startup packets). */
  type = 0;
  /** Offsets of the current frame in `buf`: whole frame, body and end. */
  frameStart = 0;
  bodyStart = 0;
  end = 0;

  private pos = 0;
  private len = 0;
  /** Chunks received after `buf`'s bytes, not yet merged into it. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;

  /**
   * @param typed false while reading startup-phase packets, which have no type byte
   * @param maxFrame largest frame accepted; bigger lengths are a protocol violation
   */
  constructor(public typed: boolean, public maxFrame: number) {}

  /** Adds a chunk; afterwards call next() until it returns false. */
  push(chunk: Buffer): void {
    if (this.len - this.pos === 0 && this.queuedBytes === 0) {
      this.buf = chunk;
      this.pos = 0;
      this.len = chunk.length;
      return;
    }
    this.queued.push(chunk);
    this.queuedBytes += chunk.length;
  }

  /** Moves the queued chunks behind the unread bytes, into one fresh buffer. */
  private merge(): void {
    if (this.queuedBytes === 0) return;
    const rest = this.len - this.pos;
    const merged = Buffer.allocUnsafe(rest + this.queuedBytes);
    this.buf.copy(merged, 0, this.pos, this.len);
    let at = rest;
    for (const q of this.queued) { q.copy(merged, at); at += q.length; }
    this.queued = [];
    this.queuedBytes = 0;
    this.buf = merged;
    this.pos = 0;
    this.len = merged.length;
  }

  /** Bytes buffered but not yet returned as a frame. */
  get pending(): number {
    return this.len - this.pos + this.queuedBytes;
  }

  /** The unread bytes (used when a connection is handed to TLS mid-stream). */
  takeRest(): Buffer {
    this.merge();
    const rest = this.buf.subarray(this.pos, this.len);
    this.pos = this.len;
    return rest;
  }

  /** Puts the current frame back: the next call of next() returns it again (a session holding a message). */
  unread(): void {
    this.pos = this.frameStart;
  }

  /** Advances to the next complete frame; false when more bytes are needed. */
  next(): boolean {
    const header = this.typed ? 5 : 4;
    const avail = this.len - this.pos + this.queuedBytes;
    if (avail < header) return false;
    if (this.len - this.pos < header) this.merge();
    const length = this.buf.readInt32BE(this.typed ? this.pos + 1 : this.pos);
    if (length < (this.typed ? 4 : 8) || length > this.maxFrame) {
      throw new PgError(SqlState.ProtocolViolation,
        length > this.maxFrame ? `message of ${length} bytes exceeds the limit of ${this.maxFrame} bytes` : `invalid message length ${length}`,
        { severity: 'FATAL' });
    }
    const total = this.typed ? length + 1 : length;
    if (avail < total) return false;
    if (this.len - this.pos < total) this.merge();
    const p = this.pos;
    this.type = this.typed ? this.buf[p] : 0;
    this.frameStart = p;
    this.bodyStart = p + header;
    this.end = p + total;
    this.pos = this.end;
    return true;
  }
}
