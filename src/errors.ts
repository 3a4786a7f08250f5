// The one error type a client can see. Everything that ends up in an
// ErrorResponse is built from this; internal errors are mapped to XX000
// without their message so no SQL, secret or stack trace leaks.

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE';

export interface PgErrorFields {
  detail?: string;
  hint?: string;
  /** 1-based character position in the client's statement text. */
  position?: number;
  severity?: Severity;
}

export class PgError extends Error {
  readonly code: string;
  readonly severity: Severity;
  readonly detail?: string;
  readonly hint?: string;
  readonly position?: number;

  constructor(code: string, message: string, fields: PgErrorFields = {}) {
    super(message);
    this.name = 'PgError';
    this.code = code;
    this.severity = fields.severity ?? 'ERROR';
    this.detail = fields.detail;
    this.hint = fields.hint;
    this.position = fields.position;
  }

  /** The same error as FATAL: the connection is closed after it is sent. */
  fatal(): PgError {
    return new PgError(this.code, this.message, { ...this, severity: 'FATAL' });
  }
}

/** SQLSTATE codes pgveil emits, named after the PostgreSQL appendix. */
export const SqlState = {
  SyntaxError: '42601',
  InsufficientPrivilege: '42501',
  ReservedName: '42939',
  InvalidSqlStatementName: '26000',
  InvalidPassword: '28P01',
  InvalidAuthorizationSpecification: '28000',
  ProtocolViolation: '08P01',
  ConnectionFailure: '08006',
  CannotConnectNow: '57P03',
  AdminShutdown: '57P01',
  IdleSessionTimeout: '57P05',
  QueryCanceled: '57014',
  FeatureNotSupported: '0A000',
  ProgramLimitExceeded: '54000',
  TooManyConnections: '53300',
  InternalError: 'XX000',
} as const;

/** Wraps anything thrown into a client-safe error: PgErrors pass, the rest become a bare XX000. */
export function toClientError(err: unknown): PgError {
  if (err instanceof PgError) return err;
  return new PgError(SqlState.InternalError, 'internal error in pgveil', {
    hint: 'The pgveil log has the details.',
  });
}
