// The guarded subquery that stands in for a protected relation:
//   (SELECT "a", <mask of b> AS "b", … FROM [ONLY] "s"."t" WHERE (f1) AND (f2) OFFSET 0)
// Columns keep the table's order, names and types, so `SELECT *`, whole-row
// references and typed clients see the table's shape with masked values.
// OFFSET 0 keeps the planner from pushing the user's predicates below the
// ownership filter, where a non-leakproof function could see other rows
// (THREATS B10).
import type { CatalogRelation } from '../catalog/types.js';
import type { Profile, TableProfile } from '../policy/types.js';
import { maskExpression } from '../policy/masks.js';
import { PgError, SqlState } from '../errors.js';
import { quoteIdent } from './analyze.js';

const cache = new WeakMap<Profile, Map<string, string>>();

export function guardedSubquery(profile: Profile, rel: CatalogRelation, table: TableProfile, inh: boolean): string {
  let perProfile = cache.get(profile);
  if (!perProfile) cache.set(profile, (perProfile = new Map()));
  const key = `${rel.oid}:${inh ? 1 : 0}`;
  let text = perProfile.get(key);
  if (text === undefined) {
    text = build(rel, table, inh);
    perProfile.set(key, text);
  }
  return text;
}

function build(rel: CatalogRelation, table: TableProfile, inh: boolean): string {
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
  const where = table.filters.length ? ` WHERE ${table.filters.map((f) => `(${f})`).join(' AND ')}` : '';
  const from = `${inh ? '' : 'ONLY '}${quoteIdent(rel.schema)}.${quoteIdent(rel.name)}`;
  return `(SELECT ${columns.join(', ')} FROM ${from}${where} OFFSET 0)`;
}
