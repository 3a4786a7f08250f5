// Which policy entry governs a relation: its own, or for a partition or an
// inheritance child its root's (THREATS A4).
import type { Catalog, CatalogRelation } from '../catalog/types.js';
import type { Profile, TableProfile } from '../policy/types.js';
import { canonicalRelation } from '../config/identifiers.js';

export function governingTable(profile: Profile, catalog: Catalog, rel: CatalogRelation): TableProfile | undefined {
  const own = profile.tables.get(canonicalRelation(rel.schema, rel.name));
  if (own || rel.rootOid === rel.oid) return own;
  const root = catalog.byOid.get(rel.rootOid);
  return root ? profile.tables.get(canonicalRelation(root.schema, root.name)) : undefined;
}
