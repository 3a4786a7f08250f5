// The reason label of a refusal, for the `pgveil_refusals_total{reason}`
// metric: a small fixed set, derived from the refusal's SQLSTATE and the
// fixed wording of pgveil's own messages (never the message itself, which
// carries names and would make an unbounded label set).
import type { PgError } from '../errors.js';
import { SqlState } from '../errors.js';

export const refusalReasons = [
  'access_denied', // the policy or a rule denies a relation (permission denied …)
  'write_denied', // INSERT/UPDATE/DELETE/COPY FROM that the policy or the table's code forbids
  'unsafe_function', // a function, operator or cast not allowed through pgveil
  'statement_not_allowed', // a statement class, setting, LISTEN/NOTIFY, EXPLAIN, COPY to a file, fast-path call
  'not_supported', // a construct pgveil cannot rewrite (or verify) safely
  'syntax_error',
  'undefined_object', // a relation or function that does not exist
  'too_complex', // over the analysis budget (length, nodes, depth)
  'stale_object', // a prepared statement or cursor made under an older policy or search_path
  'search_path_changing',
  'not_ready', // no policy or catalog loaded yet
  'user_removed', // the session's user was removed or disabled by a reload
  'audit_blocked', // the audit log cannot be written (onFailure: block)
  'internal',
  'other',
] as const;

export type RefusalReason = (typeof refusalReasons)[number];

const writeVerb = /^(INSERT|UPDATE|DELETE|MERGE|writes to|cannot copy into)\b/;

/** The label for one refusal. */
export function refusalReason(error: PgError): RefusalReason {
  const code = error.code;
  const m = error.message;
  switch (code) {
    case SqlState.SyntaxError: return 'syntax_error';
    case '42P01': case '42883': return 'undefined_object';
    case '26000': case '34000': return 'stale_object';
    case SqlState.CannotConnectNow: return 'not_ready';
    case SqlState.InvalidAuthorizationSpecification: return 'user_removed';
    case SqlState.InternalError: return 'internal';
    case AUDIT_BLOCKED_CODE: return 'audit_blocked';
  }
  if (code.startsWith('54')) return 'too_complex';
  if (code !== SqlState.InsufficientPrivilege) return 'other';
  if (m.includes('search_path is changing') || m.includes('search_path is being changed')) return 'search_path_changing';
  if (writeVerb.test(m) || m.includes('defaults.writes') || (error.hint ?? '').includes('defaults.writes')) return 'write_denied';
  if (m.startsWith('permission denied')) return 'access_denied';
  if (/^(function|operator|a cast to|relation-size functions)\b/.test(m)) return 'unsafe_function';
  if (/^(cannot|pgveil could not)\b/.test(m) || m.includes('not supported')) return 'not_supported';
  if (m.includes('not allowed') || m.includes('only be set') || m.includes('supports only') || m.includes('reserved by pgveil')) return 'statement_not_allowed';
  return 'other';
}

/** SQLSTATE of the refusal while the audit log cannot be written: io_error (the disk may be full, read-only or failing). */
export const AUDIT_BLOCKED_CODE = '58030';
