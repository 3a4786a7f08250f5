// What the admin API shows of an open session (its id: see session-id.ts).
import type { DisconnectReason } from '../audit/record.js';

/** Like pg_stat_activity.state. */
export type SessionState = 'starting' | 'idle' | 'active' | 'idle in transaction' | 'failed transaction';

export interface SessionInfo {
  id: string;
  /** Absent until the startup message named one. */
  user?: string;
  org?: string;
  /** The client's IP address and port. */
  address: string;
  port?: number;
  /** When the connection was accepted (ISO time). */
  since: string;
  state: SessionState;
  /** Statements the client sent (simple Query messages and extended-protocol Executes). */
  statements: number;
}

/** A live session as the listener, reloads and the admin API see it. */
export interface LiveSession {
  readonly id: string;
  readonly user?: string;
  /** The org of an account that is not in users.yaml (a token login's claim); undefined for users.yaml users. */
  readonly credentialOrg?: string;
  info(): SessionInfo;
  /** Ends the session now with 57P01 and this message; `reason` is what the disconnect record and metric say. */
  terminate(message: string, reason?: DisconnectReason): void;
  /** Ends the session once no statement is in flight (at once when idle), for a drain. */
  endWhenQuiet(): void;
}
