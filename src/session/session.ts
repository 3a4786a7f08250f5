// One client connection: startup → (TLS) → SCRAM auth → upstream connect →
// ready ⇄ busy → closed. Client messages are handled strictly in arrival
// order; upstream bytes are forwarded as they come, watched only for
// ReadyForQuery and ErrorResponse.
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { PgError, SqlState, toClientError } from '../errors.js';
import { Backend, Frontend, TxStatus } from '../protocol/codes.js';
import { FrameReader } from '../protocol/frame-reader.js';
import { BackendScanner, watchTypes } from '../protocol/backend-scanner.js';
import {
  readBindNames, readParse, readQuery, readSaslInitialResponse, readSaslResponse, readStartupPacket, writeParse, writeQuery,
} from '../protocol/frontend-messages.js';
import {
  authenticationOk, readDataRowFirstText, readErrorFields, readParameterStatus, readyForQuery, sslAccepted, sslRefused, writeAuthenticationSasl,
  writeAuthenticationSaslContinue, writeAuthenticationSaslFinal, writeBackendKeyData, writeErrorResponse,
  writeNegotiateProtocolVersion, writeParameterStatus,
} from '../protocol/backend-messages.js';
import { ScramServerExchange, scramMechanisms } from '../auth/scram-server.js';
import { commonName, verifyClientCertificate } from '../auth/client-certificate.js';
import { fakeVerifier, parseVerifier, type ScramVerifier } from '../auth/scram-verifier.js';
import { passwordExpiredError, passwordExpiry } from '../auth/password-expiry.js';
import { connectUpstream, sendUpstreamCancel, upstreamUnavailable, type UpstreamConnection } from '../upstream/connect.js';
import type { User } from '../config/types.js';
import type { Decision } from './active-policy.js';
import { StatementGate } from './statement-gate.js';
import { Confirmation } from './upstream-objects.js';
import { searchPathProbe } from '../upstream/search-path-probe.js';
import type { ProxyContext } from './context.js';
import { checkStartupParams, forcedUpstreamParams, upstreamApplicationName, type StartupRequest } from './startup-params.js';

const MAX_STARTUP_PACKET = 10000;
/** What the session reads upstream: ReadyForQuery, errors and settings whole; the answers that confirm statements and portals only by type. */
const upstreamWatchedTypes = [Backend.ReadyForQuery, Backend.ErrorResponse, Backend.ParameterStatus];
const upstreamCounted = watchTypes([
  Backend.ParseComplete, Backend.BindComplete, Backend.CloseComplete, Backend.CommandComplete, Backend.EmptyQueryResponse, Backend.PortalSuspended,
]);
/** A statement upstream is sure to reject at parse time; stands in for a refused one (see refuse()). */
const sentinelNonce = randomBytes(8).toString('hex');
const sentinelText = `pgveil_refused_${sentinelNonce}`;

type State = 'startup' | 'auth' | 'connecting' | 'ready' | 'closed';

export class ClientSession {
  user?: string;
  private state: State = 'startup';
  private socket: net.Socket;
  private readonly reader: FrameReader;
  private upstream?: UpstreamConnection;
  private scanner?: BackendScanner;
  private startup?: StartupRequest;
  private scram?: ScramServerExchange;
  private authOk = false;
  private account?: User;
  private cancelKey?: { processId: number; secretKey: Buffer };
  private gate?: StatementGate;
  private deadline?: NodeJS.Timeout;
  private idleTimer?: NodeJS.Timeout;
  private tlsDone = false;
  /** The client's IP address, for per-address failure counting (E3). */
  private readonly clientAddress: string;

  private txStatus: number = TxStatus.Idle;
  /** Query/Sync messages forwarded whose ReadyForQuery has not come back. */
  private pendingSyncs = 0;
  /** Extended-protocol messages forwarded since the last Sync. */
  private unsynced = false;
  /** After a refused extended-protocol message: drop messages until Sync. */
  private skipping: 'no' | 'direct' | 'sentinel' = 'no';
  /** Errors that replace upstream's answers to sentinel statements, in order. */
  private readonly replacements: PgError[] = [];
  private upstreamSentFatal = false;
  /** Watched upstream message types; RowDescription and DataRow only while pgveil's own search_path question runs. */
  private readonly watched = watchTypes(upstreamWatchedTypes);
  /** pgveil's search_path question is in flight: its answer is read and dropped. */
  private probe?: { value?: string; failed: boolean };
  /** The client's next cycle waits (its frame unread) until search_path is known again. */
  private held = false;

