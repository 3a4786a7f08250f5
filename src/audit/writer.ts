// The audit log writer. `record` only queues (no serialising or hashing on the
// caller's stack); a drain loop, started by a short batch timer (at once when
// many records wait or a flush asks), turns the queue into chained lines and
// writes each batch with one append. Written lines are forced to disk every
// `syncMs` (an fdatasync on this VM costs as much CPU as ~80 statements, so one
// per 10 ms batch cost more than the rest of the log together), or with each
// append when `syncMs` is 0. A failed write or sync retries on a timer; under
// `onFailure: block` the log reports itself blocked until one succeeds again
// (docs/operations/audit-log.md).
import type { Config } from '../config/types.js';
import type { Logger } from '../observe/log.js';
import type { ProxyMetrics } from '../observe/metrics.js';
import { ActiveFile, type ChainHead } from './active-file.js';
import { FILE_START, TORN_TAIL, fieldsJson, formatLine, utcDay } from './chain.js';
import { BatchBytes, formatBatch, type CopiedLine, type Queued } from './batch-format.js';
import type { AuditEvent, AuditSink } from './record.js';
import { SyslogForwarder, parseSyslogUrl } from './syslog.js';
import { readFile } from 'node:fs/promises';

export type AuditConfig = NonNullable<Config['audit']>;

export interface AuditLogDeps {
  /** The audit counters (under `workers: N` the primary has these alone, not a whole ProxyMetrics). */
  metrics?: Pick<ProxyMetrics, 'auditRecords' | 'auditWriteFailures' | 'auditBlocked'>;
  logger: Logger;
  /** The clock records are stamped with (tests move it across midnight). */
  now?: () => Date;
  /** How long to wait before retrying a failed write. Default 1000 ms. */
  retryMs?: number;
  /** Most records held while writes fail; more are dropped and counted as write failures. Default 100000. */
  maxQueue?: number;
  /** Also receives every line once it is on disk (as the `audit.syslog` copy does). Must not throw or block. */
  copy?: (line: string, event: string, ts: number) => void;
  /** How long queued records wait for more before they are written (one write and fdatasync per batch). Default 10 ms. */
  batchMs?: number;
}

/** Lines and bytes per append: bound the memory of one batch and the time between fsyncs. */
const MAX_BATCH = 5000;
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** This many waiting records are written at once rather than at the batch timer. */
const EARLY_BATCH = 1000;

