// Splits the client's byte stream into protocol frames, in time linear in
// the bytes however they are chunked.
//
// - A frame that lies within one chunk is read in place (no copy).
// - A frame that straddles chunks waits, its chunks kept in a list, until it
//   is whole; then its bytes (only its own) are copied once: small frames to
//   the free tail of a shared slab, large ones to a buffer of their size.
//   Copied bytes are never overwritten afterwards, because a forwarded slice
//   may still sit in a socket's write queue: a full slab is replaced, not
//   rewound or grown in place.
// - Frames of the types given to streamTypes() are not assembled at all: they
//   are handed out piece by piece as the chunks arrive (slices of them), with
//   a count of the bytes still to come, as PgBouncer's sbuf does.
// The length in a frame's header is checked as soon as the header is read,
// before any of the body is waited for. A frame of a type given to
// refusableTypes() that is longer than that type's limit is not kept: it is
// handed out at once with an empty body and its length in `oversize` (so it
// can be refused in order and the session go on), and its bytes are dropped
// as they arrive. Any other frame over maxFrame is a protocol violation.
import { PgError, SqlState } from '../errors.js';

const EMPTY = Buffer.alloc(0);
/** Size of a slab for straddling small frames; frames up to half of it share one. */
const SLAB = 16 * 1024;

export class FrameReader {
  /** The buffer the current frame (or piece of a streamed frame) lives in. */
  buf: Buffer = EMPTY;
  /** Type byte of the current frame (0 for untyped startup packets). */
  type = 0;
  /**
   * Offsets in `buf` of the current frame's bytes: all of them, its body, and
   * their end. For a streamed frame: the bytes of this piece (for a
   * continuation piece frameStart equals bodyStart, there is no header).
   */
  frameStart = 0;
  bodyStart = 0;
  end = 0;
  /** Bytes of a streamed frame still to come in later pieces; 0 when the frame ends with this piece. */
  remaining = 0;
  /** True when this piece continues a streamed frame whose header came in an earlier piece. */
  continuation = false;
  /** Length of the current frame when it was over its type's limit and handed out bodiless (refusableTypes); else 0. */
  oversize = 0;

  /** The chunk being read and the read position in it. */
  private cur: Buffer = EMPTY;
  private pos = 0;
  /** Chunks received after `cur`, not read yet (from index `head` on). */
  private queued: Buffer[] = [];
  private head = 0;
  private queuedBytes = 0;
  /** Shared buffer for small straddling frames; bytes below slabUsed are handed out for good. */
  private slab: Buffer = EMPTY;
  private slabUsed = 0;
  /** A header split across chunks, gathered here to be read. */
  private readonly scratch = Buffer.alloc(5);
  /** Lookup table of streamed types (by type byte), when any. */
  private streamed?: Uint8Array;
  /** unread() was called: next() returns the current frame again. */
  private replay = false;
  /** Per type byte: the length over which a frame is handed out bodiless (0: none, the frame is kept or fails). */
  private refusable?: Uint32Array;
  /** Bytes of an oversize frame still to be dropped. */
  private dropping = 0;

  /**
   * @param typed false while reading startup-phase packets, which have no type byte
   * @param maxFrame largest frame accepted; bigger lengths are a protocol violation
   */
  constructor(public typed: boolean, public maxFrame: number) {}

  /**
   * Frames of these types are handed out piece by piece instead of whole.
   * Only for types whose bytes are forwarded untouched and need no decision
   * on their content; such a frame cannot be put back with unread().
   */
  streamTypes(types: number[]): void {
    const table = new Uint8Array(256);
    for (const t of types) table[t] = 1;
    this.streamed = table;
  }

  /** Frames of these types longer than their limit (at most maxFrame) are handed out bodiless with `oversize` set, instead of kept or failing the stream. */
  refusableTypes(limits: ReadonlyArray<[type: number, maxLength: number]>): void {
    const table = new Uint32Array(256);
    for (const [type, maxLength] of limits) table[type] = Math.min(maxLength, this.maxFrame);
    this.refusable = table;
  }

  /** Adds a chunk; afterwards call next() until it returns false. */
  push(chunk: Buffer): void {
    if (this.pos === this.cur.length && this.queuedBytes === 0) {
      this.cur = chunk;
      this.pos = 0;
      return;
    }
    this.queued.push(chunk);
    this.queuedBytes += chunk.length;
  }

  /** Bytes buffered but not yet returned (a frame put back with unread() counts). */
  get pending(): number {
    return this.cur.length - this.pos + this.queuedBytes + (this.replay ? this.end - this.frameStart : 0);
  }

