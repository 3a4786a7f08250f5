// Splits the client's byte stream into whole protocol frames. Frames are
// read straight out of the incoming chunk; only a frame that straddles
// chunks is carried over, into a fresh buffer, because forwarded slices may
// still sit in a socket's write queue and must never be overwritten.
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

  /**
   * @param typed false while reading startup-phase packets, which have no type byte
   * @param maxFrame largest frame accepted; bigger lengths are a protocol violation
   */
  constructor(public typed: boolean, public maxFrame: number) {}

  /** Adds a chunk; afterwards call next() until it returns false. */
  push(chunk: Buffer): void {
    const rest = this.len - this.pos;
    if (rest === 0) {
      this.buf = chunk;
      this.pos = 0;
      this.len = chunk.length;
      return;
    }
    const merged = Buffer.allocUnsafe(rest + chunk.length);
    this.buf.copy(merged, 0, this.pos, this.len);
    chunk.copy(merged, rest);
    this.buf = merged;
    this.pos = 0;
    this.len = merged.length;
  }

  /** Bytes buffered but not yet returned as a frame. */
  get pending(): number {
    return this.len - this.pos;
  }

  /** The unread bytes (used when a connection is handed to TLS mid-stream). */
  takeRest(): Buffer {
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
    const avail = this.len - this.pos;
    if (avail < header) return false;
    const buf = this.buf;
    const p = this.pos;
    const length = buf.readInt32BE(this.typed ? p + 1 : p);
    if (length < (this.typed ? 4 : 8) || length > this.maxFrame) {
      throw new PgError(SqlState.ProtocolViolation,
        length > this.maxFrame ? `message of ${length} bytes exceeds the limit of ${this.maxFrame} bytes` : `invalid message length ${length}`,
        { severity: 'FATAL' });
    }
    const total = this.typed ? length + 1 : length;
    if (avail < total) return false;
    this.type = this.typed ? buf[p] : 0;
    this.frameStart = p;
    this.bodyStart = p + header;
    this.end = p + total;
    this.pos = this.end;
    return true;
  }
}
