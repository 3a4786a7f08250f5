// A logged-in session's traffic once upstream is open: client frames go
// through the statement gate to upstream in arrival order; upstream bytes are
// forwarded as they come, watched only for ReadyForQuery, ErrorResponse,
// ParameterStatus and the answers that confirm statements and portals. A
// new cycle is held while search_path may be changing (search-path-hold.ts),
// and a refusal is answered in order (directly, or through a sentinel
// upstream rejects: refusals.ts).
import type net from 'node:net';
import { PgError, SqlState } from '../errors.js';
import { Backend, Frontend, MESSAGE_HEADER_BYTES, TxStatus } from '../protocol/codes.js';
import { BackendScanner, watchTypes } from '../protocol/backend-scanner.js';
import {
  readBindNames, readClose, readExecutePortal, readParse, readQuery, writeParse, writeQuery,
} from '../protocol/frontend-messages.js';
import {
  readCommandRows, readErrorFields, readParameterStatus, readReadyForQuery, readyForQuery, writeParameterStatus,
} from '../protocol/backend-messages.js';
import { sendUpstreamCancel, upstreamUnavailable, type UpstreamConnection } from '../upstream/connect.js';
import { handBackUpstream } from './upstream-handback.js';
import { IdleWatch } from './idle-watch.js';
import { StatementGate } from '../engine/statement-gate.js';
import { Confirmation } from '../engine/upstream-objects.js';
import type { AuditFacts } from '../engine/audit-facts.js';
import { auditBlocked } from '../engine/refusal-reason.js';
import type { ProxyContext } from './context.js';
import type { UsersFile } from '../config/types.js';
import type { SessionState } from './session-info.js';
import { StatementLog } from './statement-log.js';
import { messageTooLong, refusableLimits } from './oversize.js';
import { UpstreamBatch } from './upstream-batch.js';
import { WriteGroup } from './write-group.js';
import { Refusals } from './refusals.js';
import { SearchPathHold } from './search-path-hold.js';
import { StatementReuse } from './statement-reuse.js';
import { greeting } from './greeting.js';
import type { FlowHost } from './flow-host.js';

/** What the session reads upstream: ReadyForQuery, errors and settings whole; the answers that confirm statements and portals only by type. */
const upstreamWatchedTypes = [Backend.ReadyForQuery, Backend.ErrorResponse, Backend.ParameterStatus];
const upstreamCounted = watchTypes([
  Backend.ParseComplete, Backend.BindComplete, Backend.CloseComplete, Backend.CommandComplete, Backend.EmptyQueryResponse, Backend.PortalSuspended,
]);

export class QueryFlow {
  private readonly gate: StatementGate;
  private scanner?: BackendScanner;
  /** Upstream's answers on their way to the client: one write per upstream chunk. */
  private toClient?: WriteGroup;
  private cancelKey?: { processId: number; secretKey: Buffer };
  private idle?: IdleWatch;
  private txStatus: number = TxStatus.Idle;
  /** Query/Sync messages forwarded whose ReadyForQuery has not come back. */
  private pendingSyncs = 0;
  /** Extended-protocol messages forwarded since the last Sync. */
  private unsynced = false;
  /** After a refused extended-protocol message: drop messages until Sync. */
  private skipping: 'no' | 'direct' | 'sentinel' = 'no';
  /** Refused statements' answers, in order (refusals.ts). */
  private readonly refusals: Refusals;
  private upstreamSentFatal = false;
  /** A cancel went upstream: it may still arrive, so the connection is not reused. */
  private cancelSent = false;
  /** Watched upstream message types; RowDescription and DataRow only while pgveil's own search_path question runs. */
  private readonly watched = watchTypes(upstreamWatchedTypes);
  /** search_path asked of upstream where it does not report it, and the client's next cycle held meanwhile. */
  private readonly paths: SearchPathHold;
  /** Each statement's life: latency metrics, refusal counts, audit records. */
  readonly statements: StatementLog;
  /** Audit records carry rows: CommandComplete tags are read (in place) for their count. */
  private readonly wantsRows: boolean;
  /** Called once nothing is in flight any more (a drain waiting for the running statement). */
  private whenQuiet?: () => void;
  /** What goes upstream from the client's side, in order; frames forwarded unchanged are joined (flush() at the end of each read). */
  private readonly toUpstream: UpstreamBatch;
  /** Simple-protocol statements run as pgveil's prepared statements upstream, and their answers translated back. */
  private readonly reuse: StatementReuse;

