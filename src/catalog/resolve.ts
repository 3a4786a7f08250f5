// Name resolution against the catalog, exactly as PostgreSQL resolves a
// RangeVar (namespace.c: RangeVarGetRelid / recomputeNamespacePath), so the
// rewriter protects the relation the server will actually read.
//
// pg_temp is never searched: pgveil refuses every statement that could create
// a temporary object, and the service role should have no TEMP privilege
// (threat C5 in docs/threat-model.md), so the session's temp schema holds nothing to find. Other
// sessions' pg_temp_N schemas are not in the catalog either.
import { canonicalRelation } from '../config/identifiers.js';
import { walk } from './inheritance.js';
import type { Catalog, CatalogRelation } from './types.js';

export { parseSearchPath } from './search-path.js';

/**
 * The schemas an unqualified name is looked up in, in order: `$user` becomes the service role's name,
 * `pg_temp` is dropped, schemas that do not exist or lack USAGE are skipped, duplicates keep their first
 * position, and pg_catalog goes first unless the path names it (then it stays where it is).
 */
export function effectiveSearchPath(catalog: Catalog, searchPath: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of searchPath) {
    const schema = entry === '$user' ? catalog.serviceRole : entry;
    if (entry === 'pg_temp' || !catalog.schemas.has(schema) || out.includes(schema)) continue;
    out.push(schema);
  }
  if (!out.includes('pg_catalog')) out.unshift('pg_catalog');
  return out;
}

/**
 * The relation `schema.name` (or bare `name`) denotes under `searchPath` (parseSearchPath() output), or
 * undefined when the server would find none. Names are the parser's (already folded, exact case).
 * A qualified `pg_temp.x` is undefined: there are no temp objects behind pgveil.
 */
export function resolveRelation(
  catalog: Catalog,
  schema: string | undefined,
  name: string,
  searchPath: readonly string[],
): CatalogRelation | undefined {
  const bySchema = catalog.byName.get(name);
  if (!bySchema) return undefined;
  if (schema !== undefined) return bySchema.get(schema);
  for (const s of effectiveSearchPath(catalog, searchPath)) {
    const rel = bySchema.get(s);
    if (rel) return rel;
  }
  return undefined;
}

/** The top-most ancestor of `rel` (rel itself when it has no parent, or when the root is not in the catalog). */
export function rootOf(catalog: Catalog, rel: CatalogRelation): CatalogRelation {
  return catalog.byOid.get(rel.rootOid) ?? rel;
}

/** Every partition / inheritance child below `oid`, at any depth, breadth-first; only those in the catalog. */
export function descendantsOf(catalog: Catalog, oid: number): CatalogRelation[] {
  const out: CatalogRelation[] = [];
  for (const child of walk(catalog.children, oid)) {
    const rel = catalog.byOid.get(child);
    if (rel) out.push(rel);
  }
  return out;
}

/** The key of a function in `readers` and `leakproofFunctions`. */
export function functionKey(schema: string, name: string): string {
  return canonicalRelation(schema, name);
}

/**
 * Schemas, in search order, holding a function of this name that a call `schema.name(...)` or `name(...)`
 * could resolve to. Overloads are chosen by argument types across the whole path, so every schema listed
 * is a candidate, not only the first. Empty when there is no such function.
 */
export function functionCandidates(
  catalog: Catalog,
  schema: string | undefined,
  name: string,
  searchPath: readonly string[],
): string[] {
  const holders = catalog.functionSchemas.get(name);
  if (!holders) return [];
  if (schema !== undefined) return holders.has(schema) ? [schema] : [];
  return effectiveSearchPath(catalog, searchPath).filter((s) => holders.has(s));
}
