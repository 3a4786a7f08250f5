// One client connection: startup → (TLS) → login → upstream connect → query
// flow → closed. Client messages are handled strictly in arrival order. This
// module owns the client socket, the phases and the teardown; login.ts
// authenticates, query-flow.ts carries the traffic once upstream is open.
import net from 'node:net';
import tls from 'node:tls';
import { PgError, SqlState, toClientError } from '../errors.js';
import { FrameReader } from '../protocol/frame-reader.js';
import { TxStatus } from '../protocol/codes.js';
import { readStartupPacket } from '../protocol/frontend-messages.js';
import { authenticationOk, sslAccepted, sslRefused, writeErrorResponse, writeNegotiateProtocolVersion } from '../protocol/backend-messages.js';
import { upstreamUnavailable, type UpstreamConnection } from '../upstream/connect.js';
import { POOLED_APPLICATION_NAME } from '../upstream/pool.js';
import type { ProxyContext } from './context.js';
import { checkStartupParams, forcedUpstreamParams, upstreamApplicationName } from './startup-params.js';
import { Login, type LoggedIn, type LoginStep } from './login.js';
import { usersWithAccount } from './session-users.js';
import { QueryFlow } from './query-flow.js';
import type { FlowHost } from './flow-host.js';
import type { LiveSession, SessionInfo } from './session-info.js';
import type { DisconnectReason } from '../audit/record.js';

const MAX_STARTUP_PACKET = 10000;

/** Where the connection is; each phase holds what exists in it. */
type Phase =
  | { name: 'startup' }
  | { name: 'auth'; login: Login }
  /** A password is being checked (asynchronously): no client message is read until it is done. */
  | { name: 'checking'; login: Login }
  | { name: 'connecting'; loggedIn: LoggedIn }
  | { name: 'ready'; flow: QueryFlow }
  | { name: 'closed' };

/** What PostgreSQL says when an administrator ends a session (pg_terminate_backend, shutdown). */
export const ADMIN_TERMINATION = 'terminating connection due to administrator command';

/** When the access token a session logged in with runs out (a credential may name itself instead). */
export const CREDENTIAL_EXPIRED = 'terminating connection because the access token expired';

export class ClientSession implements FlowHost, LiveSession {
  /** Unique within this pgveil and across its workers: audit records, logs and the admin API name sessions by it. */
  readonly id: string;
  /** The user the startup message names (logged in or not yet): for logs, and for ending a disabled user's sessions. */
  user?: string;
  socket: net.Socket;
  readonly reader: FrameReader;
  private phase: Phase = { name: 'startup' };
  /** The client's TLS socket once the connection is encrypted. */
  private secure?: tls.TLSSocket;
  private deadline?: NodeJS.Timeout;
  /** Ends the session when a credential with a lifetime (an access token) runs out. */
  private credentialTimer?: NodeJS.Timeout;
  /** The org of a login whose account is not in users.yaml (a token's claim). */
  credentialOrg?: string;
  /** The client's IP address, for per-address failure counting (E3). */
  private readonly clientAddress: string;
  private readonly startedAt = Date.now();
  /** Why the session ended: the first cause wins (a socket close follows every other one). */
  private endReason?: DisconnectReason;
  /** A drain asked for the end once the running statement is done. */
  private endingWhenQuiet = false;
  /** The connect record is written: its end is logged, counted and recorded too (a bare probe leaves no trace). */
  private announced = false;

