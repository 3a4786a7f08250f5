// System relations whose rows would reveal something about protected tables
// are replaced like protected tables, with the revealing columns hidden for
// the protected relations only (threat B5 in docs/threat-model.md): pg_class.reltuples, relpages,
// relallvisible and relallfrozen give row counts across all orgs. Tools keep
// working (psql \d, JDBC metadata): every other column passes through.
import type { Catalog, CatalogRelation } from '../catalog/types.js';
import { guardedSystemRelations, type GuardedSystemRelation } from '../catalog/guards.js';
import { quoteIdent } from './replacement.js';

/** Column → the value shown instead, for protected relations. */
const hidden: Record<GuardedSystemRelation, Record<string, string>> = {
  pg_class: {
    reltuples: '(-1)::pg_catalog.float4',
    relpages: '0::pg_catalog.int4',
    relallvisible: '0::pg_catalog.int4',
    relallfrozen: '0::pg_catalog.int4',
  },
};

/** Every guarded relation has an entry (the type checks it); any other name has none. */
const hiddenByName: Partial<Record<string, Record<string, string>>> = hidden;

/**
 * The subquery replacing a system relation, or undefined when it needs none:
 * statistics columns hidden for protected relations, and rows of relations
 * the user may not see filtered out (`visible`, a condition over the
 * relation's own columns).
 */
export function systemGuard(catalog: Catalog, rel: CatalogRelation, protectedOids: readonly number[], visible?: string, sample?: string): string | undefined {
  const masks = rel.schema === 'pg_catalog' && protectedOids.length ? hiddenByName[rel.name] : undefined;
  const where = visible ? ` WHERE ${visible}` : '';
  // A TABLESAMPLE clause samples the relation itself, before the visibility filter (as Postgres applies WHERE).
  const from = `${quoteIdent(rel.schema)}.${quoteIdent(rel.name)}${sample ? ` ${sample}` : ''}`;
  if (!masks) return visible ? `(SELECT * FROM ${from}${where})` : undefined;
  const columns = catalog.systemColumns.get(rel.name);
  if (!columns?.length) return visible ? `(SELECT * FROM ${from}${where})` : undefined;
  const list = `'{${protectedOids.join(',')}}'::pg_catalog.oid[]`;
  const select = columns.map((c) => {
    const replacement = masks[c];
    return replacement ? `CASE WHEN "oid" OPERATOR(pg_catalog.=) ANY (${list}) THEN ${replacement} ELSE ${quoteIdent(c)} END AS ${quoteIdent(c)}` : quoteIdent(c);
  });
  return `(SELECT ${select.join(', ')} FROM ${from}${where})`;
}

/** Names of the system relations that have a guard (the catalog reads their columns; the list lives there). */
export { guardedSystemRelations };
