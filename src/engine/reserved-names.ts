// Prepared statement names pgveil keeps for itself upstream (upstream
// statement reuse: session/statement-reuse.ts). A client statement of the
// same name would collide with pgveil's, or close or describe one of them,
// so a client may not create, run, describe or close one.
import { PgError, SqlState } from '../errors.js';

export const RESERVED_STATEMENT_PREFIX = 'pgveil:';

/** The refusal for a client's prepared statement named `name`, or undefined when the name is the client's to use. */
export function reservedStatementName(name: string | null | undefined): PgError | undefined {
  if (!name || !name.startsWith(RESERVED_STATEMENT_PREFIX)) return undefined;
  return new PgError(SqlState.ReservedName, `prepared statement names beginning with "${RESERVED_STATEMENT_PREFIX}" are reserved for pgveil`, {
    hint: 'Choose another name for the statement.',
  });
}