  /**
   * refusal: the connection is refused (too many clients, a blocked address).
   * As in PostgreSQL, SSL negotiation still happens, so the client can read
   * the error, which answers its StartupMessage; the session is not counted.
   */
  constructor(socket: net.Socket, private readonly ctx: ProxyContext, private readonly refusal?: PgError) {
    this.id = ctx.nextSessionId();
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

  get closed(): boolean {
    return this.phase.name === 'closed';
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
    socket.on('drain', () => { if (this.phase.name === 'ready') this.phase.flow.upstreamSocket.resume(); });
  }

  /** Ends the session from outside (the admin API, shutdown, a disabled user). */
  terminate(message: string, reason: DisconnectReason = 'terminated'): void {
    this.fail(new PgError(SqlState.AdminShutdown, message, { severity: 'FATAL' }), reason);
  }

  endWhenQuiet(): void {
    if (this.endingWhenQuiet) return;
    this.endingWhenQuiet = true;
    const shutdown = () => this.terminate(ADMIN_TERMINATION, 'shutdown');
    if (this.phase.name === 'ready') this.phase.flow.onQuiet(shutdown);
    else shutdown(); // not logged in yet: no statement to wait for
  }

  info(): SessionInfo {
    const phase = this.phase;
    const user = this.user;
    return {
      id: this.id,
      user,
      org: user === undefined ? undefined : this.ctx.users().users.get(user)?.org ?? this.credentialOrg,
      address: this.clientAddress,
      port: this.socket.remotePort,
      since: new Date(this.startedAt).toISOString(),
      state: phase.name === 'ready' ? phase.flow.state : 'starting',
      statements: phase.name === 'ready' ? phase.flow.statements.count : 0,
    };
  }

  private onClientData(chunk: Buffer): void {
    if (this.phase.name === 'closed') return;
    if (this.phase.name === 'ready') this.phase.flow.touch();
    this.reader.push(chunk);
    this.processFrames();
  }

  /** Handles every complete frame buffered; stops while the upstream connection is being opened or a cycle is held. */
  processFrames(): void {
    const flow = this.phase.name === 'ready' ? this.phase.flow : undefined;
    const upstreamSocket = flow?.upstreamSocket;
    upstreamSocket?.cork();
    try {
      for (;;) {
        const phase = this.phase;
        if (phase.name === 'closed' || phase.name === 'connecting' || phase.name === 'checking' || (phase.name === 'ready' && phase.flow.held)) return;
        if (!this.reader.next()) return;
        if (phase.name === 'startup') this.onStartupPacket();
        else if (phase.name === 'auth') this.onAuthMessage(phase.login);
        else phase.flow.onFrame();
      }
    } catch (err) {
      this.fail(err);
    } finally {
      flow?.flush(); // the frames forwarded unchanged, joined
      upstreamSocket?.uncork();
    }
  }

  // ── startup ──────────────────────────────────────────────────────────────

  private onStartupPacket(): void {
    const { buf, bodyStart, end } = this.reader;
    const packet = readStartupPacket(buf, bodyStart, end);
    switch (packet.kind) {
      case 'ssl':
        if (this.secure || !this.ctx.secureContext) { this.socket.write(sslRefused); return; }
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
    this.secure = secure;
    this.attach(secure);
  }

  private onStartupMessage(major: number, minor: number, params: Map<string, string>): void {
    if (major !== 3) {
      throw new PgError(SqlState.FeatureNotSupported, `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`, { severity: 'FATAL' });
    }
    if (this.refusal) throw this.refusal;
    // One per client that gets as far as its StartupMessage (an SSLRequest alone, a cancel, a refused connection: none).
    this.ctx.audit.record({ event: 'connect', session: this.id, address: this.clientAddress, tls: Boolean(this.secure) });
    this.announced = true;
    if (!this.secure && this.ctx.config.tls.mode === 'require') {
      throw new PgError(SqlState.InvalidAuthorizationSpecification, 'pgveil requires an encrypted connection (SSL off)', {
        severity: 'FATAL', hint: 'Connect with sslmode=require or stronger.',
      });
    }
    const request = checkStartupParams(params);
    if (request.database !== this.ctx.config.upstream.database) {
      throw new PgError('3D000', `database "${request.database}" does not exist`, { severity: 'FATAL' });
    }
    this.user = request.user;
    if (minor > 0 || request.protocolOptions.length) this.socket.write(writeNegotiateProtocolVersion(0, request.protocolOptions));
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.fail(new PgError(SqlState.InvalidAuthorizationSpecification, 'authentication timeout', { severity: 'FATAL' })), this.ctx.config.auth.authTimeoutMs);
    // After the startup packet, frames are typed and may be as large as limits.maxMessageBytes.
    this.reader.typed = true;
    this.reader.maxFrame = this.ctx.config.limits.maxMessageBytes;
    const login = new Login(this.ctx, request, this.clientAddress, this.secure, this.id);
    this.phase = { name: 'auth', login };
    this.socket.write(login.challenge());
  }

  // ── login, then upstream ─────────────────────────────────────────────────

  private onAuthMessage(login: Login): void {
    const { buf, bodyStart, end, type } = this.reader;
    const step = login.onMessage(type, buf, bodyStart, end);
    if (!(step instanceof Promise)) { this.onAuthStep(step); return; }
    this.phase = { name: 'checking', login };
    this.socket.pause();
    step.then((done) => {
      if (this.phase.name !== 'checking') return; // closed meanwhile
      this.phase = { name: 'auth', login };
      this.socket.resume();
      this.onAuthStep(done);
      this.processFrames();
    }).catch((err: unknown) => this.fail(err));
  }

  private onAuthStep(step: LoginStep): void {
    if (!step.loggedIn) { if (step.reply) this.socket.write(step.reply); return; }
    clearTimeout(this.deadline);
    this.deadline = undefined;
    if (step.reply) this.socket.write(step.reply);
    this.socket.write(authenticationOk);
    if (step.loggedIn.external) this.credentialOrg = step.loggedIn.account.org ?? '';
    if (step.loggedIn.expiresAt !== undefined) this.endAt(step.loggedIn.expiresAt, step.loggedIn.expiryMessage ?? CREDENTIAL_EXPIRED);
    this.connectUpstream(step.loggedIn);
  }

  /** Terminates the session (57P01) at `at`; timers are capped at ~24 days, so a later time re-arms. */
  private endAt(at: number, message: string): void {
    const MAX_TIMER_MS = 2 ** 31 - 1;
    this.credentialTimer = setTimeout(() => {
      if (Date.now() < at) { this.endAt(at, message); return; }
      this.ctx.logger.info('credential expired; ending the session', { session: this.id, user: this.user });
      this.terminate(message, 'credential_expired');
    }, Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS));
    this.credentialTimer.unref();
  }

