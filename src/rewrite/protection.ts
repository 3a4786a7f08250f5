// Which policy entries govern a relation: its own and those of every
// protected ancestor (a partition or inheritance child is governed by its
// root too, threat A4 in docs/threat-model.md). Several entries combine subtractively — all
// filters, the stricter mask per column, denied if any denies — so listing a
// partition separately can only take away (README, Layers and defaults).
import type { Catalog, CatalogRelation } from '../catalog/types.js';
import type { Profile, TableProfile } from '../policy/types.js';
import { canonicalRelation } from '../config/identifiers.js';
import { combineTableProfiles } from '../policy/precedence.js';
import { descendantsOf } from '../catalog/resolve.js';

const combined = new WeakMap<Profile, Map<number, TableProfile | null>>();

export function governingTable(profile: Profile, catalog: Catalog, rel: CatalogRelation): TableProfile | undefined {
  let memo = combined.get(profile);
  if (!memo) combined.set(profile, (memo = new Map()));
  const hit = memo.get(rel.oid);
  if (hit !== undefined) return hit ?? undefined;
  const entries: TableProfile[] = [];
  const own = profile.tables.get(canonicalRelation(rel.schema, rel.name));
  if (own) entries.push(own);
  for (const oid of rel.protectedBy ?? []) {
    const ancestor = catalog.byOid.get(oid);
    const table = ancestor && profile.tables.get(canonicalRelation(ancestor.schema, ancestor.name));
    if (table && !entries.includes(table)) entries.push(table);
  }
  const result = entries.length === 0 ? undefined : entries.length === 1 ? entries[0] : combineTableProfiles(entries[0].relation, entries);
  memo.set(rel.oid, result ?? null);
  return result;
}

/**
 * A relation read with its children whose descendants carry policy entries
 * of their own: the guarded subquery applies only the parent's rules to the
 * children's rows, so it would widen what those entries allow. Such reads
 * are refused (read the parent with ONLY, or the children one by one).
 */
export function hasOwnRulesBelow(profile: Profile, catalog: Catalog, rel: CatalogRelation, descendants: CatalogRelation[]): boolean {
  return descendants.some((d) => profile.tables.has(canonicalRelation(d.schema, d.name)) && d.oid !== rel.oid);
}

/**
 * The rules a read of `rel` must be guarded with for this profile, or
 * undefined when it needs no guard: not governed by the policy, or governed
 * by rules that leave this user every row and every value (access allowed,
 * no ownership filter, no mask; read with its children, none of them with
 * rules of its own). Guards are per profile: another user's read of the
 * same table may still need one.
 */
export function readGuard(profile: Profile, catalog: Catalog, rel: CatalogRelation, inh: boolean): TableProfile | undefined {
  const table = governingTable(profile, catalog, rel);
  if (!table || !table.access || table.filters.length || table.masks.size) return table;
  return inh && hasOwnRulesBelow(profile, catalog, rel, descendantsOf(catalog, rel.oid)) ? table : undefined;
}