  /** The unread bytes (used when a connection is handed over mid-stream); not while a streamed frame is in progress. */
  takeRest(): Buffer {
    if (this.remaining > 0) throw new Error('takeRest() inside a streamed frame');
    const parts = this.replay ? [this.buf.subarray(this.frameStart, this.end)] : [];
    this.replay = false;
    parts.push(this.cur.subarray(this.pos));
    for (let i = this.head; i < this.queued.length; i++) parts.push(this.queued[i]);
    this.cur = EMPTY;
    this.pos = 0;
    this.clearQueue();
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** Puts the current frame back: the next call of next() returns it again (a session holding a message). */
  unread(): void {
    if (this.remaining > 0 || this.continuation) throw new Error('a streamed frame cannot be put back');
    this.replay = true;
  }

  /** Advances to the next complete frame, or piece of a streamed frame; false when more bytes are needed. */
  next(): boolean {
    if (this.replay) { this.replay = false; return true; }
    if (this.remaining > 0) return this.nextPiece();
    if (this.dropping > 0 && !this.drop()) return false;
    this.continuation = false;
    this.oversize = 0;
    this.advance();
    const header = this.typed ? 5 : 4;
    const avail = this.cur.length - this.pos + this.queuedBytes;
    if (avail < header) return false;
    let headerBuf = this.cur;
    let at = this.pos;
    if (this.cur.length - this.pos < header) {
      this.peek(this.scratch, header);
      headerBuf = this.scratch;
      at = 0;
    }
    const length = headerBuf.readInt32BE(this.typed ? at + 1 : at);
    const type = this.typed ? headerBuf[at] : 0;
    const total = this.typed ? length + 1 : length;
    const refusableOver = this.refusable?.[type];
    if (refusableOver && length > refusableOver) return this.oversized(type, length, total);
    if (length < (this.typed ? 4 : 8) || length > this.maxFrame) {
      throw new PgError(SqlState.ProtocolViolation,
        length > this.maxFrame ? `message of ${length} bytes exceeds the limit of ${this.maxFrame} bytes` : `invalid message length ${length}`,
        { severity: 'FATAL' });
    }
    if (this.cur.length - this.pos >= total) {
      this.take(this.cur, this.pos, total, type);
      this.pos += total;
      return true;
    }
    if (this.streamed?.[type] && total > header) return this.firstPiece(type, header, total);
    if (avail < total) return false;
    this.assemble(total, type);
    return true;
  }

  /** Sets the current frame to `total` bytes of `buf` from `start`. */
  private take(buf: Buffer, start: number, total: number, type: number): void {
    this.buf = buf;
    this.type = type;
    this.frameStart = start;
    this.bodyStart = start + (this.typed ? 5 : 4);
    this.end = start + total;
  }

  /** The header and what has arrived of the body of a streamed frame that does not fit in the current chunk. */
  private firstPiece(type: number, header: number, total: number): boolean {
    let size: number;
    if (this.cur.length - this.pos >= header) {
      size = this.cur.length - this.pos;
      this.take(this.cur, this.pos, size, type);
      this.pos += size;
    } else {
      // The header itself straddles chunks: it goes out alone, gathered into the slab.
      size = header;
      this.assemble(header, type);
    }
    this.remaining = total - size;
    return true;
  }

  /** An oversize refusable frame: handed out bodiless now, its bytes dropped as they come (never held in memory). */
  private oversized(type: number, length: number, total: number): boolean {
    this.buf = EMPTY;
    this.type = type;
    this.frameStart = this.bodyStart = this.end = 0;
    this.oversize = length;
    this.dropping = total;
    this.drop();
    return true;
  }

  /** Drops what has arrived of an oversize frame; true once all of it is gone. */
  private drop(): boolean {
    for (;;) {
      this.advance();
      const n = Math.min(this.dropping, this.cur.length - this.pos);
      if (n === 0) return this.dropping === 0;
      this.pos += n;
      this.dropping -= n;
    }
  }

  /** The next slice of a streamed frame's body, as much as has arrived. */
  private nextPiece(): boolean {
    this.advance();
    const size = Math.min(this.cur.length - this.pos, this.remaining);
    if (size === 0) return false;
    this.buf = this.cur;
    this.frameStart = this.bodyStart = this.pos;
    this.end = this.pos + size;
    this.pos += size;
    this.remaining -= size;
    this.continuation = true;
    return true;
  }

  /** Makes the first queued chunk current once the current one is used up. */
  private advance(): void {
    while (this.pos === this.cur.length && this.head < this.queued.length) {
      this.cur = this.queued[this.head];
      this.queued[this.head++] = EMPTY; // let the chunk go once read
      this.queuedBytes -= this.cur.length;
      this.pos = 0;
    }
    if (this.head === this.queued.length && this.head > 0) this.clearQueue();
  }

  private clearQueue(): void {
    this.queued = [];
    this.head = 0;
    this.queuedBytes = 0;
  }

  /**
   * Copies the next `total` bytes of the stream, which straddle chunks, to
   * the slab's free tail (small frames) or a buffer of their own, and makes
   * them the current frame.
   */
  private assemble(total: number, type: number): void {
    let target: Buffer;
    let offset = 0;
    if (total > SLAB / 2) {
      target = Buffer.allocUnsafe(total); // fully overwritten by gather()
    } else {
      if (this.slab.length - this.slabUsed < total) {
        // Zero-filled: bytes past a frame's end never show earlier memory.
        this.slab = Buffer.alloc(SLAB);
        this.slabUsed = 0;
      }
      target = this.slab;
      offset = this.slabUsed;
      this.slabUsed += total;
    }
    this.gather(target, offset, total);
    this.take(target, offset, total, type);
  }

  /** Copies the next `total` bytes of the stream to target[offset…] and consumes them. */
  private gather(target: Buffer, offset: number, total: number): void {
    let at = offset;
    let need = total;
    while (need > 0) {
      this.advance();
      const n = Math.min(need, this.cur.length - this.pos);
      this.cur.copy(target, at, this.pos, this.pos + n);
      at += n;
      this.pos += n;
      need -= n;
    }
  }

  /** Copies the next `n` bytes of the stream to target without consuming them. */
  private peek(target: Buffer, n: number): void {
    let at = this.cur.copy(target, 0, this.pos, Math.min(this.cur.length, this.pos + n));
    for (let i = this.head; at < n; i++) {
      const q = this.queued[i];
      at += q.copy(target, at, 0, Math.min(q.length, n - at));
    }
  }
}
