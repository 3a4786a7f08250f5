// The writes one upstream chunk makes to the client. Usually there is one
// (the chunk's bytes as one slice, see protocol/backend-scanner.ts): it goes
// out as a plain write at end(), without the cork/uncork round of a socket's
// buffered path. When there are several (a replaced error, a message that
// spans chunks) they are corked and go out together, as before.
import type net from 'node:net';

export class WriteGroup {
  private held?: Buffer;
  private corked = false;

  /** @param onFull the socket's send buffer is full (write returned false) */
  constructor(private readonly socket: net.Socket, private readonly onFull: () => void) {}

  write(bytes: Buffer): void {
    if (!this.corked) {
      if (this.held === undefined) { this.held = bytes; return; }
      this.socket.cork();
      this.corked = true;
      this.send(this.held);
      this.held = undefined;
    }
    this.send(bytes);
  }

  /** Sends what was written since the last end(). */
  end(): void {
    const held = this.held;
    if (held !== undefined) { this.held = undefined; this.send(held); }
    if (this.corked) { this.corked = false; this.socket.uncork(); }
  }

  private send(bytes: Buffer): void {
    if (!this.socket.write(bytes)) this.onFull();
  }
}
