// Typed shapes of the YAML files in docs/configuration.md, after validation and path
// resolution (every path here is absolute).
import type { MaskKind } from '../policy/mask-kinds.js';
import type { TotpSecret } from '../auth/totp.js';

export type TlsMode = 'require' | 'prefer' | 'disable';
export type UpstreamTlsMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

export interface ListenConfig { host: string; port: number }

export interface TlsConfig {
  cert?: string;
  key?: string;
  mode: TlsMode;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  clientCa?: string;
}

export interface UpstreamConfig {
  host: string;
  port: number;
  database: string;
  user: string;
  /** Still sealed ("sealed:…") or plain; opened by secrets/ when connecting. */
  password?: string;
  tls: { mode: UpstreamTlsMode; ca?: string };
  connectTimeoutMs: number;
  /** Idle upstream connections kept for the next session (maxIdle 0 = none). */
  pool: { maxIdle: number; idleTimeoutSeconds: number };
  /** pgveil's own prepared statements per upstream connection (upstream statement reuse; 0 = off). */
  statements: { maxPerConnection: number };
}

export interface LockoutConfig { maxFailures: number; windowSeconds: number; lockSeconds: number }
export interface PasswordPolicy { minLength: number; minClasses: number; maxAgeDays: number; history: number }

export interface AuthConfig {
  lockout: LockoutConfig;
  /** Failed logins per client address (threat E3); maxFailures 0 = off. */
  addressLockout: LockoutConfig;
  idleTimeoutSeconds: number;
  /** Deadline for the whole startup (SSL negotiation + StartupMessage). */
  startupTimeoutMs: number;
  /** Deadline for the authentication exchange once started. */
  authTimeoutMs: number;
  passwordPolicy: PasswordPolicy;
  /**
   * Optional SSO: an OIDC access token used as the password (verified by auth/oidc-token.ts).
   * `jwks` is an absolute path (checked to hold a usable JWKS at load) or an https URL.
   * `claims` name the claims for user, org and groups: a top-level name, or a dotted path.
   */
  /** `ca`: absolute path of a PEM bundle trusted for an https jwks URL. */
  oidc?: { issuer: string; audience: string; jwks: string; ca?: string; claims: { user: string; org: string; groups: string } };
}

export interface LimitsConfig {
  /** Largest frontend message accepted, in bytes; a larger Query/Parse/Bind is refused with 54000, any other larger one closes the client with 08P01. */
  maxMessageBytes: number;
  maxClients: number;
}

export interface Config {
  /** Absolute path of the config file itself. */
  file: string;
  listen: ListenConfig;
  tls: TlsConfig;
  upstream: UpstreamConfig;
  secrets: { masterKeyFile?: string };
  users: string;
  policy: string;
  auth: AuthConfig;
  limits: LimitsConfig;
  /** `token` (still sealed or plain) turns on the control API (sessions, unlock). */
  admin?: { host: string; port: number; token?: string };
  /** `maxBytes` in bytes (the YAML may say `64MB`). */
  cache: { maxEntries: number; maxBytes: number };
  workers: number | 'auto';
  /** On SIGTERM/SIGINT: how long running statements may go on before their sessions are ended. */
  shutdownTimeoutSeconds: number;
  /** Mail server for password-reset mails; `password` still sealed or plain, `ca` absolute. */
  smtp?: { host: string; port: number; tls: 'none' | 'starttls' | 'tls'; user?: string; password?: string; from: string; ca?: string };
  /** Self-service password reset: the link is `linkBase` + "/" + token. */
  reset?: { linkBase: string; ttlMinutes: number };
  /** `file` and `syslogCa` absolute; `syslogCa`: PEM CA bundle that verifies a tls:// syslog receiver (default: Node's CA list). */
  audit?: { file: string; retentionDays: number; statements: 'none' | 'fingerprint' | 'full'; onFailure: 'block' | 'continue'; syncMs: number; syslog?: string; syslogCa?: string };
  /** HTTPS pages for people (sign-in page, password reset, SSO sign-in). Paths absolute. `credentialMinutes`: lifetime of an SSO password. */
  portal?: { host: string; port: number; tls: { cert: string; key: string }; publicUrl: string; credentialMinutes: number };
  /** Browser SSO on the portal: a sign-in issues a database password (sso/issue.ts); OIDC sign-in in sso/oidc-login.ts, SAML in sso/saml-login.ts. `clientSecret` still sealed or plain; `ca` and `idpCert` absolute. */
  sso?: { oidc?: SsoOidcConfig; saml?: SsoSamlConfig };
  /** Absolute path of a candidate policy, decided beside the active one, never enforced (engine/shadow.ts). */
  shadow?: string;
}

export interface IdentityFields { user: string; org: string; groups: string }
/** `ca` absolute: the CA bundle trusted for the identity provider's https (default: Node's list). */
export interface SsoOidcConfig { issuer: string; clientId: string; clientSecret: string; claims: IdentityFields; ca?: string }
/** `issuer`: pgveil's entity id (and the audience required); `attributes.user` may be `nameID` (the Subject's NameID). */
export interface SsoSamlConfig { entryPoint: string; issuer: string; idpCert: string; attributes: IdentityFields }

export interface Except { orgs: string[]; groups: string[]; users: string[] }

export interface Organization { attributes: Record<string, unknown> }

export interface User {
  name: string;
  org?: string;
  groups: string[];
  /** SCRAM-SHA-256 verifier in pg_authid format. */
  password?: string;
  passwordChangedAt?: string;
  /** Earlier verifiers, newest first, for the password policy's history rule. */
  passwordHistory: string[];
  attributes: Record<string, unknown>;
  clientCert: 'none' | 'optional' | 'required';
  /** Registered address for password-reset mails (default: the name, when it is an address). */
  email?: string;
  /** The opened RFC 6238 secret: the user logs in with password + code, cleartext over TLS only. */
  totp?: TotpSecret;
  disabled: boolean;
}

export interface UsersFile {
  file: string;
  organizations: Record<string, Organization>;
  users: Map<string, User>;
}

export interface PolicyFile {
  file: string;
  layers: { access: boolean; ownership: boolean; redaction: boolean };
  defaults: { unlistedRelations: 'allow' | 'deny'; writes: 'allow' | 'deny' };
  secrets: { scrambleKey?: string };
  /** User-defined functions/operators users may call: "schema.name" or "schema.*". */
  functions: { allow: string[] };
  /** Notification channels users may LISTEN on (names as PostgreSQL folds them). */
  channels: { listen: string[] };
  /** Keyed by "schema.table" exactly as written (lower-cased unless quoted). */
  tables: Record<string, PolicyTable>;
}

export interface PolicyTable {
  access?: { allow?: Subjects; deny?: Subjects };
  ownership: Array<{ filter: string; except?: Except }>;
  redaction: Record<string, MaskRule>;
}

export interface Subjects { orgs: string[]; groups: string[]; users: string[]; except?: Except }

export interface MaskRule {
  mask: MaskKind;
  except?: Except;
  [option: string]: unknown;
}
