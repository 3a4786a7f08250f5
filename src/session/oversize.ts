// Statements too long to read: a Query, Parse or Bind over
// limits.maxMessageBytes, or a Query or Parse surely over the statement
// length budget, is handed out by the frame reader without its body (which
// is dropped as it arrives, never held) and refused with 54000 in order; the
// session goes on.
import { PgError, SqlState } from '../errors.js';
import { Frontend } from '../protocol/codes.js';
import { MAX_STATEMENT_CHARS } from '../rewrite/budget.js';

/**
 * Longest Query and Parse that can hold a statement within the length
 * budget: a UTF-8 character takes at most 4 bytes; a Parse adds a name of at
 * most 64 bytes and up to 65,535 parameter type OIDs. Longer ones are surely
 * over it, so they are refused unread, whatever limits.maxMessageBytes allows.
 */
const QUERY_OVER_BUDGET = 4 + 4 * MAX_STATEMENT_CHARS + 1;
const PARSE_OVER_BUDGET = 4 + 64 + 4 * MAX_STATEMENT_CHARS + 1 + 2 + 4 * 65_535;

/** A Query, Parse or Bind handed out bodiless (its bytes are dropped as they arrive, never kept). */
export function messageTooLong(bytes: number, limit: number, type: number): PgError {
  const hint = 'Send a shorter statement (move long value lists into a table, e.g. with COPY)';
  if (bytes > limit) return new PgError(SqlState.ProgramLimitExceeded, `message of ${bytes} bytes exceeds limits.maxMessageBytes (${limit} bytes)`, { hint: `${hint}, or raise limits.maxMessageBytes.` });
  const kind = type === Frontend.Parse ? 'Parse' : 'Query';
  return new PgError(SqlState.ProgramLimitExceeded, `statement of a ${bytes}-byte ${kind} has more than ${MAX_STATEMENT_CHARS} characters; pgveil analyses at most ${MAX_STATEMENT_CHARS}`, { hint: `${hint}.` });
}

/** The per-type limits for FrameReader.refusableTypes(). */
export function refusableLimits(maxMessageBytes: number): Array<[type: number, maxLength: number]> {
  return [[Frontend.Query, QUERY_OVER_BUDGET], [Frontend.Parse, PARSE_OVER_BUDGET], [Frontend.Bind, maxMessageBytes]];
}
