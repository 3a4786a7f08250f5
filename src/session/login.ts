// A client's login, from the authentication request to the account it
// proves: the SCRAM exchange (with channel binding over TLS), or a password
// sent in clear over TLS when this deployment has such logins (a second
// factor, token logins: password-checks.ts), then per-user and per-address
// lockout, the client certificate a user may require, and password expiry,
// the same on both paths. Every failure is a FATAL PgError; unknown,
// disabled and locked users fail exactly like a wrong password. The audit
// log gets the real reason of each outcome (the client never does).
import type tls from 'node:tls';
import { PgError, SqlState } from '../errors.js';
import { Frontend } from '../protocol/codes.js';
import { readCleartextPassword, readSaslInitialResponse, readSaslResponse } from '../protocol/frontend-messages.js';
import { authenticationCleartextPassword, writeAuthenticationSasl, writeAuthenticationSaslContinue, writeAuthenticationSaslFinal } from '../protocol/backend-messages.js';
import { ScramServerExchange, scramMechanisms } from '../auth/scram-server.js';
import { commonName, verifyClientCertificate } from '../auth/client-certificate.js';
import { fakeVerifier, type ScramVerifier } from '../auth/scram-verifier.js';
import { checkCleartext, cleartextChecks, cleartextInUse, verifierOf } from './password-checks.js';
import { passwordExpiredError, passwordExpiry } from '../auth/password-expiry.js';
import type { User } from '../config/types.js';
import type { AuthFailureReason } from '../audit/record.js';
import type { ProxyContext } from './context.js';
import type { StartupRequest } from './startup-params.js';

/** A client that has proved who it is: what the query flow starts from. */
export interface LoggedIn {
  account: User;
  startup: StartupRequest;
  /** When the credential runs out (ms since the epoch): the session is ended then. */
  expiresAt?: number;
  /** The account comes from the credential (a token's claims), not from users.yaml. */
  external?: boolean;
  /** What the session is told when it is ended at `expiresAt`. */
  expiryMessage?: string;
}

/** One client message's answer (none after a cleartext password), and the logged-in account once the login succeeded. */
export interface LoginStep {
  reply?: Buffer;
  loggedIn?: LoggedIn;
}

export class Login {
  private scram?: ScramServerExchange;
  private account?: User;
  private mechanism?: string;
  /** The client was asked for its password in clear (over TLS only); no SCRAM message is accepted then. */
  private cleartext = false;

  /** `secure`: the client's TLS socket when the connection is encrypted (channel binding, client certificates). */
  constructor(
    private readonly ctx: ProxyContext,
    private readonly startup: StartupRequest,
    private readonly clientAddress: string,
    private readonly secure: tls.TLSSocket | undefined,
    /** The session's id, for audit records. */
    private readonly session: string,
  ) {}

  /**
   * The authentication request. Over TLS in a deployment with cleartext
   * logins, every name gets AuthenticationCleartextPassword; otherwise
   * AuthenticationSASL (the -PLUS mechanism only over TLS with a certificate).
   */
  challenge(): Buffer {
    if (this.secure && cleartextInUse(this.ctx)) {
      this.cleartext = true;
      return authenticationCleartextPassword;
    }
    return writeAuthenticationSasl(scramMechanisms(Boolean(this.secure), this.ctx.serverCertificate));
  }

  /**
   * Handles one client message (the frame's type and body bounds, read
   * before this returns). A cleartext password is checked asynchronously:
   * the caller must not hand over further messages until the promise settles.
   */
  onMessage(type: number, buf: Buffer, bodyStart: number, end: number): LoginStep | Promise<LoginStep> {
    if (type !== Frontend.Password) {
      throw new PgError(SqlState.ProtocolViolation, `expected ${this.cleartext ? 'password' : 'SASL'} response, got message type ${type}`, { severity: 'FATAL' });
    }
    if (this.cleartext) return this.onCleartextPassword(buf, bodyStart, end);
    return this.onScramMessage(buf, bodyStart, end);
  }

