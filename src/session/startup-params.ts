// Which StartupMessage parameters a client may pass through pgveil. An
// allowlist, because any parameter is a GUC setting upstream and several
// (search_path, role, session_authorization, options) would change what the
// shared service role resolves or who it is (threats A2, C1 in docs/threat-model.md).
import { PgError, SqlState } from '../errors.js';
import { isUtf8 } from '../rewrite/functions.js';

/** Settings that only change presentation or timeouts, never name resolution or identity. */
const passThrough = new Set([
  'application_name', 'client_encoding', 'datestyle', 'timezone', 'extra_float_digits', 'intervalstyle',
  'statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout', 'bytea_output',
  'lc_monetary', 'lc_numeric', 'lc_time', 'geqo', 'jit',
  'default_transaction_read_only', 'default_transaction_isolation', 'client_min_messages',
]);

export interface StartupRequest {
  user: string;
  database: string;
  clientApplication: string;
  /** Parameters to send upstream (application_name excluded; pgveil sets its own). */
  upstreamParams: Record<string, string>;
  /** `_pq_.` protocol options the client asked for; pgveil supports none. */
  protocolOptions: string[];
}

function refuse(message: string, code: string = SqlState.InsufficientPrivilege): PgError {
  return new PgError(code, message, { severity: 'FATAL', hint: 'pgveil only passes startup parameters that cannot change security-relevant settings.' });
}

export function checkStartupParams(params: Map<string, string>): StartupRequest {
  const user = params.get('user');
  if (!user) throw new PgError(SqlState.InvalidAuthorizationSpecification, 'no PostgreSQL user name specified in startup packet', { severity: 'FATAL' });
  const upstreamParams: Record<string, string> = {};
  const protocolOptions: string[] = [];
  for (const [name, value] of params) {
    const lower = name.toLowerCase();
    if (lower === 'user' || lower === 'database' || lower === 'application_name') continue;
    if (lower.startsWith('_pq_.')) { protocolOptions.push(name); continue; }
    if (lower === 'replication') {
      if (/^(false|off|no|0)$/i.test(value)) continue;
      throw refuse('replication connections are not allowed through pgveil');
    }
    if (lower === 'options') {
      if (value.trim() === '') continue;
      throw refuse('startup "options" are not allowed through pgveil');
    }
    if (lower === 'standard_conforming_strings' && /^(on|true|yes|1)$/i.test(value)) continue;
    if (lower === 'client_encoding' && !isUtf8(value)) {
      throw refuse(`client_encoding "${value}" is not supported by pgveil: use UTF8`, SqlState.FeatureNotSupported);
    }
    if (!passThrough.has(lower)) throw refuse(`startup parameter "${name}" is not allowed through pgveil`);
    upstreamParams[name] = value;
  }
  return {
    user,
    database: params.get('database') || user,
    clientApplication: params.get('application_name') ?? '',
    upstreamParams,
    protocolOptions,
  };
}

/**
 * Settings pgveil always sends upstream. pgveil parses statements with the
 * grammar's defaults; with standard_conforming_strings off, upstream would
 * read backslashes in '…' as escapes and see different statements than the
 * ones pgveil checked (a string literal could hide a subquery).
 */
export const forcedUpstreamParams: Readonly<Record<string, string>> = { standard_conforming_strings: 'on', client_encoding: 'UTF8' };


/** `pgveil:<user>:<client app>`, cut to Postgres' 63-byte identifier limit. */
export function upstreamApplicationName(user: string, clientApplication: string): string {
  const full = `pgveil:${user}:${clientApplication}`;
  const bytes = Buffer.from(full);
  if (bytes.length <= 63) return full;
  return bytes.subarray(0, 63).toString('utf8').replace(/\uFFFD$/, '');
}
