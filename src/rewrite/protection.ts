// Which policy entry governs a relation: its own, or for a partition or an
// inheritance child its root's (THREATS A4).
import type { Catalog, CatalogRelation } from '../catalog/types.js';
import type { Profile, TableProfile } from '../policy/types.js';
import { canonicalRelation } from '../config/identifiers.js';

export function governingTable(profile: Profile, catalog: Catalog, rel: CatalogRelation): TableProfile | undefined {
  const own = profile.tables.get(canonicalRelation(rel.schema, rel.name));
  if (own) return own;
  // protectedBy lists every protected ancestor, nearest first — not only the
  // root: a protected partition may sit under an unprotected parent.
  for (const oid of rel.protectedBy ?? []) {
    const ancestor = catalog.byOid.get(oid);
    const table = ancestor && profile.tables.get(canonicalRelation(ancestor.schema, ancestor.name));
    if (table) return table;
  }
  return undefined;
}
