// A client's login, from AuthenticationSASL to the account it proves: the
// SCRAM exchange (with channel binding over TLS), per-user and per-address
// lockout, the client certificate a user may require, and password expiry.
// Every failure is a FATAL PgError; unknown, disabled and locked users fail
// exactly like a wrong password. The audit log gets the real reason of each
// outcome (the client never does).
import type tls from 'node:tls';
import { PgError, SqlState } from '../errors.js';
import { Frontend } from '../protocol/codes.js';
import { readSaslInitialResponse, readSaslResponse } from '../protocol/frontend-messages.js';
import { writeAuthenticationSasl, writeAuthenticationSaslContinue, writeAuthenticationSaslFinal } from '../protocol/backend-messages.js';
import { ScramServerExchange, scramMechanisms } from '../auth/scram-server.js';
import { commonName, verifyClientCertificate } from '../auth/client-certificate.js';
import { fakeVerifier, parseVerifier, type ScramVerifier } from '../auth/scram-verifier.js';
import { passwordExpiredError, passwordExpiry } from '../auth/password-expiry.js';
import type { User } from '../config/types.js';
import type { AuthFailureReason } from '../audit/record.js';
import type { ProxyContext } from './context.js';
import type { StartupRequest } from './startup-params.js';

/** A client that has proved who it is: what the query flow starts from. */
export interface LoggedIn {
  account: User;
  startup: StartupRequest;
}

/** One SASL message's answer, and the logged-in account once the exchange succeeded. */
export interface LoginStep {
  reply: Buffer;
  loggedIn?: LoggedIn;
}

export class Login {
  private scram?: ScramServerExchange;
  private account?: User;
  private mechanism?: string;

  /** `secure`: the client's TLS socket when the connection is encrypted (channel binding, client certificates). */
  constructor(
    private readonly ctx: ProxyContext,
    private readonly startup: StartupRequest,
    private readonly clientAddress: string,
    private readonly secure: tls.TLSSocket | undefined,
    /** The session's id, for audit records. */
    private readonly session: string,
  ) {}

  /** AuthenticationSASL: the mechanisms offered (the -PLUS one only over TLS with a certificate). */
  challenge(): Buffer {
    return writeAuthenticationSasl(scramMechanisms(Boolean(this.secure), this.ctx.serverCertificate));
  }

  /** Handles one client message of the exchange (the frame's type and body bounds). */
  onMessage(type: number, buf: Buffer, bodyStart: number, end: number): LoginStep {
    if (type !== Frontend.Password) {
      throw new PgError(SqlState.ProtocolViolation, `expected SASL response, got message type ${type}`, { severity: 'FATAL' });
    }
    const user = this.startup.user;
    if (!this.scram) {
      const initial = readSaslInitialResponse(buf, bodyStart, end);
      const serverCertificate = this.secure ? this.ctx.serverCertificate : undefined;
      this.scram = new ScramServerExchange({ user, verifier: this.verifierFor(user), serverCertificate });
      this.mechanism = initial.mechanism;
      try {
        return { reply: writeAuthenticationSaslContinue(this.scram.start(initial.mechanism, initial.data)) };
      } catch (err) {
        this.audit('protocol');
        throw err;
      }
    }
    let serverFinal: Buffer;
    try {
      serverFinal = this.scram.finish(readSaslResponse(buf, bodyStart, end));
    } catch (err) {
      const wrongProof = err instanceof PgError && err.code === SqlState.InvalidPassword;
      if (wrongProof) this.recordFailure(user);
      const reason = !wrongProof ? 'protocol' : !this.account ? 'unknown_user' : this.account.disabled ? 'disabled' : 'wrong_password';
      this.refused(user, reason);
      throw err instanceof PgError ? err.fatal() : err;
    }
    // A right proof still fails for unknown, disabled or locked users, with the same error.
    const account = this.account;
    if (!account || account.disabled || this.ctx.lockout.isLocked(user)) {
      this.recordFailure(user);
      const reason = !account ? 'unknown_user' : account.disabled ? 'disabled' : 'locked';
      this.refused(user, reason);
      throw this.failed(user);
    }
    this.checkClientCertificate(account);
    // Only now, after a correct proof: "expired" must not tell outsiders an account exists.
    const maxAgeDays = this.ctx.config.auth.passwordPolicy.maxAgeDays;
    const expiry = passwordExpiry(account, maxAgeDays);
    if (expiry) {
      this.ctx.metrics.auth.inc({ outcome: 'password_expired' });
      this.refused(user, 'expired', expiry === 'expired' ? 'password expired' : 'password has no passwordChangedAt');
      const { portal, reset } = this.ctx.config;
      throw passwordExpiredError(user, maxAgeDays, expiry, portal && reset ? reset.linkBase : undefined);
    }
    this.ctx.lockout.recordSuccess(user);
    this.ctx.metrics.auth.inc({ outcome: 'success' });
    this.audit();
    return { reply: writeAuthenticationSaslFinal(serverFinal), loggedIn: { account, startup: this.startup } };
  }

  /** A failed login: the operator's log line (`detail` when it says more than the reason) and the audit record (the client sees one message for all reasons). */
  private refused(user: string, reason: AuthFailureReason, detail: string = reason): void {
    this.ctx.logger.warn('authentication refused', { user, reason: detail, address: this.clientAddress });
    this.audit(reason);
  }

  /** The audit record of this login's outcome: success without a reason, failure with one. */
  private audit(reason?: AuthFailureReason): void {
    this.ctx.audit.record({
      event: 'auth', session: this.session, user: this.startup.user, address: this.clientAddress,
      outcome: reason ? 'failure' : 'success', reason, method: this.mechanism?.toLowerCase(),
    });
  }

  private failed(user: string): PgError {
    return new PgError(SqlState.InvalidPassword, `password authentication failed for user "${user}"`, { severity: 'FATAL' });
  }

  private verifierFor(user: string): ScramVerifier {
    const account = this.ctx.users().users.get(user);
    this.account = account;
    if (account?.password) {
      try { return parseVerifier(account.password); } catch { /* fall through: treated as unknown */ }
    }
    return fakeVerifier(user, this.ctx.fakeVerifierSecret);
  }

  private recordFailure(user: string): void {
    if (this.ctx.addressLockout.recordFailure(this.clientAddress)) {
      this.ctx.logger.warn('client address blocked after too many failed logins', { address: this.clientAddress });
      this.auditLockout('address', this.clientAddress, this.ctx.addressLockout.lockedUntil(this.clientAddress));
    }
    this.ctx.metrics.auth.inc({ outcome: 'failure' });
    if (this.ctx.lockout.recordFailure(user)) {
      this.ctx.metrics.lockouts.inc();
      this.ctx.logger.warn('user locked out', { user });
      this.auditLockout('user', user, this.ctx.lockout.lockedUntil(user));
    }
  }

  /** A lock this process took (under `workers: N` the primary takes and records them). */
  private auditLockout(scope: 'user' | 'address', key: string, until: number | undefined): void {
    this.ctx.audit.record({ event: 'lockout', scope, key, until: new Date(until ?? Date.now()).toISOString() });
  }

  private checkClientCertificate(account: User): void {
    if (account.clientCert !== 'required') return;
    const cert = this.secure?.getPeerX509Certificate();
    if (!cert || !verifyClientCertificate(cert, this.ctx.clientCas) || commonName(cert) !== account.name) {
      this.refused(account.name, 'client_certificate');
      throw new PgError(SqlState.InvalidAuthorizationSpecification, `certificate authentication failed for user "${account.name}"`, { severity: 'FATAL' });
    }
  }
}