  constructor(
    private readonly host: FlowHost, private readonly ctx: ProxyContext, private readonly upstream: UpstreamConnection, private readonly user: string,
    org?: string,
    /** Where the gate looks the account up: users.yaml, or a view of it holding a token login's account. */
    users: () => UsersFile = () => ctx.users(),
  ) {
    this.gate = new StatementGate(ctx.engine, user, users, ctx.metrics, { value: upstream.searchPath, reported: upstream.searchPathReported });
    this.gate.shadow = ctx.shadow?.forSession(user, users, host.id);
    this.statements = new StatementLog(ctx, { id: host.id, user, org });
    this.wantsRows = this.statements.wantsRows;
    this.refusals = new Refusals(ctx, user, this.statements);
    this.toUpstream = new UpstreamBatch(upstream.socket, () => host.socket.pause());
    this.paths = new SearchPathHold(this.gate, host, this.watched, (bytes) => this.toUpstream.write(bytes));
    this.reuse = new StatementReuse(ctx.config.upstream.statements.maxPerConnection, this.watched, ctx.metrics, ctx.engine);
  }

  /** The client's next cycle waits until search_path is known again. */
  get held(): boolean {
    return this.paths.held;
  }

  get upstreamSocket(): net.Socket {
    return this.upstream.socket;
  }

  /** Greets the client (settings, cancel key, ReadyForQuery) and starts carrying upstream's answers. */
  start(): void {
    const { upstream, gate, ctx } = this;
    this.cancelKey = ctx.cancelKeys.issue({
      cancel: () => {
        this.cancelSent = true;
        void sendUpstreamCancel(ctx.config.upstream, upstream.processId, upstream.secretKey);
      },
    });
    this.host.socket.write(greeting(upstream.parameterStatus.values(), this.user, this.cancelKey, (name, value) => gate.onParameterStatus(name, value)));
    ctx.logger.info('session ready', { user: this.user });
    // CopyData is forwarded piece by piece as it arrives: pgveil decides nothing on its content.
    // Every other message is assembled whole, as no byte of it may go upstream before its decision:
    // Query and Parse are decided on their whole text; Bind and Execute on the names at their start,
    // but a Bind holding a new cycle is put back and replayed whole, and a refused one is dropped whole.
    this.host.reader.streamTypes([Frontend.CopyData]);
    // A statement over limits.maxMessageBytes, or surely over the length budget, is refused in order, its bytes dropped unread; the session goes on.
    this.host.reader.refusableTypes(refusableLimits(ctx.config.limits.maxMessageBytes));

    const toClient = new WriteGroup(this.host.socket, () => upstream.socket.pause());
    this.toClient = toClient;
    this.scanner = new BackendScanner(this.watched, (type, msg) => this.onUpstreamMessage(type, msg), (bytes) => toClient.write(bytes),
      upstreamCounted, (type, chunk, bodyStart, end) => this.onUpstreamCounted(type, chunk, bodyStart, end));
    upstream.socket.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    upstream.socket.on('drain', () => { if (!this.host.closed) this.host.socket.resume(); });
    upstream.socket.on('error', () => this.onUpstreamClosed());
    upstream.socket.on('close', () => this.onUpstreamClosed());
    if (upstream.leftover.length) this.onUpstreamData(upstream.leftover);

    this.idle = new IdleWatch(ctx.config.auth.idleTimeoutSeconds * 1000, () => this.pendingSyncs > 0,
      () => this.host.fail(new PgError(SqlState.IdleSessionTimeout, 'terminating connection due to idle-session timeout', { severity: 'FATAL' })));
  }

  /** A statement or an extended-protocol cycle is in flight, or the client's next one is waiting. */
  get busy(): boolean {
    return this.pendingSyncs > 0 || this.unsynced || this.paths.held || this.skipping !== 'no';
  }

  get state(): SessionState {
    if (this.busy) return 'active';
    return this.txStatus === TxStatus.InBlock ? 'idle in transaction' : this.txStatus === TxStatus.Failed ? 'failed transaction' : 'idle';
  }

