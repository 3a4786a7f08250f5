// What every client session shares inside one pgveil process.
import type tls from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import type { Config, UsersFile } from '../config/types.js';
import type { LockoutTracker } from '../auth/lockout.js';
import type { Logger } from '../observe/log.js';
import type { ProxyMetrics } from '../observe/metrics.js';
import type { DecisionEngine } from '../engine/engine.js';
import type { ShadowPolicy } from '../engine/shadow.js';
import type { CancelKeys } from './cancel-keys.js';
import type { CodeClaims } from '../auth/used-codes.js';
import type { OidcTokenVerifier } from '../auth/oidc-token.js';
import type { SsoCredentialStore } from '../sso/credential-store.js';
import type { AuditSink } from '../audit/record.js';
import type { LiveSession } from './session-info.js';
import type { UpstreamPool } from '../upstream/pool.js';

export interface ProxyContext {
  readonly config: Config;
  /** The current users file; replaced atomically on reload. */
  users(): UsersFile;
  /** The active policy snapshot, catalog and rewrite cache: where every statement is decided. */
  readonly engine: DecisionEngine;
  /** The candidate policy of `shadow:`, decided beside the active one and never enforced. */
  readonly shadow?: ShadowPolicy;
  readonly lockout: LockoutTracker;
  /** Failed logins per client address (threat E3): a blocked address is refused at accept. */
  readonly addressLockout: LockoutTracker;
  readonly cancelKeys: CancelKeys;
  /** With auth.oidc: checks access tokens sent as the password by people not in users.yaml. */
  readonly oidc?: OidcTokenVerifier;
  /** With `sso`: the passwords the portal issued after browser SSO logins (read from their state file). */
  readonly ssoCredentials?: SsoCredentialStore;
  /** TOTP time steps already accepted per user (held by the primary under `workers: N`). */
  readonly usedCodes: CodeClaims;
  /** Under `workers: N`: hands a CancelRequest for another worker's session to the primary, which routes it. */
  readonly routeCancel?: (processId: number, secretKey: Buffer) => void;
  /** Present unless tls.mode is disable. */
  readonly secureContext?: tls.SecureContext;
  /** DER of pgveil's own certificate, for SCRAM channel binding. */
  readonly serverCertificate?: Buffer;
  /** CAs trusted for client certificates (tls.clientCa). */
  readonly clientCas: X509Certificate[];
  /** The opened upstream password (never logged). */
  upstreamPassword(): string | undefined;
  /** Upstream connections for new sessions: pooled ones (reset and checked) or new logins. */
  readonly upstreamPool: UpstreamPool;
  /** Secret behind the fake verifiers of unknown users. */
  readonly fakeVerifierSecret: Buffer;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics;
  /** Issues session ids (`<workerId>-<counter>`, see session-id.ts). */
  nextSessionId(): string;
  /** The audit log (a no-op sink without an `audit:` section). */
  readonly audit: AuditSink;
  /** Live sessions, for max-clients, ending a disabled user's sessions, the admin API and the drain. */
  readonly sessions: Set<LiveSession>;
}