  private connectUpstream(loggedIn: LoggedIn): void {
    this.phase = { name: 'connecting', loggedIn };
    this.socket.pause();
    const request = loggedIn.startup;
    const params = { ...request.upstreamParams, ...forcedUpstreamParams, application_name: POOLED_APPLICATION_NAME };
    this.ctx.upstreamPool.acquire(params, upstreamApplicationName(request.user, request.clientApplication)).then(
      (upstream) => this.onUpstreamReady(upstream, loggedIn),
      (err: Error) => {
        this.ctx.logger.warn('upstream connect failed', { user: this.user, error: err.message });
        this.ctx.metrics.upstreamErrors.inc();
        this.fail(upstreamUnavailable(), 'upstream_lost');
      },
    );
  }

  private onUpstreamReady(upstream: UpstreamConnection, loggedIn: LoggedIn): void {
    if (this.phase.name === 'closed') { this.ctx.upstreamPool.release(upstream, TxStatus.Idle); return; } // unused: back to the pool
    const users = loggedIn.external ? usersWithAccount(this.ctx, loggedIn.account) : () => this.ctx.users();
    const flow = new QueryFlow(this, this.ctx, upstream, loggedIn.startup.user, loggedIn.account.org, users);
    this.phase = { name: 'ready', flow };
    flow.start();
    this.socket.resume();
    this.processFrames(); // anything the client pipelined behind its authentication
  }

  // ── cancel and teardown ──────────────────────────────────────────────────

  private forwardCancel(processId: number, secretKey: Buffer): void {
    const keys = this.ctx.cancelKeys;
    if (keys.issuedElsewhere(processId)) this.ctx.routeCancel?.(processId, secretKey);
    else keys.lookup(processId, secretKey)?.cancel();
    this.close();
  }

  fail(err: unknown, reason?: DisconnectReason): void {
    if (this.phase.name === 'closed') return;
    this.endReason ??= reason ?? this.failureReason(err);
    const error = toClientError(err);
    if (!(err instanceof PgError)) this.ctx.logger.error('session error', { user: this.user, error: err instanceof Error ? err.message : String(err) });
    if (!this.socket.destroyed && this.socket.writable) {
      this.socket.end(writeErrorResponse(error.severity === 'FATAL' ? error : error.fatal()));
    }
    this.close();
  }

  /** Why an error ended the session, when the caller did not say. */
  private failureReason(err: unknown): DisconnectReason {
    if (err instanceof PgError && err.code === SqlState.IdleSessionTimeout) return 'idle_timeout';
    return this.phase.name === 'auth' || this.phase.name === 'checking' ? 'auth_failed' : 'protocol_error';
  }

  /** `reason`: why, when no earlier cause was recorded (default: the client went away). */
  close(reason: DisconnectReason = 'client'): void {
    const phase = this.phase;
    if (phase.name === 'closed') return;
    this.phase = { name: 'closed' };
    if (phase.name === 'checking') phase.login.abandon();
    clearTimeout(this.deadline);
    clearTimeout(this.credentialTimer);
    const statements = phase.name === 'ready' ? phase.flow.statements.count : 0;
    if (phase.name === 'ready') phase.flow.dispose();
    if (!this.socket.destroyed) {
      if (this.socket.writableLength > 0 && !this.socket.writableEnded) this.socket.end();
      this.socket.destroySoon();
    }
    if (this.refusal) return; // a refused connection was never a session
    this.ctx.sessions.delete(this);
    this.ctx.metrics.connectionsCurrent.dec();
    if (!this.announced) return;
    const ended = this.endReason ??= reason;
    const durationMs = Date.now() - this.startedAt;
    this.ctx.metrics.disconnects.inc({ reason: ended });
    this.ctx.audit.record({ event: 'disconnect', session: this.id, user: this.user, reason: ended, statements, durationMs });
    this.ctx.logger.info('session ended', { session: this.id, user: this.user, address: this.clientAddress, reason: ended, durationMs, statements });
  }
}
