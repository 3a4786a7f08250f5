// System relations whose rows would reveal something about protected tables
// are replaced like protected tables, with the revealing columns hidden for
// the protected relations only (THREATS B5): pg_class.reltuples, relpages,
// relallvisible and relallfrozen give row counts across all orgs. Tools keep
// working (psql \d, JDBC metadata): every other column passes through.
import type { Catalog, CatalogRelation } from '../catalog/types.js';
import { quoteIdent } from './replacement.js';

/** Column → the value shown instead, for protected relations. */
const hidden: Record<string, Record<string, string>> = {
  pg_class: {
    reltuples: '(-1)::pg_catalog.float4',
    relpages: '0::pg_catalog.int4',
    relallvisible: '0::pg_catalog.int4',
    relallfrozen: '0::pg_catalog.int4',
  },
};

/** The subquery replacing `pg_catalog.<name>`, or undefined when it needs none. */
export function systemGuard(catalog: Catalog, rel: CatalogRelation, protectedOids: readonly number[]): string | undefined {
  const masks = rel.schema === 'pg_catalog' ? hidden[rel.name] : undefined;
  if (!masks || !protectedOids.length) return undefined;
  const columns = catalog.systemColumns?.get(rel.name);
  if (!columns?.length) return undefined;
  const list = `'{${protectedOids.join(',')}}'::pg_catalog.oid[]`;
  const select = columns.map((c) => {
    const replacement = masks[c];
    return replacement ? `CASE WHEN "oid" OPERATOR(pg_catalog.=) ANY (${list}) THEN ${replacement} ELSE ${quoteIdent(c)} END AS ${quoteIdent(c)}` : quoteIdent(c);
  });
  return `(SELECT ${select.join(', ')} FROM pg_catalog.${quoteIdent(rel.name)})`;
}

/** Names of the system relations that have a guard (their columns are read with the catalog). */
export const guardedSystemRelations = Object.keys(hidden);
