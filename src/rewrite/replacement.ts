// The guarded subquery that stands in for a protected relation:
//   (SELECT "a", <mask of b> AS "b", … FROM [ONLY] "s"."t" [AS alias]
//      WHERE (f1) AND (f2) [AND (pushed predicate)…] OFFSET 0)
// Columns keep the table's order, names and types, so `SELECT *`, whole-row
// references and typed clients see the table's shape with masked values.
// OFFSET 0 keeps the planner from pushing the user's predicates below the
// ownership filter, where a non-leakproof function could see other rows
// (threat B10 in docs/threat-model.md); leakproof predicates on unmasked columns are moved inside
// by the analyzer so indexes still serve them, and a SELECT whose every
// condition is leakproof goes without the fence (fence.ts).
import type { CatalogRelation } from '../catalog/types.js';
import type { Profile, TableProfile } from '../policy/types.js';
import { maskExpression } from '../policy/masks.js';
import { quoteIdent } from '../policy/literals.js';
import { PgError, SqlState } from '../errors.js';
import { parseSync } from 'libpg-query';
import { containsNode } from './tree.js';

export interface GuardedParts {
  /** `(SELECT … FROM [ONLY] "s"."t"` */
  head: string;
  /** The ownership filters, each parenthesised; empty = all rows. */
  filters: string[];
  /** A filter holds a subquery: PostgreSQL could turn it into a join that runs after the user's conditions, so the fence always stays (fence.ts). */
  filtersHaveSubqueries: boolean;
}

const cache = new WeakMap<Profile, Map<string, GuardedParts>>();

export function guardedParts(profile: Profile, rel: CatalogRelation, table: TableProfile, inh: boolean): GuardedParts {
  let perProfile = cache.get(profile);
  if (!perProfile) cache.set(profile, (perProfile = new Map()));
  const key = `${rel.oid}:${inh ? 1 : 0}`;
  let parts = perProfile.get(key);
  if (parts === undefined) {
    parts = build(rel, table, inh);
    perProfile.set(key, parts);
  }
  return parts;
}

/** The subquery text; `innerAlias` names the table inside when pushed predicates are qualified with it; `fenced` false only when fence.ts says so. */
export function composeGuarded(parts: GuardedParts, innerAlias: string | undefined, pushed: string[], fenced = true): string {
  const conditions = pushed.length ? [...parts.filters, ...pushed.map((p) => `(${p})`)] : parts.filters;
  const where = conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
  return `${parts.head}${innerAlias ? ` AS ${quoteIdent(innerAlias)}` : ''}${where}${fenced ? FENCE : ')'}`;
}

/** What keeps the planner from flattening the guarded subquery (and closes it). */
export const FENCE = ' OFFSET 0)';

function build(rel: CatalogRelation, table: TableProfile, inh: boolean): GuardedParts {
  if (!rel.columns?.length) {
    throw new PgError(SqlState.InsufficientPrivilege, `permission denied for table ${rel.name}`, {
      hint: 'pgveil has no column list for this protected relation; reload the policy so the catalog is read again.',
    });
  }
  const columns = rel.columns.map((column) => {
    const ref = quoteIdent(column.name);
    const mask = table.masks.get(column.name);
    return mask ? `${maskExpression(mask, column, ref)} AS ${ref}` : ref;
  });
  const from = `${inh ? '' : 'ONLY '}${quoteIdent(rel.schema)}.${quoteIdent(rel.name)}`;
  const filters = table.filters.map((f) => `(${f})`);
  return { head: `(SELECT ${columns.join(', ')} FROM ${from}`, filters, filtersHaveSubqueries: filters.length > 0 && holdsSubquery(filters) };
}

/** Parsed once per profile and relation (the parts are cached); a filter that does not parse counts as holding one. */
function holdsSubquery(filters: string[]): boolean {
  try {
    return containsNode(parseSync(`SELECT 1 WHERE ${filters.join(' AND ')}`), 'SubLink');
  } catch {
    return true;
  }
}

// One function quotes every identifier pgveil emits (threat C2).
export { quoteIdent };
