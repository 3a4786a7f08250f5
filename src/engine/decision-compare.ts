// Comparing how two policies decide the same statement for the same user:
// the shadow policy in serve and `pgveil policy replay` both use it, so the
// two report the same kinds of difference in the same words. What changed is
// described from the user's two profiles (access, filters, masks of the
// relations the statement touches), never from the rewritten SQL.
import type { AuditEvent, StatementDecision } from '../audit/record.js';
import { SqlState, type PgError } from '../errors.js';
import { describeMask } from '../policy/mask-kinds.js';
import type { Profile, TableProfile } from '../policy/types.js';

/** What both a cached Decision and an uncached Outcome carry. */
export type Decided = { kind: 'forward' } | { kind: 'rewrite'; sql: string } | { kind: 'refuse'; error: PgError };

export type DifferenceKind = Extract<AuditEvent, { event: 'shadow_difference' }>['kind'];

/** The audit log's name for a decision. */
export function decisionLabel(d: Decided): StatementDecision {
  if (d.kind === 'forward') return 'forwarded';
  if (d.kind === 'rewrite') return 'rewritten';
  return d.error.code === SqlState.SyntaxError ? 'syntax_error' : 'refused';
}

/**
 * How the candidate's decision differs from the active one's, or undefined
 * when the client would see the same thing: both refuse (whatever the
 * reason), both forward, or both send the same rewrite.
 */
export function differenceOf(active: Decided, candidate: Decided): DifferenceKind | undefined {
  if (active.kind === 'refuse') return candidate.kind === 'refuse' ? undefined : 'newly_allowed';
  if (candidate.kind === 'refuse') return 'newly_refused';
  const activeSql = active.kind === 'rewrite' ? active.sql : undefined;
  const candidateSql = candidate.kind === 'rewrite' ? candidate.sql : undefined;
  return activeSql === candidateSql ? undefined : 'rewritten_differently';
}

/** `42501 permission denied for table x`: a refusal as the client saw it. */
export function refusalText(error: PgError): string {
  return `${error.code} ${error.message}`;
}

export interface ChangeOptions {
  /** Show the bound filter predicates (an operator's terminal) or only that they changed (the audit log). */
  filterText: boolean;
}

/**
 * The rules of `relations` that differ between a user's active and candidate
 * profiles, one line each (`crm.employees.ssn: mask partial (keepLast=4) → full`),
 * plus the policy-wide defaults when they differ.
 */
export function ruleChanges(active: Profile, candidate: Profile, relations: readonly string[], opts: ChangeOptions): string[] {
  const out: string[] = [];
  if (active.unlistedRelations !== candidate.unlistedRelations) out.push(`defaults.unlistedRelations: ${active.unlistedRelations} → ${candidate.unlistedRelations}`);
  if (active.writes !== candidate.writes) out.push(`defaults.writes: ${active.writes} → ${candidate.writes}`);
  for (const relation of new Set(relations)) {
    const a = active.tables.get(relation);
    const c = candidate.tables.get(relation);
    if (!a && !c) continue;
    if (!a) out.push(`${relation}: now listed in the policy`);
    else if (!c) out.push(`${relation}: no longer listed in the policy`);
    out.push(...tableChanges(relation, a ?? unlisted(relation), c ?? unlisted(relation), opts));
  }
  return out;
}

function tableChanges(relation: string, a: TableProfile, c: TableProfile, opts: ChangeOptions): string[] {
  const out: string[] = [];
  if (a.access !== c.access) out.push(`${relation}: access ${a.access ? 'allowed → denied' : 'denied → allowed'}`);
  if (a.filters.join('\n') !== c.filters.join('\n')) {
    out.push(opts.filterText
      ? `${relation}: ownership filters ${filterList(a.filters)} → ${filterList(c.filters)}`
      : `${relation}: ownership filters changed (${a.filters.length} → ${c.filters.length})`);
  }
  for (const column of new Set([...a.masks.keys(), ...c.masks.keys()])) {
    const before = a.masks.get(column);
    const after = c.masks.get(column);
    const shownBefore = before ? describeMask(before) : 'none';
    const shownAfter = after ? describeMask(after) : 'none';
    if (shownBefore !== shownAfter) out.push(`${relation}.${column}: mask ${shownBefore} → ${shownAfter}`);
  }
  return out;
}

function filterList(filters: readonly string[]): string {
  return filters.length ? filters.join(' AND ') : '(all rows)';
}

/** A relation the policy does not list: usable (unless unlistedRelations denies it), all rows, no masks. */
function unlisted(relation: string): TableProfile {
  return { relation, access: true, filters: [], masks: new Map() };
}