  /**
   * refusal: the connection is refused (too many clients, a blocked address).
   * As in PostgreSQL, SSL negotiation still happens, so the client can read
   * the error, which answers its StartupMessage; the session is not counted.
   */
  constructor(socket: net.Socket, private readonly ctx: ProxyContext, private readonly refusal?: PgError) {
    this.socket = socket;
    this.clientAddress = socket.remoteAddress ?? '';
    this.reader = new FrameReader(false, MAX_STARTUP_PACKET);
    socket.setNoDelay(true);
    this.attach(socket);
    this.deadline = setTimeout(() => this.fail(new PgError(SqlState.ProtocolViolation, 'startup timeout', { severity: 'FATAL' })), ctx.config.auth.startupTimeoutMs);
    if (refusal) return;
    ctx.sessions.add(this);
    ctx.metrics.connectionsTotal.inc();
    ctx.metrics.connectionsCurrent.inc();
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
    socket.on('drain', () => this.upstream?.socket.resume());
  }

  /** Ends the session from outside (shutdown, a disabled user). */
  terminate(reason: string): void {
    this.fail(new PgError(SqlState.AdminShutdown, reason, { severity: 'FATAL' }));
  }

  private onClientData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.idleTimer?.refresh();
    this.reader.push(chunk);
    this.processFrames();
  }

  /** Handles every complete frame buffered; stops while the upstream connection is being opened. */
  private processFrames(): void {
    const upstreamSocket = this.upstream?.socket;
    upstreamSocket?.cork();
    try {
      while (this.state !== 'closed' && this.state !== 'connecting' && !this.held && this.reader.next()) {
        if (this.state === 'startup') this.onStartupPacket();
        else if (this.state === 'auth') this.onAuthMessage();
        else if (this.mustHold()) this.hold();
        else this.onMessage();
      }
    } catch (err) {
      this.fail(err);
    } finally {
      upstreamSocket?.uncork();
    }
  }

  // ── startup ──────────────────────────────────────────────────────────────

  private onStartupPacket(): void {
    const { buf, bodyStart, end } = this.reader;
    const packet = readStartupPacket(buf, bodyStart, end);
    switch (packet.kind) {
      case 'ssl':
        if (this.tlsDone || !this.ctx.secureContext) { this.socket.write(sslRefused); return; }
        if (this.reader.pending > 0) throw new PgError(SqlState.ProtocolViolation, 'received unencrypted data after SSL request', { severity: 'FATAL' });
        this.upgradeToTls();
        return;
      case 'gssenc':
        this.socket.write(sslRefused); // 'N': GSSAPI encryption is not offered
        return;
      case 'cancel':
        this.forwardCancel(packet.processId, packet.secretKey);
        return;
      case 'startup':
        this.onStartupMessage(packet.major, packet.minor, packet.params);
    }
  }

  private upgradeToTls(): void {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('error');
    raw.removeAllListeners('close');
    raw.write(sslAccepted);
    const secure = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: this.ctx.secureContext,
      requestCert: Boolean(this.ctx.config.tls.clientCa),
      rejectUnauthorized: false,
    });
    this.socket = secure;
    this.tlsDone = true;
    this.attach(secure);
  }

  private onStartupMessage(major: number, minor: number, params: Map<string, string>): void {
    if (major !== 3) {
      throw new PgError(SqlState.FeatureNotSupported, `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`, { severity: 'FATAL' });
    }
    if (this.refusal) throw this.refusal;
    if (!this.tlsDone && this.ctx.config.tls.mode === 'require') {
      throw new PgError(SqlState.InvalidAuthorizationSpecification, 'pgveil requires an encrypted connection (SSL off)', {
        severity: 'FATAL', hint: 'Connect with sslmode=require or stronger.',
      });
    }
    const request = checkStartupParams(params);
    if (request.database !== this.ctx.config.upstream.database) {
      throw new PgError('3D000', `database "${request.database}" does not exist`, { severity: 'FATAL' });
    }
    this.startup = request;
    this.user = request.user;
    if (minor > 0 || request.protocolOptions.length) this.socket.write(writeNegotiateProtocolVersion(0, request.protocolOptions));
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.fail(new PgError(SqlState.InvalidAuthorizationSpecification, 'authentication timeout', { severity: 'FATAL' })), this.ctx.config.auth.authTimeoutMs);
    // After the startup packet, frames are typed and may be as large as limits.maxMessageBytes.
    this.reader.typed = true;
    this.reader.maxFrame = this.ctx.config.limits.maxMessageBytes;
    this.state = 'auth';
    this.socket.write(writeAuthenticationSasl(scramMechanisms(this.tlsDone, this.ctx.serverCertificate)));
  }

  // ── authentication ───────────────────────────────────────────────────────

  private authFailed(): PgError {
    return new PgError(SqlState.InvalidPassword, `password authentication failed for user "${this.user}"`, { severity: 'FATAL' });
  }

  private verifierFor(user: string): ScramVerifier {
    const account = this.ctx.users().users.get(user);
    this.account = account;
    if (account?.password) {
      try { return parseVerifier(account.password); } catch { /* fall through: treated as unknown */ }
    }
    return fakeVerifier(user, this.ctx.fakeVerifierSecret);
  }

  private onAuthMessage(): void {
    const { buf, bodyStart, end, type } = this.reader;
    if (type !== Frontend.Password) {
      throw new PgError(SqlState.ProtocolViolation, `expected SASL response, got message type ${type}`, { severity: 'FATAL' });
    }
    const user = this.user as string;
    if (!this.scram) {
      const initial = readSaslInitialResponse(buf, bodyStart, end);
      const serverCertificate = this.tlsDone ? this.ctx.serverCertificate : undefined;
      this.scram = new ScramServerExchange({ user, verifier: this.verifierFor(user), serverCertificate });
      this.socket.write(writeAuthenticationSaslContinue(this.scram.start(initial.mechanism, initial.data)));
      return;
    }
    let serverFinal: Buffer;
    try {
      serverFinal = this.scram.finish(readSaslResponse(buf, bodyStart, end));
    } catch (err) {
      if (err instanceof PgError && err.code === SqlState.InvalidPassword) this.recordAuthFailure(user);
      throw err instanceof PgError ? err.fatal() : err;
    }
    // A right proof still fails for unknown, disabled or locked users, with the same error.
    const account = this.account;
    if (!account || account.disabled || this.ctx.lockout.isLocked(user)) {
      this.recordAuthFailure(user);
      this.ctx.logger.info('authentication refused', { user, reason: !account ? 'unknown' : account.disabled ? 'disabled' : 'locked' });
      throw this.authFailed();
    }
    this.checkClientCertificate(account);
    // Only now, after a correct proof: "expired" must not tell outsiders an account exists.
    const maxAgeDays = this.ctx.config.auth.passwordPolicy.maxAgeDays;
    const expiry = passwordExpiry(account, maxAgeDays);
    if (expiry) {
      this.ctx.metrics.auth.inc({ outcome: 'password_expired' });
      this.ctx.logger.info('authentication refused', { user, reason: expiry === 'expired' ? 'password expired' : 'password has no passwordChangedAt' });
      throw passwordExpiredError(user, maxAgeDays, expiry);
    }
    this.ctx.lockout.recordSuccess(user);
    this.ctx.metrics.auth.inc({ outcome: 'success' });
    clearTimeout(this.deadline);
    this.deadline = undefined;
    this.authOk = true;
    this.socket.write(writeAuthenticationSaslFinal(serverFinal));
    this.socket.write(authenticationOk);
    this.connectUpstream();
  }

  private recordAuthFailure(user: string): void {
    if (this.ctx.addressLockout.recordFailure(this.clientAddress)) {
      this.ctx.logger.warn('client address blocked after too many failed logins', { address: this.clientAddress });
    }
    this.ctx.metrics.auth.inc({ outcome: 'failure' });
    if (this.ctx.lockout.recordFailure(user)) {
      this.ctx.metrics.lockouts.inc();
      this.ctx.logger.warn('user locked out', { user });
    }
  }

  private checkClientCertificate(account: User): void {
    if (account.clientCert !== 'required') return;
    const cert = this.tlsDone ? (this.socket as tls.TLSSocket).getPeerX509Certificate() : undefined;
    if (!cert || !verifyClientCertificate(cert, this.ctx.clientCas) || commonName(cert) !== account.name) {
      throw new PgError(SqlState.InvalidAuthorizationSpecification, `certificate authentication failed for user "${account.name}"`, { severity: 'FATAL' });
    }
  }

  // ── upstream ─────────────────────────────────────────────────────────────

  private connectUpstream(): void {
    this.state = 'connecting';
    this.socket.pause();
    const request = this.startup as StartupRequest;
    const params = { ...request.upstreamParams, ...forcedUpstreamParams, application_name: upstreamApplicationName(request.user, request.clientApplication) };
    connectUpstream(this.ctx.config.upstream, this.ctx.upstreamPassword(), params).then(
      (upstream) => this.onUpstreamReady(upstream),
      (err: Error) => {
        this.ctx.logger.warn('upstream connect failed', { user: this.user, error: err.message });
        this.ctx.metrics.upstreamErrors.inc();
        this.fail(upstreamUnavailable());
      },
    );
  }

  private onUpstreamReady(upstream: UpstreamConnection): void {
    if (this.state === 'closed') { upstream.socket.destroy(); return; }
    this.upstream = upstream;
    const gate = new StatementGate(this.ctx.policy, this.user as string, () => this.ctx.users(), { value: upstream.searchPath, reported: upstream.searchPathReported });
    this.gate = gate;
    const out: Buffer[] = [];
    for (const status of upstream.parameterStatus) {
      const { name, value } = readParameterStatus(status, 5, status.length);
      gate.onParameterStatus(name, value);
      // The client sees its pgveil identity, not the shared service role.
      out.push(name === 'session_authorization' ? writeParameterStatus(name, this.user as string) : status);
    }
    this.cancelKey = this.ctx.cancelKeys.issue({ cancel: () => { void sendUpstreamCancel(this.ctx.config.upstream, upstream.processId, upstream.secretKey); } });
    out.push(writeBackendKeyData(this.cancelKey.processId, this.cancelKey.secretKey.readInt32BE(0)));
    out.push(readyForQuery[TxStatus.Idle]);
    this.socket.write(Buffer.concat(out));
    this.state = 'ready';
    // CopyData is forwarded piece by piece as it arrives: pgveil decides nothing on its content.
    // Every other message is assembled whole, as no byte of it may go upstream before its decision:
    // Query and Parse are decided on their whole text; Bind and Execute on the names at their start,
    // but a Bind holding a new cycle is put back and replayed whole, and a refused one is dropped whole.
    this.reader.streamTypes([Frontend.CopyData]);
    this.ctx.logger.info('session ready', { user: this.user });

    const client = this.socket;
    this.scanner = new BackendScanner(this.watched, (type, msg) => this.onUpstreamMessage(type, msg), (bytes) => {
      if (!client.write(bytes)) upstream.socket.pause();
    }, upstreamCounted, (type) => this.onUpstreamCounted(type));
    upstream.socket.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    upstream.socket.on('drain', () => { if (this.state !== 'closed') this.socket.resume(); });
    upstream.socket.on('error', () => this.onUpstreamClosed());
    upstream.socket.on('close', () => this.onUpstreamClosed());
    if (upstream.leftover.length) this.onUpstreamData(upstream.leftover);

    const idleMs = this.ctx.config.auth.idleTimeoutSeconds * 1000;
    if (idleMs > 0) {
      // One timer per session, refreshed (not re-created) on activity.
      this.idleTimer = setTimeout(() => {
        if (this.pendingSyncs > 0) { this.idleTimer?.refresh(); return; } // busy, not idle
        this.fail(new PgError(SqlState.IdleSessionTimeout, 'terminating connection due to idle-session timeout', { severity: 'FATAL' }));
      }, idleMs);
    }
    this.socket.resume();
    this.processFrames(); // anything the client pipelined behind its authentication
  }

  private onUpstreamData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.socket.cork();
    try {
      this.scanner?.push(chunk);
    } catch (err) {
      this.ctx.logger.error('upstream protocol error', { user: this.user, error: err instanceof Error ? err.message : String(err) });
      this.fail(upstreamUnavailable());
    } finally {
      this.socket.uncork();
    }
  }

  private onUpstreamMessage(type: number, msg: Buffer): Buffer | null | undefined {
    if (this.probe) return this.onProbeAnswer(type, msg);
    if (type === Backend.ParameterStatus) {
      const { name, value } = readParameterStatus(msg, 5, msg.length);
      this.gate?.onParameterStatus(name, value);
      // The client keeps seeing its pgveil identity, not the shared service role.
      return name === 'session_authorization' ? writeParameterStatus(name, this.user as string) : undefined;
    }
    if (type === Backend.ReadyForQuery) {
      this.txStatus = msg[5];
      this.gate?.cycleDone(this.txStatus === TxStatus.Idle);
      if (this.pendingSyncs > 0 && --this.pendingSyncs === 0) this.idleTimer?.refresh();
      this.afterCycle();
      return undefined;
    }
    this.gate?.failed(); // an ErrorResponse: upstream skips the rest of the cycle
    // ErrorResponse: is it upstream's answer to a sentinel standing in for a refusal?
    const fields = readErrorFields(msg, 5, msg.length);
    if (fields.get('S') === 'FATAL') this.upstreamSentFatal = true;
    if (this.replacements.length > 0 && fields.get('M')?.includes(sentinelNonce)) {
      return writeErrorResponse(this.replacements.shift() as PgError);
    }
    // Integrity violations print raw values ("Failing row contains (…)",
    // "Key (ssn)=(…) already exists") that masks hide from the user (B9).
    const code = fields.get('C') ?? '';
    if (code.startsWith('23') && fields.has('D')) {
      return writeErrorResponse(new PgError(code, fields.get('M') ?? 'integrity constraint violation', {
        severity: (fields.get('S') as PgError['severity']) ?? 'ERROR', hint: fields.get('H'),
      }));
    }
    return undefined;
  }

  /** Upstream confirmed a statement or portal operation (see upstream-objects.ts). */
  private onUpstreamCounted(type: number): void {
    const gate = this.gate;
    if (!gate || this.probe) return;
    switch (type) {
      case Backend.ParseComplete: gate.confirmed(Confirmation.Parse); return;
      case Backend.BindComplete: gate.confirmed(Confirmation.Bind); return;
      case Backend.CloseComplete: gate.confirmed(Confirmation.Close); return;
      case Backend.PortalSuspended: gate.completion(false); return;
      default: gate.completion(true); // CommandComplete, EmptyQueryResponse
    }
  }

  // ── search_path, where upstream does not report it ──────────────────────

  /** After a cycle: ask upstream for search_path if it may have changed, or let a held cycle go. */
  private afterCycle(): void {
    const gate = this.gate;
    if (!gate) return;
    if (gate.wantsProbe) {
      gate.probeSent();
      this.probe = { failed: false };
      this.watchProbe(1);
      this.upstream?.socket.write(searchPathProbe);
      return;
    }
    // Released after the scanner has passed this ReadyForQuery on, so answers keep their order.
    if (this.held && !gate.mustHold) process.nextTick(() => this.release());
  }

  private onProbeAnswer(type: number, msg: Buffer): null {
    const probe = this.probe as { value?: string; failed: boolean };
    if (type === Backend.DataRow) probe.value = readDataRowFirstText(msg, 5, msg.length);
    else if (type === Backend.ErrorResponse) probe.failed = true; // an aborted transaction: known again after it ends
    else if (type === Backend.ReadyForQuery) {
      this.probe = undefined;
      this.watchProbe(0);
      this.gate?.probeAnswered(probe.failed ? undefined : probe.value, msg[5] === TxStatus.Idle);
      this.afterCycle();
    }
    return null;
  }

  /** While pgveil's own question runs, every message of its answer is read (and dropped), none forwarded. */
  private watchProbe(on: 0 | 1): void {
    this.watched[Backend.RowDescription] = on;
    this.watched[Backend.DataRow] = on;
    this.watched[Backend.CommandComplete] = on;
  }

  /** A new cycle from the client waits while search_path may be changing (messages of an open cycle and COPY data never do). */
  private mustHold(): boolean {
    if (!this.gate?.mustHold || this.unsynced) return false;
    const type = this.reader.type;
    return type !== Frontend.CopyData && type !== Frontend.CopyDone && type !== Frontend.CopyFail && type !== Frontend.Terminate;
  }

  private hold(): void {
    this.reader.unread();
    this.held = true;
    this.socket.pause();
  }

  private release(): void {
    if (!this.held || this.state === 'closed' || this.gate?.mustHold) return;
    this.held = false;
    this.socket.resume();
    this.processFrames();
  }

  private onUpstreamClosed(): void {
    if (this.state === 'closed') return;
    this.ctx.metrics.upstreamErrors.inc();
    if (this.upstreamSentFatal) { this.close(); return; } // the client already has upstream's reason
    this.fail(new PgError(SqlState.AdminShutdown, 'terminating connection because the upstream server closed it', { severity: 'FATAL' }));
  }

  // ── ready: the query flow ────────────────────────────────────────────────

  private onMessage(): void {
    const { buf, type, frameStart, bodyStart, end } = this.reader;
    if (this.skipping !== 'no' && type !== Frontend.Sync) {
      if (type === Frontend.Terminate) this.close();
      return; // Postgres discards extended-protocol messages until Sync after an error
    }
    switch (type) {
      case Frontend.Query: {
        const decision = this.decide(readQuery(buf, bodyStart, end), undefined);
        if (decision.kind === 'refuse') this.refuseSimple(decision.error);
        else this.forward(decision.kind === 'rewrite' ? writeQuery(decision.sql) : buf.subarray(frameStart, end), true);
        return;
      }
      case Frontend.Parse: {
        const parse = readParse(buf, bodyStart, end);
        const decision = this.decide(parse.query, parse.name);
        if (decision.kind === 'refuse') { this.refuseExtended(decision.error); return; }
        this.forward(decision.kind === 'rewrite' ? writeParse(parse.name, decision.sql, buf, parse.paramsOffset, end) : buf.subarray(frameStart, end), false);
        this.unsynced = true;
        return;
      }
      case Frontend.Bind: {
        const names = readBindNames(buf, bodyStart, end);
        const stale = this.gate?.bind(names.statement, names.portal);
        if (stale) { this.refuseExtended(stale); return; }
        this.forward(buf.subarray(frameStart, end), false);
        this.unsynced = true;
        return;
      }
      case Frontend.Close:
        if (buf[bodyStart] === 0x53 || buf[bodyStart] === 0x50) this.gate?.close(buf[bodyStart] === 0x53 ? 'statement' : 'portal', readQuery(buf, bodyStart + 1, end));
        this.forward(buf.subarray(frameStart, end), false);
        this.unsynced = true;
        return;
      case Frontend.Execute: {
        const stale = this.gate?.execute(readQuery(buf, bodyStart, end));
        if (stale) { this.refuseExtended(stale); return; }
        this.forward(buf.subarray(frameStart, end), false);
        this.unsynced = true;
        return;
      }
      case Frontend.Describe: case Frontend.Flush:
        this.forward(buf.subarray(frameStart, end), false);
        this.unsynced = true;
        return;
      case Frontend.Sync:
        this.onSync(buf.subarray(frameStart, end));
        return;
      case Frontend.CopyData: case Frontend.CopyDone: case Frontend.CopyFail:
        this.forward(buf.subarray(frameStart, end), false);
        return;
      case Frontend.FunctionCall:
        this.refuseSimple(new PgError(SqlState.InsufficientPrivilege, 'the fast-path function call protocol is not allowed through pgveil'));
        return;
      case Frontend.Terminate:
        this.upstream?.socket.end(buf.subarray(frameStart, end));
        this.close();
        return;
      default:
        throw new PgError(SqlState.ProtocolViolation, `invalid frontend message type ${type}`, { severity: 'FATAL' });
    }
  }

  /** statementName: the Parse message's statement; undefined for a simple Query. */
  private decide(sql: string, statementName: string | undefined): Decision {
    const stop = this.ctx.metrics.analysisSeconds.startTimer();
    const gate = this.gate as StatementGate;
    const decision = statementName === undefined ? gate.decideQuery(sql) : gate.decideParse(statementName, sql);
    stop();
    const label = decision.kind === 'forward' ? 'forwarded' : decision.kind === 'rewrite' ? 'rewritten'
      : decision.error.code === SqlState.SyntaxError ? 'syntax_error' : 'refused';
    this.ctx.metrics.statements.inc({ outcome: label });
    return decision;
  }

  private forward(bytes: Buffer, completesCycle: boolean): void {
    const upstream = this.upstream as UpstreamConnection;
    if (!upstream.socket.write(bytes)) this.socket.pause();
    if (completesCycle) {
      this.pendingSyncs++;
      this.gate?.cycleSent();
    }
  }

  private onSync(bytes: Buffer): void {
    if (this.skipping === 'direct') {
      this.skipping = 'no';
      this.socket.write(readyForQuery[TxStatus.Idle]);
      return;
    }
    this.skipping = 'no';
    this.unsynced = false;
    this.forward(bytes, true);
  }

  /** True when pgveil may answer a refusal itself without reordering or desynchronising upstream. */
  private canAnswerDirectly(): boolean {
    return this.pendingSyncs === 0 && !this.unsynced && this.txStatus === TxStatus.Idle;
  }

  /**
   * A refused simple Query. When nothing is in flight and no transaction is
   * open, pgveil answers itself; otherwise a sentinel statement that upstream
   * rejects takes the query's place, so the error arrives in order and an
   * open transaction is aborted exactly as Postgres would abort it.
   */
  private refuseSimple(error: PgError): void {
    this.ctx.logger.info('statement refused', { user: this.user, code: error.code, reason: error.message });
    if (this.canAnswerDirectly()) {
      this.socket.write(Buffer.concat([writeErrorResponse(error), readyForQuery[TxStatus.Idle]]));
      return;
    }
    this.replacements.push(error);
    this.forward(writeQuery(sentinelText), true);
  }

  private refuseExtended(error: PgError): void {
    this.ctx.logger.info('statement refused', { user: this.user, code: error.code, reason: error.message });
    if (this.canAnswerDirectly()) {
      this.socket.write(writeErrorResponse(error));
      this.skipping = 'direct';
      return;
    }
    this.replacements.push(error);
    this.forward(sentinelParse, false);
    this.unsynced = true;
    this.skipping = 'sentinel';
  }

  // ── cancel and teardown ──────────────────────────────────────────────────

  private forwardCancel(processId: number, secretKey: Buffer): void {
    const keys = this.ctx.cancelKeys;
    if (keys.issuedElsewhere(processId)) this.ctx.routeCancel?.(processId, secretKey);
    else keys.lookup(processId, secretKey)?.cancel();
    this.close();
  }

  private fail(err: unknown): void {
    if (this.state === 'closed') return;
    const error = toClientError(err);
    if (!(err instanceof PgError)) this.ctx.logger.error('session error', { user: this.user, error: err instanceof Error ? err.message : String(err) });
    if (!this.socket.destroyed && this.socket.writable) {
      this.socket.end(writeErrorResponse(error.severity === 'FATAL' ? error : error.fatal()));
    }
    this.close();
  }

  private close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.deadline);
    clearTimeout(this.idleTimer);
    if (this.cancelKey) this.ctx.cancelKeys.release(this.cancelKey.processId);
    if (!this.refusal) {
      this.ctx.sessions.delete(this);
      this.ctx.metrics.connectionsCurrent.dec();
    }
    this.upstream?.socket.destroy();
    if (!this.socket.destroyed) {
      if (this.socket.writableLength > 0 && !this.socket.writableEnded) this.socket.end();
      this.socket.destroySoon();
    }
    if (this.authOk) this.ctx.logger.info('session closed', { user: this.user });
  }
}

const sentinelParse = (() => {
  const text = Buffer.from(sentinelText);
  const out = Buffer.alloc(1 + 4 + 1 + text.length + 1 + 2);
  out[0] = Frontend.Parse;
  out.writeInt32BE(out.length - 1, 1);
  text.copy(out, 6);
  return out;
})();
