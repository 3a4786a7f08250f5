// What an audit record says (docs/operations.md, Audit log). Each record is one JSON line;
// the writer adds `ts` (ISO time), `seq` and `prev` (the chain hash). Never a password,
// verifier, token, key or rewritten SQL: only the fields typed here.

/**
 * Why an authentication failed; a client sees one message for all of them (no user enumeration).
 * `replayed_second_factor`: a TOTP code (or an older one) already used; `needs_tls`: a
 * user with a second factor tried SCRAM (it can only log in with password + code over TLS);
 * `bad_token`: an OIDC access token refused (the auth record's `detail` says why);
 * `stale_sso_password`: a live password issued at SSO sign-in whose account no longer
 * holds (`detail`: user_removed, now_listed, unknown_org).
 */
export type AuthFailureReason = 'wrong_password' | 'unknown_user' | 'locked' | 'expired' | 'disabled' | 'bad_second_factor' | 'replayed_second_factor' | 'needs_tls' | 'bad_token' | 'stale_sso_password' | 'client_certificate' | 'protocol';

/** Why a session ended. */
export type DisconnectReason = 'client' | 'idle_timeout' | 'terminated' | 'upstream_lost' | 'protocol_error' | 'auth_failed' | 'shutdown' | 'user_disabled' | 'credential_expired';

export type StatementDecision = 'forwarded' | 'rewritten' | 'refused' | 'syntax_error';

export type AuditEvent =
  | { event: 'connect'; session: string; address: string; tls: boolean }
  | { event: 'refused_connection'; address: string; reason: 'too_many_clients' | 'address_blocked' | 'draining' }
  | { event: 'auth'; session: string; user: string; address: string; outcome: 'success' | 'failure'; reason?: AuthFailureReason; method?: string; /** A token's refusal reason (a fixed word, never a claim value). */ detail?: string }
  | { event: 'lockout'; scope: 'user' | 'address'; key: string; until: string }
  | { event: 'unlock'; user: string; by: string }
  | { event: 'disconnect'; session: string; user?: string; reason: DisconnectReason; statements: number; durationMs: number }
  | {
    event: 'statement'; session: string; user: string; org?: string;
    /** libpg-query fingerprint (statements: fingerprint) */ fingerprint?: string;
    /** the client's own text (statements: full) */ text?: string;
    relations: readonly string[]; decision: StatementDecision;
    /** refusals and syntax errors: SQLSTATE and the message the client saw */ code?: string; reason?: string;
    durationMs?: number; rows?: number;
  }
  | { event: 'policy_reload'; generation: number; outcome: 'applied' | 'rejected'; loosened?: string[]; error?: string }
  | {
    event: 'shadow_difference'; session: string; user: string; fingerprint?: string; text?: string;
    active: StatementDecision; candidate: StatementDecision; kind: 'newly_refused' | 'newly_allowed' | 'rewritten_differently';
    reason?: string;
  }
  | { event: 'admin'; action: string; by: string; target?: string; outcome: 'ok' | 'refused' | 'not_found' }
  | { event: 'password_change'; user: string; via: string }
  | { event: 'password_reset'; user: string; step: string; /** `cli` for `pgveil reset-request`, recorded when the running pgveil picks it up */ via?: string }
  | {
    /**
     * A browser SSO sign-in on the portal: a database password issued, or refused (`reason`). Never the password.
     * `user` is absent when the identity provider's answer never got as far as naming one (a bad state, an error answer).
     */
    event: 'sso_login'; user?: string; org?: string; via: 'oidc' | 'saml'; outcome: 'issued' | 'refused' | 'error';
    reason?: string;
    /** The identity provider's error code or the client library's check that failed (a fixed word, never a claim or token). */ detail?: string;
    /** The browser's address, for sign-in pages that failed before an identity was proven. */ address?: string;
  };

/** Where sessions, the reload path and the admin API send records. Writing never blocks the caller. */
export interface AuditSink {
  /** Queues one record (batched and written off the hot path). */
  record(event: AuditEvent): void;
  /** What to put in statement records: `none` means statement records are not written. */
  readonly statements: 'none' | 'fingerprint' | 'full';
  /** True while `onFailure: block` is set and the audit file cannot be written: new statements are refused. */
  blocked(): boolean;
}

/** The sink when no `audit:` section is configured. */
export const noAudit: AuditSink = { record() {}, statements: 'none', blocked: () => false };