  /** Calls `done` as soon as nothing is in flight: now when idle, else after the ReadyForQuery that ends the running cycle has reached the client. */
  onQuiet(done: () => void): void {
    this.whenQuiet = done;
    this.checkQuiet();
  }

  private checkQuiet(): void {
    const done = this.whenQuiet;
    if (!done || this.busy) return;
    this.whenQuiet = undefined;
    // After the current upstream chunk (and its ReadyForQuery) has been passed to the client.
    process.nextTick(done);
  }

  /** The client sent something: the session is not idle. */
  touch(): void {
    this.idle?.active();
  }

  /** Teardown: the timer and the cancel key go with the session; the upstream connection back to the pool when in step, else closed. */
  dispose(): void {
    this.idle?.stop();
    this.statements.close();
    if (this.cancelKey) this.ctx.cancelKeys.release(this.cancelKey.processId);
    const unsent = this.toUpstream.drop(); // nothing of this session goes upstream after its end
    const { socket } = this.upstream;
    for (const event of ['data', 'drain', 'error', 'close']) socket.removeAllListeners(event);
    handBackUpstream(this.ctx, this.upstream, {
      unsent, unsynced: this.unsynced, upstreamSentFatal: this.upstreamSentFatal, cancelSent: this.cancelSent, atBoundary: this.scanner?.atBoundary ?? false,
      pendingSyncs: this.pendingSyncs, probe: this.paths.probe !== undefined, txStatus: this.txStatus,
    }, this.user);
  }

  /** Writes the client's frames forwarded since the last flush (the host calls it once it has handled what it read). */
  flush(): void {
    this.toUpstream.flush(); // after the session's end dispose() has dropped the batch: nothing goes
  }

  /** The reader's current frame: held, or handled. */
  onFrame(): void {
    if (this.paths.mustHold(this.unsynced)) this.paths.hold();
    else this.onMessage();
  }

  // ── upstream's answers ───────────────────────────────────────────────────

  private onUpstreamData(chunk: Buffer): void {
    if (this.host.closed) return;
    try {
      this.scanner?.push(chunk);
    } catch (err) {
      this.toClient?.end(); // what was passed before the failure goes ahead of the error
      this.ctx.logger.error('upstream protocol error', { user: this.user, error: err instanceof Error ? err.message : String(err) });
      this.host.fail(upstreamUnavailable(), 'upstream_lost');
      return;
    }
    this.toClient?.end();
  }

  private onUpstreamMessage(type: number, msg: Buffer): Buffer | null | undefined {
    if (this.paths.probe) return this.paths.onAnswer(this.paths.probe, type, msg);
    if (type === Backend.ParseComplete || type === Backend.BindComplete || type === Backend.CloseComplete || type === Backend.NoData) {
      // Watched only while a cycle pgveil changed is in flight: its own answers are dropped, the client's counted and passed.
      if (this.reuse.answer(type)) return null;
      if (type !== Backend.NoData) this.onUpstreamCounted(type);
      return undefined;
    }
    if (type === Backend.ParameterStatus) {
      const { name, value } = readParameterStatus(msg, MESSAGE_HEADER_BYTES, msg.length);
      this.gate.onParameterStatus(name, value);
      this.upstream.parameterStatus.set(name, Buffer.from(msg)); // greets the next session, if the connection is pooled
      // The client keeps seeing its pgveil identity, not the shared service role.
      return name === 'session_authorization' ? writeParameterStatus(name, this.user) : undefined;
    }
    if (type === Backend.ReadyForQuery) {
      this.txStatus = readReadyForQuery(msg, MESSAGE_HEADER_BYTES);
      this.gate.cycleDone(this.txStatus === TxStatus.Idle);
      this.reuse.cycleDone();
      this.statements.cycleDone();
      if (this.pendingSyncs > 0 && --this.pendingSyncs === 0) this.idle?.active();
      this.paths.afterCycle();
      this.checkQuiet();
      return undefined;
    }
    this.gate.failed(); // an ErrorResponse: upstream skips the rest of the cycle
    const fields = readErrorFields(msg, MESSAGE_HEADER_BYTES, msg.length);
    if (fields.get('S') === 'FATAL') this.upstreamSentFatal = true;
    return this.refusals.answerFor(fields); // a sentinel's error becomes pgveil's; integrity violations are redacted
  }

