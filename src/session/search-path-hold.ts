// search_path where upstream does not report it (PostgreSQL 14–17): after a
// cycle that may have changed it, pgveil asks upstream itself once nothing
// is in flight, reads and drops the answer, and holds the client's next
// query cycle (its frame put back unread) until search_path is known again
// (engine/statement-gate.ts decides when).
import { Backend, Frontend, MESSAGE_HEADER_BYTES, TxStatus } from '../protocol/codes.js';
import { readDataRowFirstText, readReadyForQuery } from '../protocol/backend-messages.js';
import { searchPathProbe } from '../upstream/search-path-probe.js';
import type { StatementGate } from '../engine/statement-gate.js';
import type { FlowHost } from './flow-host.js';

export class SearchPathHold {
  /** pgveil's search_path question is in flight: its answer is read and dropped. */
  probe?: { value?: string; failed: boolean };
  /** The client's next cycle waits (its frame unread) until search_path is known again. */
  held = false;

  /**
   * @param watched the upstream scanner's watched types: RowDescription, DataRow and CommandComplete join while the question runs
   * @param send writes upstream, after what the client sent before
   */
  constructor(private readonly gate: StatementGate, private readonly host: FlowHost, private readonly watched: Uint8Array, private readonly send: (bytes: Buffer) => void) {}

  /** After a cycle: ask upstream for search_path if it may have changed, or let a held cycle go. */
  afterCycle(): void {
    const gate = this.gate;
    if (gate.wantsProbe) {
      gate.probeSent();
      this.probe = { failed: false };
      this.watchProbe(1);
      this.send(searchPathProbe);
      return;
    }
    // Released after the scanner has passed this ReadyForQuery on, so answers keep their order.
    if (this.held && !gate.mustHold) process.nextTick(() => this.release());
  }

  /** A message of the answer to pgveil's question (dropped). */
  onAnswer(probe: { value?: string; failed: boolean }, type: number, msg: Buffer): null {
    if (type === Backend.DataRow) probe.value = readDataRowFirstText(msg, MESSAGE_HEADER_BYTES, msg.length);
    else if (type === Backend.ErrorResponse) probe.failed = true; // an aborted transaction: known again after it ends
    else if (type === Backend.ReadyForQuery) {
      this.probe = undefined;
      this.watchProbe(0);
      this.gate.probeAnswered(probe.failed ? undefined : probe.value, readReadyForQuery(msg, MESSAGE_HEADER_BYTES) === TxStatus.Idle);
      this.afterCycle();
    }
    return null;
  }

  /** A new cycle from the client waits while search_path may be changing (messages of an open cycle and COPY data never do). */
  mustHold(unsynced: boolean): boolean {
    if (!this.gate.mustHold || unsynced) return false;
    const type = this.host.reader.type;
    return type !== Frontend.CopyData && type !== Frontend.CopyDone && type !== Frontend.CopyFail && type !== Frontend.Terminate;
  }

  hold(): void {
    this.host.reader.unread();
    this.held = true;
    this.host.socket.pause();
  }

  private release(): void {
    if (!this.held || this.host.closed || this.gate.mustHold) return;
    this.held = false;
    this.host.socket.resume();
    this.host.processFrames();
  }

  /** While pgveil's own question runs, every message of its answer is read (and dropped), none forwarded. */
  private watchProbe(on: 0 | 1): void {
    this.watched[Backend.RowDescription] = on;
    this.watched[Backend.DataRow] = on;
    this.watched[Backend.CommandComplete] = on;
  }
}
