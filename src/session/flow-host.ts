// What a session's upstream-side traffic (query-flow.ts and its helpers)
// needs of the client connection that owns it (connection.ts).
import type net from 'node:net';
import type { FrameReader } from '../protocol/frame-reader.js';
import type { DisconnectReason } from '../audit/record.js';

/** What upstream-side traffic needs of the client connection (connection.ts). */
export interface FlowHost {
  /** The session's id (audit records name it). */
  readonly id: string;
  /** The client's socket (TLS already settled). */
  readonly socket: net.Socket;
  /** The client's frames; the current one is read by onFrame. */
  readonly reader: FrameReader;
  readonly closed: boolean;
  /** Handles every complete client frame buffered (after a held cycle is let go). */
  processFrames(): void;
  /** Ends the session with an error to the client; `reason` says why for the disconnect record. */
  fail(err: unknown, reason?: DisconnectReason): void;
  close(reason?: DisconnectReason): void;
}
