// What an audit record says about a statement besides its decision: the
// relations it touches (from the analysis) and its libpg-query fingerprint.
// Both are worked out once, on the rewrite-cache miss that analyses the
// text, and kept in the cached decision, so a cache hit costs nothing more.
import { fingerprintSync } from 'libpg-query';
import type { Outcome } from '../rewrite/rewrite.js';
import { SqlState } from '../errors.js';

export interface AuditFacts {
  /** Canonical names of the relations the statement uses (up to the refusal, for a refused one). */
  relations?: readonly string[];
  /** libpg-query fingerprint: the same for texts that differ only in constants. */
  fingerprint?: string;
}

/** What audit records need: nothing without an audit log, relations with one, and the fingerprint when records carry it. */
export type AuditFactsWanted = 'none' | 'relations' | 'fingerprint';

const none: AuditFacts = {};

/**
 * The facts of one analysed outcome. The fingerprint parses the text again
 * inside libpg-query: once per cache entry, never per message.
 */
export function auditFactsOf(outcome: Outcome, sql: string, wanted: AuditFactsWanted): AuditFacts {
  if (wanted === 'none') return none;
  // Frozen: shared by every record of the cached statement, which the audit writer serialises once.
  const relations = outcome.relations.length ? Object.freeze([...outcome.relations]) : undefined;
  // A text that does not parse, or is over the analysis budget, is not parsed a second time.
  if (wanted !== 'fingerprint' || (outcome.kind === 'refuse' && (outcome.error.code === SqlState.SyntaxError || outcome.error.code.startsWith('54')))) return { relations };
  let fingerprint: string | undefined;
  try {
    fingerprint = fingerprintSync(sql);
  } catch {
    fingerprint = undefined;
  }
  return { relations, fingerprint };
}

let warmed = false;

/**
 * libpg-query compiles its fingerprint code on the first call (~80 ms here):
 * made at start, not inside the first statement a client waits for.
 */
export function warmFingerprint(): void {
  if (warmed) return;
  warmed = true;
  try {
    fingerprintSync('SELECT 1');
  } catch {
    // The first real statement reports its own failure.
  }
}