  /** Upstream confirmed a statement or portal operation (see engine/upstream-objects.ts); a CommandComplete's body comes along when it is at hand. */
  private onUpstreamCounted(type: number, chunk?: Buffer, bodyStart?: number, end?: number): void {
    const gate = this.gate;
    if (this.paths.probe) return;
    switch (type) {
      case Backend.ParseComplete: gate.confirmed(Confirmation.Parse); return;
      case Backend.BindComplete: gate.confirmed(Confirmation.Bind); return;
      case Backend.CloseComplete: gate.confirmed(Confirmation.Close); return;
      case Backend.PortalSuspended: gate.completion(false); this.statements.completion(undefined); return;
      case Backend.CommandComplete:
        gate.completion(true);
        this.statements.completion(this.wantsRows && chunk ? readCommandRows(chunk, bodyStart!, end!) : undefined);
        return;
      default: gate.completion(true); this.statements.completion(undefined); // EmptyQueryResponse
    }
  }

  private onUpstreamClosed(): void {
    if (this.host.closed) return;
    this.ctx.metrics.upstreamErrors.inc();
    if (this.upstreamSentFatal) { this.host.close('upstream_lost'); return; } // the client already has upstream's reason
    this.host.fail(new PgError(SqlState.AdminShutdown, 'terminating connection because the upstream server closed it', { severity: 'FATAL' }), 'upstream_lost');
  }

  // ── client messages ──────────────────────────────────────────────────────

  private onMessage(): void {
    const { buf, type, bodyStart, end } = this.host.reader;
    if (this.skipping !== 'no' && type !== Frontend.Sync) {
      if (type === Frontend.Terminate) this.host.close();
      return; // Postgres discards extended-protocol messages until Sync after an error
    }
    if (this.host.reader.oversize > 0) {
      const error = messageTooLong(this.host.reader.oversize, this.ctx.config.limits.maxMessageBytes, type);
      if (type === Frontend.Query) this.refuseSimple(error, performance.now());
      else this.refuseExtended(error, performance.now());
      return;
    }
    switch (type) {
      case Frontend.Query: {
        const started = performance.now();
        if (this.ctx.audit.blocked()) { this.refuseSimple(auditBlocked(), started); return; }
        const sql = readQuery(buf, bodyStart, end);
        const decision = this.gate.decide(sql, undefined, started);
        if (decision.kind === 'refuse') { this.refuseSimple(decision.error, started, decision, sql); return; }
        this.statements.forwarded(started, this.gate.decidedAt, false, decision.kind, decision, sql);
        if (decision.kind === 'rewrite') this.forward(this.reuse.query(decision, sql, this.txStatus) ?? writeQuery(decision.sql), true);
        else { this.reuse.query(decision, sql, this.txStatus); this.forwardFrame(true); }
        return;
      }
      case Frontend.Parse: {
        const started = performance.now();
        if (this.ctx.audit.blocked()) { this.refuseExtended(auditBlocked(), started); return; }
        const parse = readParse(buf, bodyStart, end);
        const decision = this.gate.decide(parse.query, parse.name, started, parse.parameterTypes);
        if (decision.kind === 'refuse') { this.refuseExtended(decision.error, started, decision, parse.query); return; }
        // Nothing in flight: the transaction state is known.
        const mapped = this.reuse.parse(decision, parse.name, buf, parse.paramsOffset, end, !this.unsynced && this.pendingSyncs === 0 ? this.txStatus : undefined);
        if (mapped) this.forward(mapped, false);
        else if (decision.kind === 'rewrite') this.forward(writeParse(parse.name, decision.sql, buf, parse.paramsOffset, end), false);
        else this.forwardFrame(false);
        this.unsynced = true;
        return;
      }
      case Frontend.Bind: {
        const names = readBindNames(buf, bodyStart, end);
        const stale = this.gate.bind(names.statement, names.portal);
        if (stale) { this.refuseExtended(stale, performance.now()); return; }
        const bind = this.reuse.bind(names.statement, buf, bodyStart, end);
        if (bind instanceof PgError) { this.refuseExtended(bind, performance.now()); return; }
        if (bind) this.forward(bind, false);
        else this.forwardFrame(false);
        this.unsynced = true;
        return;
      }
      case Frontend.Close: {
        const closed = readClose(buf, bodyStart, end);
        const reserved = closed && this.reuse.close(closed.target, closed.name);
        if (reserved) { this.refuseExtended(reserved, performance.now()); return; }
        if (closed) this.gate.close(closed.target, closed.name);
        this.forwardFrame(false);
        this.unsynced = true;
        return;
      }
      case Frontend.Execute: {
        const started = performance.now();
        if (this.ctx.audit.blocked()) { this.refuseExtended(auditBlocked(), started); return; }
        const stale = this.gate.execute(readExecutePortal(buf, bodyStart, end));
        if (stale) { this.refuseExtended(stale, started); return; }
        const ran = this.gate.lastExecuted;
        this.statements.forwarded(started, started, true, ran?.decided?.kind ?? 'forward', ran?.decided, ran?.text);
        this.forwardFrame(false);
        this.unsynced = true;
        return;
      }
      case Frontend.Describe: case Frontend.Flush: {
        const described = type === Frontend.Describe ? readClose(buf, bodyStart, end) : undefined; // Describe and Close share a layout
        const describe = described && this.reuse.describe(described.target, described.name);
        if (describe instanceof PgError) { this.refuseExtended(describe, performance.now()); return; }
        if (describe) this.forward(describe, false);
        else this.forwardFrame(false);
        this.unsynced = true;
        return;
      }
      case Frontend.Sync:
        this.onSync();
        return;
      case Frontend.CopyData: case Frontend.CopyDone: case Frontend.CopyFail:
        this.forwardFrame(false);
        return;
      case Frontend.FunctionCall:
        this.refuseSimple(new PgError(SqlState.InsufficientPrivilege, 'the fast-path function call protocol is not allowed through pgveil'), performance.now());
        return;
      case Frontend.Terminate:
        this.toUpstream.flush(); // what came before it still goes; the connection is then pooled or closed by dispose()
        this.host.close();
        return;
      default:
        throw new PgError(SqlState.ProtocolViolation, `invalid frontend message type ${type}`, { severity: 'FATAL' });
    }
  }

