// A worker's audit sink under `workers: N`: only the primary writes the
// audit file (one hash chain), so a worker queues its records and hands
// them to the primary in one IPC message per event-loop turn (or per
// MAX_BATCH records), never one message per record. The primary tells every
// worker when the log becomes blocked or writable again.
import type { AuditEvent, AuditSink } from '../audit/record.js';

const MAX_BATCH = 1000;

export class ForwardedAudit implements AuditSink {
  private batch: AuditEvent[] = [];
  private scheduled = false;
  private isBlocked: boolean;

  constructor(
    readonly statements: AuditSink['statements'],
    blocked: boolean,
    /** Sends one batch to the primary; calls back once it is handed to the IPC channel. */
    private readonly send: (records: AuditEvent[], sent?: () => void) => void,
  ) {
    this.isBlocked = blocked;
  }

  record(event: AuditEvent): void {
    this.batch.push(event);
    if (this.batch.length >= MAX_BATCH) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  blocked(): boolean {
    return this.isBlocked;
  }

  /** The primary's word on whether the audit log can be written. */
  setBlocked(blocked: boolean): void {
    this.isBlocked = blocked;
  }

  /** Hands everything queued to the primary; resolves once it has left this process (before a worker exits). */
  close(): Promise<void> {
    return new Promise((resolve) => this.flush(resolve));
  }

  private flush(sent?: () => void): void {
    this.scheduled = false;
    if (!this.batch.length) { sent?.(); return; }
    const records = this.batch;
    this.batch = [];
    this.send(records, sent);
  }
}
