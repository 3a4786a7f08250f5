// A refused statement is answered in order. When nothing is in flight and
// no transaction is open, pgveil answers itself; otherwise a sentinel
// statement that upstream is sure to reject takes the refused one's place,
// so the error arrives in order and an open transaction is aborted exactly
// as Postgres would abort it, and upstream's error for the sentinel is
// replaced with pgveil's on the way back. Upstream's own errors pass, but
// for integrity violations, which print raw values masks hide (B9).
import { randomBytes } from 'node:crypto';
import { PgError } from '../errors.js';
import { writeParseText, writeQuery } from '../protocol/frontend-messages.js';
import type net from 'node:net';
import { readyForQuery, writeErrorResponse } from '../protocol/backend-messages.js';
import { TxStatus } from '../protocol/codes.js';
import type { AuditFacts } from '../engine/audit-facts.js';
import type { ProxyContext } from './context.js';
import type { StatementLog } from './statement-log.js';

/** A statement upstream is sure to reject at parse time; stands in for a refused one. */
const sentinelNonce = randomBytes(8).toString('hex');
const sentinelText = `pgveil_refused_${sentinelNonce}`;
const sentinelParse = writeParseText('', sentinelText);

export class Refusals {
  /** Errors that replace upstream's answers to sentinel statements, in order. */
  private readonly replacements: PgError[] = [];

  constructor(private readonly ctx: ProxyContext, private readonly user: string, private readonly statements: StatementLog) {}

  /**
   * Logs and records a refusal and answers it: `direct`, now on the client's
   * socket (a Query's error with its ReadyForQuery; an extended message's
   * error, its ReadyForQuery coming at the client's Sync); else returns the
   * sentinel to forward in its place.
   */
  refuse(
    error: PgError, started: number, facts: AuditFacts | undefined, text: string | undefined, extended: boolean, direct: boolean, client: net.Socket,
  ): Buffer | undefined {
    this.record(error, started, facts, text, extended, direct);
    if (!direct) return this.sentinel(error, extended);
    client.write(extended ? writeErrorResponse(error) : Buffer.concat([writeErrorResponse(error), readyForQuery[TxStatus.Idle]]));
    return undefined;
  }

  /** Logs and records a refusal; `direct`: pgveil answers it now, else a sentinel carries it. */
  private record(error: PgError, started: number, facts: AuditFacts | undefined, text: string | undefined, extended: boolean, direct: boolean): void {
    this.ctx.logger.info('statement refused', { user: this.user, code: error.code, reason: error.message });
    this.statements.refused(started, error, facts, text, extended, direct);
  }

  /** The sentinel to forward in place of a refused simple Query (`extended`: of a refused extended-protocol message, as a Parse). */
  private sentinel(error: PgError, extended: boolean): Buffer {
    this.replacements.push(error);
    return extended ? sentinelParse : writeQuery(sentinelText);
  }

  /** What the client gets for upstream's ErrorResponse (its fields read): pgveil's error for a sentinel, a redacted integrity violation, or undefined to pass it. */
  answerFor(fields: Map<string, string>): Buffer | undefined {
    const replacement = this.replacements.length > 0 && fields.get('M')?.includes(sentinelNonce) ? this.replacements.shift() : undefined;
    if (replacement) return writeErrorResponse(replacement);
    // Integrity violations print raw values ("Failing row contains (…)",
    // "Key (ssn)=(…) already exists") that masks hide from the user (B9).
    const code = fields.get('C') ?? '';
    if (code.startsWith('23') && fields.has('D')) {
      return writeErrorResponse(new PgError(code, fields.get('M') ?? 'integrity constraint violation', {
        severity: (fields.get('S') as PgError['severity']) ?? 'ERROR', hint: fields.get('H'),
      }));
    }
    return undefined;
  }
}