  /** Sends bytes pgveil made (a rewritten message, a sentinel) upstream. */
  private forward(bytes: Buffer, completesCycle: boolean): void {
    this.toUpstream.write(bytes);
    if (completesCycle) this.cycleSent();
  }

  /** Forwards the reader's current frame as the client sent it. */
  private forwardFrame(completesCycle: boolean): void {
    const { buf, frameStart, end } = this.host.reader;
    this.toUpstream.add(buf, frameStart, end);
    if (completesCycle) this.cycleSent();
  }

  private cycleSent(): void {
    this.pendingSyncs++;
    this.reuse.cycleSent();
    this.gate.cycleSent();
    this.statements.cycleSent();
  }

  private onSync(): void {
    if (this.skipping === 'direct') {
      this.skipping = 'no';
      this.host.socket.write(readyForQuery[TxStatus.Idle]);
      this.checkQuiet();
      return;
    }
    this.skipping = 'no';
    this.unsynced = false;
    this.forwardFrame(true);
  }

  // ── refusals (refusals.ts): answered now when nothing is in flight and no transaction is open, else by a sentinel ──

  /** A refused simple Query. */
  private refuseSimple(error: PgError, started: number, facts?: AuditFacts, text?: string): void {
    const sentinel = this.refusals.refuse(error, started, facts, text, false, this.canAnswerDirectly(), this.host.socket);
    if (sentinel) { this.reuse.unnamedGone(); this.forward(sentinel, true); } // the sentinel is a Query
  }

  /** A refused extended-protocol message; the cycle's other messages are dropped until Sync. */
  private refuseExtended(error: PgError, started: number, facts?: AuditFacts, text?: string): void {
    const sentinel = this.refusals.refuse(error, started, facts, text, true, this.canAnswerDirectly(), this.host.socket);
    this.skipping = sentinel ? 'sentinel' : 'direct';
    if (!sentinel) return;
    this.reuse.unnamedGone(); // the sentinel parses the unnamed statement
    this.forward(sentinel, false);
    this.unsynced = true;
  }

  /** pgveil may answer itself without reordering or desynchronising upstream. */
  private canAnswerDirectly(): boolean {
    return this.pendingSyncs === 0 && !this.unsynced && this.txStatus === TxStatus.Idle;
  }
}

