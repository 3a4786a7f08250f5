// Watches the upstream → client byte stream without decoding it: messages
// are forwarded as slices of the chunks they arrived in, and only the few
// watched types (ReadyForQuery, ErrorResponse, …) are collected whole and
// handed to the session, which may pass, replace or drop them. A watched
// message that lies whole in one chunk is read in place, and when the
// session passes it, it stays inside the one slice emitted for the chunk
// (one write to the client per chunk, not one per watched message).

/** Return undefined to forward the message as it was, a Buffer to send instead, or null to drop it. */
export type WatchedMessageHandler = (type: number, message: Buffer) => Buffer | null | undefined;

/**
 * Told of a counted message's type as its header passes; the message is
 * forwarded untouched, in place. When its whole body is in the same chunk,
 * the body's bounds in that chunk come along (to read it there, no copy).
 */
export type CountedMessageHandler = (type: number, chunk?: Buffer, bodyStart?: number, end?: number) => void;

const MAX_BACKEND_MESSAGE = 0x3fffffff;

export class BackendScanner {
  private readonly header = Buffer.alloc(5);
  private headerFill = 0;
  /** Body bytes of the current message not seen yet. */
  private remaining = 0;
  private watching = false;
  private type = 0;
  private parts: Buffer[] = [];

  /**
   * @param watched types collected whole and handed to onWatched
   * @param counted types only announced to onCounted (no copy, no split of the forwarded bytes):
   *   for messages whose arrival matters but whose body does not (ParseComplete, CommandComplete …)
   */
  constructor(
    private readonly watched: Uint8Array,
    private readonly onWatched: WatchedMessageHandler,
    private readonly emit: (bytes: Buffer) => void,
    private readonly counted?: Uint8Array,
    private readonly onCounted?: CountedMessageHandler,
  ) {}

  /** True when the stream sits exactly between two messages. */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.headerFill === 0 && !this.watching;
  }

  push(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    let from = 0; // first byte of this chunk not yet emitted or collected
    // Up to where the bytes would have been emitted had each watched message gone out on its own: what still goes out when this chunk fails.
    let due = 0;
    try {
    while (i < n) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, n - i);
        if (this.watching) this.parts.push(chunk.subarray(i, i + take));
        i += take;
        this.remaining -= take;
        if (this.remaining === 0 && this.watching) { this.finish(); from = i; }
        continue;
      }
      if (this.headerFill === 0) {
        if (n - i < 5) {
          // A header split across chunks: emit what precedes it, keep its bytes.
          if (i > from) this.emit(chunk.subarray(from, i));
          chunk.copy(this.header, 0, i, n);
          this.headerFill = n - i;
          from = i = n;
          break;
        }
        const type = chunk[i];
        const length = chunk.readInt32BE(i + 1);
        checkLength(length);
        if (this.watched[type] && i + 1 + length <= n) {
          const end = i + 1 + length;
          due = i;
          const out = this.onWatched(type, chunk.subarray(i, end));
          if (out !== undefined) {
            if (i > from) this.emit(chunk.subarray(from, i));
            if (out !== null && out.length > 0) this.emit(out);
            from = end;
          }
          i = due = end;
          continue;
        }
        if (this.watched[type]) {
          if (i > from) this.emit(chunk.subarray(from, i));
          this.begin(type, chunk.subarray(i, i + 5));
        } else if (this.counted?.[type]) {
          const end = i + 1 + length;
          if (end <= n) this.onCounted?.(type, chunk, i + 5, end);
          else this.onCounted?.(type);
        }
        i += 5;
        this.remaining = length - 4;
        if (this.watching && this.remaining === 0) { this.finish(); from = i; }
        else if (this.watching) from = i;
        continue;
      }
      // Completing a header carried over from the previous chunk.
      const take = Math.min(5 - this.headerFill, n - i);
      chunk.copy(this.header, this.headerFill, i, i + take);
      this.headerFill += take;
      i += take;
      from = i;
      if (this.headerFill < 5) break;
      this.headerFill = 0;
      const length = this.header.readInt32BE(1);
      checkLength(length);
      const header = Buffer.from(this.header);
      if (this.watched[header[0]]) this.begin(header[0], header);
      else {
        if (this.counted?.[header[0]]) this.onCounted?.(header[0]);
        this.emit(header);
      }
      this.remaining = length - 4;
      if (this.watching && this.remaining === 0) this.finish();
    }
    } catch (err) {
      if (due > from) this.emit(chunk.subarray(from, due));
      throw err;
    }
    if (!this.watching && from < n) this.emit(chunk.subarray(from, n));
  }

  private begin(type: number, header: Buffer): void {
    this.watching = true;
    this.type = type;
    this.parts = [header];
  }

  private finish(): void {
    const whole = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    this.watching = false;
    this.parts = [];
    const out = this.onWatched(this.type, whole);
    if (out === undefined) this.emit(whole);
    else if (out !== null && out.length > 0) this.emit(out);
  }
}

function checkLength(length: number): void {
  if (length < 4 || length > MAX_BACKEND_MESSAGE) throw new Error(`invalid backend message length ${length}`);
}

/** A lookup table of watched message types for BackendScanner. */
export function watchTypes(types: number[]): Uint8Array {
  const table = new Uint8Array(256);
  for (const t of types) table[t] = 1;
  return table;
}
