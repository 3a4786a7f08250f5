// The client's bytes on their way upstream. A client sends a cycle
// (Bind, Describe, Execute, Sync …) in one TCP read; each message is still
// decided on its own and in order, but the messages forwarded unchanged
// that lie back to back in the same buffer go out as one slice in one
// socket.write when the batch is flushed (at the end of the read), not one
// write per message. Anything else written upstream (a rewritten message, a
// sentinel, the Terminate) first flushes what is batched, so the order of
// the bytes upstream sees never changes.
import type net from 'node:net';

export class UpstreamBatch {
  /** Bytes forwarded and not written yet: buf[start, end), or nothing. */
  private buf?: Buffer;
  private start = 0;
  private end = 0;

  /** @param onFull upstream's send buffer is full (socket.write returned false): stop reading the client. */
  constructor(private readonly socket: net.Socket, private readonly onFull: () => void) {}

  /** Forwards buf[start, end) as it is: joined to the batch when it follows it directly. */
  add(buf: Buffer, start: number, end: number): void {
    if (buf !== this.buf || start !== this.end) {
      this.flush();
      this.buf = buf;
      this.start = start;
    }
    this.end = end;
  }

  /** Writes `bytes` after what is batched. */
  write(bytes: Buffer): void {
    this.flush();
    if (!this.socket.write(bytes)) this.onFull();
  }

  /** Forgets what is batched (the session ended before the read was handled through); true when there was something. */
  drop(): boolean {
    const had = this.buf !== undefined;
    this.buf = undefined;
    return had;
  }

  /** Writes what is batched. Once the upstream connection is destroyed (the session ended) nothing is written, as before a destroyed socket's queue. */
  flush(): void {
    const buf = this.buf;
    if (!buf) return;
    this.buf = undefined;
    if (this.socket.destroyed) return;
    if (!this.socket.write(buf.subarray(this.start, this.end))) this.onFull();
  }
}