  private onCleartextPassword(buf: Buffer, bodyStart: number, end: number): Promise<LoginStep> {
    if (this.mechanism) throw new PgError(SqlState.ProtocolViolation, 'unexpected password message', { severity: 'FATAL' });
    this.mechanism = 'password';
    let password: string;
    try {
      password = readCleartextPassword(buf, bodyStart, end); // a SASL message sent instead fails here
    } catch (err) {
      this.audit('protocol');
      throw err;
    }
    return this.checkCleartext(password);
  }

  private async checkCleartext(password: string): Promise<LoginStep> {
    const user = this.startup.user;
    const outcome = await checkCleartext(cleartextChecks(this.ctx), { user, password });
    this.mechanism = outcome.method;
    if (!outcome.ok) {
      this.recordFailure(user);
      this.refused(user, outcome.reason, outcome.detail ? `${outcome.reason}: ${outcome.detail}` : outcome.reason, outcome.detail);
      throw this.failed(user);
    }
    this.accept(user, outcome.account, outcome.passwordAge);
    return {
      loggedIn: { account: outcome.account, startup: this.startup, expiresAt: outcome.expiresAt, external: outcome.external, expiryMessage: outcome.expiryMessage },
    };
  }

  private onScramMessage(buf: Buffer, bodyStart: number, end: number): LoginStep {
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
      const reason = !wrongProof ? 'protocol' : !this.account ? 'unknown_user' : this.account.totp ? 'needs_tls'
        : this.account.disabled ? 'disabled' : 'wrong_password';
      this.refused(user, reason);
      throw err instanceof PgError ? err.fatal() : err;
    }
    const account = this.account;
    if (!account) {
      this.recordFailure(user);
      this.refused(user, 'unknown_user');
      throw this.failed(user);
    }
    this.accept(user, account, true);
    return { reply: writeAuthenticationSaslFinal(serverFinal), loggedIn: { account, startup: this.startup } };
  }

  /**
   * After a right password, on either path: disabled and locked users fail
   * with the ordinary error, then the client certificate and the password's
   * age are checked (only now: "expired" must not tell outsiders an account
   * exists). Records the success.
   */
  private accept(user: string, account: User, passwordAge: boolean): void {
    if (account.disabled || this.ctx.lockout.isLocked(user)) {
      this.recordFailure(user);
      this.refused(user, account.disabled ? 'disabled' : 'locked');
      throw this.failed(user);
    }
    this.checkClientCertificate(account);
    const maxAgeDays = this.ctx.config.auth.passwordPolicy.maxAgeDays;
    const expiry = passwordAge ? passwordExpiry(account, maxAgeDays) : undefined;
    if (expiry) {
      this.ctx.metrics.auth.inc({ outcome: 'password_expired' });
      this.refused(user, 'expired', expiry === 'expired' ? 'password expired' : 'password has no passwordChangedAt');
      const { portal, reset } = this.ctx.config;
      throw passwordExpiredError(user, maxAgeDays, expiry, portal && reset ? reset.linkBase : undefined);
    }
    this.ctx.lockout.recordSuccess(user);
    this.ctx.metrics.auth.inc({ outcome: 'success' });
    this.audit();
  }

  /** A failed login: the operator's log line (`detail` when it says more than the reason) and the audit record (the client sees one message for all reasons). */
  private refused(user: string, reason: AuthFailureReason, detail: string = reason, auditDetail?: string): void {
    this.ctx.logger.warn('authentication refused', { user, reason: detail, address: this.clientAddress });
    this.audit(reason, auditDetail);
  }

  /** The audit record of this login's outcome: success without a reason, failure with one. */
  private audit(reason?: AuthFailureReason, detail?: string): void {
    this.ctx.audit.record({
      event: 'auth', session: this.session, user: this.startup.user, address: this.clientAddress,
      outcome: reason ? 'failure' : 'success', reason, method: this.mechanism?.toLowerCase(), detail,
    });
  }

  private failed(user: string): PgError {
    return new PgError(SqlState.InvalidPassword, `password authentication failed for user "${user}"`, { severity: 'FATAL' });
  }

  /** A user with a second factor never passes SCRAM (it has no place for the code): a fake verifier, as for an unknown name. */
  private verifierFor(user: string): ScramVerifier {
    const account = this.ctx.users().users.get(user);
    this.account = account;
    if (account?.totp) return fakeVerifier(user, this.ctx.fakeVerifierSecret);
    return verifierOf(account, user, this.ctx);
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
