// What `pgveil check --live` reports: one finding per thing a DBA must fix,
// each saying what is wrong, why it matters to pgveil, and the SQL (or the
// step) that fixes it. A finding's `check` is a stable id to grep for and to
// document (docs/operations/live-check.md lists every one).

/**
 * `policy`: the policy file does not fit the upstream schema; serve refuses
 * it, so `check` exits 2 as for any configuration error. `upstream`: the
 * upstream is weaker than pgveil needs; fixed there, `check` exits 1.
 */
export type FindingKind = 'policy' | 'upstream';

export interface Finding {
  check: string;
  kind: FindingKind;
  /** What is wrong, naming the objects. */
  subject: string;
  why: string;
  /** Statements that fix it, run as a superuser on the upstream database; `<owner>` is a placeholder the DBA fills in. */
  sql: string[];
  /** The fix in words, when SQL alone does not say it (or besides the SQL). */
  fix?: string;
}

/** What the check ran against, for the summary line. */
export interface UpstreamFacts {
  /** server_version, e.g. "18.4". */
  version: string;
  versionNum: number;
  /** The service role, as the upstream names it. */
  role: string;
  database: string;
}

export interface LiveReport {
  upstream: UpstreamFacts;
  /** Relations the policy governs (its tables and their partitions), for the summary. */
  governed: number;
  findings: Finding[];
}

/** 0 clean, 1 something to fix upstream, 2 the policy does not fit the upstream (serve would refuse it). */
export function exitCodeOf(findings: readonly Finding[]): number {
  if (findings.some((f) => f.kind === 'policy')) return 2;
  return findings.length ? 1 : 0;
}
