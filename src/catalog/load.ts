// Reads the upstream schema through the service role's connection, in one
// round trip (see load-sql.ts), at start and on every policy reload. Every
// catalog it reads (pg_class, pg_proc, pg_depend, …) is readable by any role,
// so the service role need not be a superuser. This is the one place the
// catalog is read: the guard facts (guards.ts) are read here too.
import type pg from 'pg';
import { canonicalRelation, canonicalTableKey, parseQualifiedName } from '../config/identifiers.js';
import { assembleCatalog, type CatalogRows } from './assemble.js';
import { CatalogResult, catalogSql } from './load-sql.js';
import type { Catalog, UnguardedCatalog } from './types.js';
import { loadGuards } from './guards.js';
import { loadSystemViews } from './system-views.js';
import { checkServerVersion } from './upstream-version.js';
import { loadGrammar, majorOf } from '../rewrite/grammar-drift.js';

export interface LoadCatalogOptions {
  /** Canonical "schema.table" keys, as canonicalRelation() produces them. */
  protectedRelations: string[];
  /** The role pgveil connects as: USAGE is checked for it, and `$user` in search_path means it. */
  serviceRole: string;
}

/**
 * Loads the catalog. Run it outside a transaction block (load-sql.ts sets search_path for its own).
 * Throws UnsupportedUpstreamError, before reading anything else, when the upstream is older than 14.
 */
export async function loadCatalog(client: pg.ClientBase, opts: LoadCatalogOptions): Promise<Catalog> {
  const version = await client.query<{ num: string; version: string }>(
    `SELECT pg_catalog.current_setting('server_version_num') AS num, pg_catalog.current_setting('server_version') AS version`);
  const serverVersionNum = Number(version.rows[0]?.num);
  checkServerVersion(serverVersionNum, version.rows[0]?.version);
  // The upstream's own grammar, for the A11 check on every rewrite-cache miss.
  await loadGrammar(majorOf(serverVersionNum));
  const names: Array<[string, string]> = [];
  for (const key of opts.protectedRelations) {
    const canonical = canonicalTableKey(key);
    if (canonical === undefined) throw new Error(`loadCatalog: not a schema-qualified relation: ${JSON.stringify(key)}`);
    const [schema, table] = parseQualifiedName(canonical)!;
    names.push([schema, table]);
  }
  const result: unknown = await client.query(catalogSql({ serviceRole: opts.serviceRole, protectedNames: names }));
  const sets = result as pg.QueryResult[];
  if (!Array.isArray(sets) || sets.length !== CatalogResult.Count) {
    throw new Error('loadCatalog: unexpected number of result sets from the catalog query');
  }
  const rowsOf = <T>(i: CatalogResult): T[] => sets[i].rows as T[];
  const rows: CatalogRows = {
    namespaces: rowsOf(CatalogResult.Namespaces),
    relations: rowsOf(CatalogResult.Relations),
    inherits: rowsOf(CatalogResult.Inherits),
    columns: rowsOf(CatalogResult.Columns),
    edges: rowsOf(CatalogResult.Edges),
    functions: rowsOf(CatalogResult.Functions),
    leakproofOperators: rowsOf(CatalogResult.LeakproofOperators),
    columnTypes: rowsOf(CatalogResult.ColumnTypes),
  };
  const catalog: UnguardedCatalog = { ...assembleCatalog(rows, names, opts.serviceRole), serverVersionNum, systemViews: await loadSystemViews(client) };
  return { ...catalog, ...await loadGuards(client, catalog, new Set(names.map(([schema, table]) => canonicalRelation(schema, table)))) };
}