export class AuditLog implements AuditSink {
  readonly statements: AuditConfig['statements'];
  private queue: Queued[] = [];
  /** The bytes of the batch being written (reused: the drain loop writes one batch at a time). */
  private readonly batch = new BatchBytes();
  private accepted = 0;
  /** Records appended to the file. */
  private written = 0;
  /** Lines were appended since the last fdatasync (never under syncMs 0: each append is synchronous). */
  private unsynced = false;
  private syncTimer: NodeJS.Timeout | null = null;
  /** The sync timer fired (or a sync failed): sync before the loop ends. */
  private syncDue = false;
  private dropped = 0;
  private failure: { error: unknown; attempts: number; since: number } | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private drainScheduled = false;
  private batchTimer: NodeJS.Timeout | null = null;
  /** True exactly while a drain loop runs (set and cleared synchronously, so a flush never joins a loop that has already finished). */
  private looping = false;
  private draining: Promise<void> = Promise.resolve();
  private closed = false;
  private waiters: { until: number; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private listeners = new Set<(blocked: boolean) => void>();
  private readonly now: () => number;
  private readonly copies: NonNullable<AuditLogDeps['copy']>[] = [];

  private constructor(private readonly cfg: AuditConfig, private readonly deps: AuditLogDeps, private readonly file: ActiveFile, private head: ChainHead, private readonly syslog: SyslogForwarder | null) {
    this.statements = cfg.statements;
    if (deps.copy) this.copies.push(deps.copy);
    if (syslog) this.copies.push((line, event, ts) => syslog.send(line, event, ts));
    const clock = deps.now;
    this.now = clock ? () => clock().getTime() : Date.now;
  }

  /**
   * Opens (or continues) the audit file. Throws when an existing file cannot be
   * continued; a failing first write does not throw but blocks or counts as a
   * write failure, as every later one does.
   */
  static async open(cfg: AuditConfig, deps: AuditLogDeps): Promise<AuditLog> {
    const clock = deps.now ?? (() => new Date());
    const { file, head } = await ActiveFile.open(cfg.file, cfg.retentionDays, clock().getTime(), cfg.syncMs === 0);
    const syslog = cfg.syslog
      ? new SyslogForwarder(parseSyslogUrl(cfg.syslog), { logger: deps.logger, ca: cfg.syslogCa === undefined ? undefined : await readFile(cfg.syslogCa) })
      : null;
    const log = new AuditLog(cfg, deps, file, head, syslog);
    deps.metrics?.auditBlocked.set(0);
    await log.applyRetention();
    await log.flush().catch(() => { /* reported by the failure path; retried on the timer */ });
    return log;
  }

  record(event: AuditEvent): void {
    if (this.closed) return;
    if (this.queue.length >= (this.deps.maxQueue ?? 100_000)) {
      if (this.dropped++ === 0) this.deps.logger.error('audit queue full: dropping records until writes succeed', { file: this.cfg.file, queued: this.queue.length });
      this.deps.metrics?.auditWriteFailures.inc();
      return;
    }
    this.queue.push({ ts: this.now(), event });
    this.accepted++;
    this.schedule();
  }

  blocked(): boolean {
    return this.failure !== null && this.cfg.onFailure === 'block';
  }

  /** Called with the new state whenever blocked() changes. Returns a function that unsubscribes. */
  onBlockedChange(cb: (blocked: boolean) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Resolves once every record accepted so far is on disk (synced); rejects with the error if a write or sync fails meanwhile. */
  flush(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ until: this.accepted, resolve, reject }));
    if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = null; }
    this.clearBatchTimer();
    void this.drain();
    return done;
  }

  /** Writes what is queued, then closes the file. Records that cannot be written are reported, not thrown. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } catch (err) {
      this.deps.logger.error('audit records not written at shutdown', { file: this.cfg.file, records: this.queue.length, error: errorText(err) });
    }
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.clearBatchTimer();
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
    await this.draining;
    await this.file.closeHandle();
    await this.syslog?.close();
  }

  /**
   * Records wait up to batchMs for more, so one write and one fdatasync carry
   * many of them. The timer is not unref'd: accepted records keep the process
   * alive until written. A running loop picks new records up itself.
   */
  private schedule(): void {
    if (this.drainScheduled || this.looping || this.retryTimer) return;
    if (this.queue.length < EARLY_BATCH) {
      this.batchTimer ??= setTimeout(this.onBatchTimer, this.deps.batchMs ?? 10);
      return;
    }
    this.clearBatchTimer();
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      void this.drain();
    });
  }

  private readonly onBatchTimer = (): void => {
    this.batchTimer = null;
    void this.drain();
  };

  private clearBatchTimer(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
  }

  /** One drain loop at a time; a call while it runs joins it (the loop picks up new records). */
  private drain(): Promise<void> {
    if (!this.looping) this.draining = this.drainLoop();
    return this.draining;
  }

  private async drainLoop(): Promise<void> {
    this.looping = true;
    try {
      // After the first batch, records that arrived during a write wait for the batch timer, unless a flush waits for them or many are queued.
      let wrote = false;
      while (!this.closed) {
        if (this.pendingHousekeeping() || (this.queue.length > 0 && (!wrote || this.waiters.length > 0 || this.queue.length >= EARLY_BATCH))) {
          await this.writeBatch();
          wrote = true;
        } else if (this.unsynced && (this.syncDue || this.waiters.length > 0)) {
          await this.syncWritten();
        } else {
          break;
        }
      }
      this.settleWaiters();
    } catch (err) {
      this.failed(err);
    } finally {
      this.looping = false;
    }
    if (!this.closed && this.queue.length > 0) this.schedule();
  }

  /** A torn line to record, a start record to write, or (at open) a file from an earlier day to rotate. */
  private pendingHousekeeping(): boolean {
    return this.file.torn !== null || !this.file.started || this.now() >= this.file.dayEnd;
  }

  /**
   * Chains and appends one batch: the writer's own records (a torn line, a
   * file start), then the queued ones. The chain head and queue move only
   * after the write succeeded.
   */
  private async writeBatch(): Promise<void> {
    const file = this.file;
    // The copies want each line with its event and time; without copies only the batch bytes are kept.
    const wantLines = this.copies.length > 0;
    const own: CopiedLine[] = [];
    const out = this.batch;
    out.reset();
    let head = this.head;
    const add = (ts: number, event: string, json: string): void => {
      const line = formatLine(ts, head.seq + 1, json, head.hash);
      head = { seq: head.seq + 1, hash: out.addLine(line) };
      own.push({ text: line, event, ts });
    };
    let taken = 0;
    let copied: CopiedLine[] | null = null;
    if (file.torn) { // terminate the torn bytes and say so, chained to the last complete line
      out.addNewline();
      add(this.now(), TORN_TAIL, fieldsJson({ event: TORN_TAIL, bytes: file.torn.bytes, sha256: file.torn.sha256 }));
    } else {
      const first = this.queue.length > 0 ? this.queue[0].ts : this.now();
      if (first >= file.dayEnd) {
        await file.rotate(utcDay(first));
        this.unsynced = false; // rotate synced the file it renamed
        await this.applyRetention();
      }
      if (!file.started) add(this.queue[0]?.ts ?? this.now(), FILE_START, fieldsJson({ event: FILE_START, file: file.target, previousFile: file.previousFile }));
      let n = 0;
      while (n < this.queue.length && n < MAX_BATCH && this.queue[n].ts < file.dayEnd) n++;
      if (n > 0) {
        const batch = formatBatch(out, { records: this.queue, count: n, head, statements: this.statements, maxBytes: MAX_BATCH_BYTES, wantLines });
        head = batch.head;
        taken = batch.taken;
        copied = batch.lines;
      }
    }
    await file.append(out.bytes());
    if (file.slowAppendMs > 0) {
      this.deps.logger.warn('audit append was slow: appending through the thread pool for a minute', { file: this.cfg.file, ms: Math.round(file.slowAppendMs) });
      file.slowAppendMs = 0;
    }
    this.head = head;
    file.torn = null;
    file.started = true;
    this.queue.splice(0, taken);
    this.written += taken;
    if (this.cfg.syncMs > 0) {
      this.unsynced = true;
      this.syncTimer ??= setTimeout(this.onSyncTimer, this.cfg.syncMs);
    }
    this.deps.metrics?.auditRecords.inc(taken);
    if (wantLines) {
      for (const copy of this.copies) {
        for (const l of own) copy(l.text, l.event, l.ts);
        if (copied) for (const l of copied) copy(l.text, l.event, l.ts);
      }
    }
    if (this.failure && !this.syncDue) this.recovered(); // after a failed sync, recovered once a sync succeeds
    this.settleWaiters();
  }

  private readonly onSyncTimer = (): void => {
    this.syncTimer = null;
    this.syncDue = true;
    void this.drain();
  };

  /** fdatasync of what is written (the drain loop neither writes nor rotates meanwhile); a failure leaves syncDue set, so the retry syncs again. */
  private async syncWritten(): Promise<void> {
    if (this.syncTimer) clearTimeout(this.syncTimer); // this sync covers what the timer was for
    this.syncTimer = null;
    this.syncDue = true;
    await this.file.sync();
    this.unsynced = false;
    this.syncDue = false;
    if (this.failure) this.recovered();
    this.settleWaiters();
  }

  private async applyRetention(): Promise<void> {
    try {
      const removed = await this.file.applyRetention(this.now());
      if (removed.length) this.deps.logger.info('audit files removed by retention', { files: removed, retentionDays: this.cfg.retentionDays });
    } catch (err) {
      this.deps.logger.warn('audit retention failed', { file: this.cfg.file, error: errorText(err) });
    }
  }

  private failed(err: unknown): void {
    this.deps.metrics?.auditWriteFailures.inc();
    if (!this.failure) {
      this.failure = { error: err, attempts: 0, since: this.now() };
      this.deps.logger.error('audit write failed', {
        file: this.cfg.file, error: errorText(err), onFailure: this.cfg.onFailure, queued: this.queue.length,
        consequence: this.cfg.onFailure === 'block' ? 'new statements are refused until the audit file can be written' : 'serving on; records stay queued and are retried',
      });
      if (this.cfg.onFailure === 'block') this.setBlocked(true);
    }
    this.failure.attempts++;
    this.failure.error = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
    if (!this.closed) {
      // Not unref'd: queued records keep the process alive until written or close() gives up on them.
      this.retryTimer = setTimeout(() => { this.retryTimer = null; void this.drain(); }, this.deps.retryMs ?? 1000);
    }
  }

  private recovered(): void {
    const failure = this.failure!;
    this.failure = null;
    this.deps.logger.info('audit writes recovered', {
      file: this.cfg.file, failedAttempts: failure.attempts, failingMs: this.now() - failure.since, dropped: this.dropped,
    });
    this.dropped = 0;
    if (this.cfg.onFailure === 'block') this.setBlocked(false);
  }

  private setBlocked(blocked: boolean): void {
    this.deps.metrics?.auditBlocked.set(blocked ? 1 : 0);
    for (const cb of this.listeners) {
      try { cb(blocked); } catch (err) { this.deps.logger.error('audit blocked listener failed', { error: errorText(err) }); }
    }
  }

  /** A flush is done once its records are written and nothing written waits for an fdatasync. */
  private settleWaiters(): void {
    if (this.unsynced) return;
    const done = this.waiters.filter((w) => w.until <= this.written);
    this.waiters = this.waiters.filter((w) => w.until > this.written);
    for (const w of done) w.resolve();
  }
}

function errorText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
