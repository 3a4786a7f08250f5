// The catalog a user browses matches what they may query:
// relations the access layer denies them — and in allowlist mode every
// unlisted user relation — are hidden from the catalog relations tools list
// tables from (pg_class, pg_attribute, pg_tables, information_schema.tables,
// …), by the same subquery mechanism that guards protected tables.
import type { Catalog } from '../catalog/types.js';
import type { Profile } from '../policy/types.js';
import { governingTable } from './protection.js';
import { sqlLiteral } from '../policy/literals.js';

const systemSchemas = new Set(['pg_catalog', 'information_schema', 'pg_toast']);
const queryable = new Set(['table', 'partitioned', 'view', 'matview', 'foreign']);

export interface Hidden {
  /** Oids of the relations the user may not see; empty = nothing hidden. */
  oids: number[];
  /** The same as (schema, name) pairs, for views that list names. */
  names: Array<[string, string]>;
}

const memo = new WeakMap<Profile, WeakMap<Catalog, Hidden>>();

export function hiddenRelations(profile: Profile, catalog: Catalog): Hidden {
  let perProfile = memo.get(profile);
  if (!perProfile) memo.set(profile, (perProfile = new WeakMap()));
  const hit = perProfile.get(catalog);
  if (hit) return hit;
  const result: Hidden = { oids: [], names: [] };
  for (const rel of catalog.byOid.values()) {
    if (systemSchemas.has(rel.schema) || rel.schema === 'pgveil') continue;
    // Only what can be queried is hidden; indexes, sequences and the like follow their table.
    if (!queryable.has(rel.kind)) continue;
    const table = governingTable(profile, catalog, rel);
    const denied = table ? !table.access : profile.unlistedRelations === 'deny';
    if (denied) {
      result.oids.push(rel.oid);
      result.names.push([rel.schema, rel.name]);
    }
  }
  perProfile.set(catalog, result);
  return result;
}

/**
 * The WHERE condition (over the relation's own columns) that hides the
 * hidden relations from one catalog relation, or undefined when it lists
 * no relations.
 */
export function visibilityCondition(schema: string, name: string, hidden: Hidden): string | undefined {
  if (!hidden.oids.length) return undefined;
  const oids = `'{${hidden.oids.join(',')}}'::pg_catalog.oid[]`;
  const pairs = `(VALUES ${hidden.names.map(([s, n]) => `(${sqlLiteral(s)}, ${sqlLiteral(n)})`).join(', ')})`;
  const byName = (schemaCol: string, nameCol: string) =>
    `NOT ((${schemaCol}::pg_catalog.text, ${nameCol}::pg_catalog.text) IN ${pairs})`;
  if (schema === 'pg_catalog') {
    switch (name) {
      case 'pg_class': return `NOT ("oid" OPERATOR(pg_catalog.=) ANY (${oids}))`;
      case 'pg_attribute': return `NOT ("attrelid" OPERATOR(pg_catalog.=) ANY (${oids}))`;
      case 'pg_index': return `NOT ("indrelid" OPERATOR(pg_catalog.=) ANY (${oids}))`;
      case 'pg_constraint': return `NOT ("conrelid" OPERATOR(pg_catalog.=) ANY (${oids}))`;
      case 'pg_tables': return byName('"schemaname"', '"tablename"');
      case 'pg_views': return byName('"schemaname"', '"viewname"');
      case 'pg_matviews': return byName('"schemaname"', '"matviewname"');
      case 'pg_indexes': return byName('"schemaname"', '"tablename"');
    }
  }
  if (schema === 'information_schema' && ['tables', 'columns', 'views', 'table_constraints', 'key_column_usage', 'table_privileges', 'column_privileges'].includes(name)) {
    return byName('"table_schema"', '"table_name"');
  }
  return undefined;
}
