// What the rewriter's guards need from the upstream beyond relations and
// functions, read with the catalog (load.ts): the columns of the guarded
// system relations, every relation counting a protected one's rows, and
// where user code runs (operators, casts, domain checks, triggers, rules,
// defaults) or a write can act as an oracle.
import type pg from 'pg';
import { canonicalRelation } from '../config/identifiers.js';
import type { Catalog, CatalogGuards } from './types.js';

/** The pg_catalog relations pgveil replaces with a guarded subquery (rewrite/system-guards.ts hides their statistics columns). */
export const guardedSystemRelations = ['pg_class'] as const;
export type GuardedSystemRelation = (typeof guardedSystemRelations)[number];

type Queryable = Pick<pg.ClientBase, 'query'>;

/**
 * Reads the guard facts. `protectedKeys`: the canonical "schema.table" keys
 * of the policy's tables; they and every relation they cover (inheritance,
 * partitions) are governed.
 */
export async function loadGuards(client: Queryable, catalog: Pick<Catalog, 'byOid'>, protectedKeys: ReadonlySet<string>): Promise<CatalogGuards> {
  const systemColumnsRead = await systemColumns(client);
  const code = await userCode(client);
  const governed = [...catalog.byOid.values()]
    .filter((r) => protectedKeys.has(canonicalRelation(r.schema, r.name)) || (r.protectedBy?.length ?? 0) > 0)
    .map((r) => r.oid);
  return { systemColumns: systemColumnsRead, ...code, protectedOids: await withDependents(client, governed) };
}

async function systemColumns(client: Queryable): Promise<Map<string, string[]>> {
  const result = await client.query<{ rel: string; cols: string[] }>(
    `SELECT c.relname AS rel, array_agg(a.attname::text ORDER BY a.attnum) AS cols
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
      WHERE c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace AND c.relname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
      GROUP BY c.relname`, [[...guardedSystemRelations]]);
  return new Map(result.rows.map((r) => [r.rel, r.cols]));
}

/** The relations plus their indexes, TOAST tables and TOAST indexes: all of them count the same rows (B5). */
async function withDependents(client: Queryable, oids: number[]): Promise<number[]> {
  if (!oids.length) return [];
  const result = await client.query<{ oid: string }>(
    `WITH base AS (SELECT pg_catalog.unnest($1::pg_catalog.oid[]) AS oid),
          toast AS (SELECT c.reltoastrelid AS oid FROM pg_catalog.pg_class c JOIN base USING (oid) WHERE c.reltoastrelid <> 0)
     SELECT oid::pg_catalog.int8::text AS oid FROM base UNION SELECT oid::pg_catalog.int8::text FROM toast
     UNION SELECT i.indexrelid::pg_catalog.int8::text FROM pg_catalog.pg_index i
       WHERE i.indrelid IN (SELECT oid FROM base UNION SELECT oid FROM toast)`, [oids]);
  return result.rows.map((r) => Number(r.oid));
}

/** User-defined operators, and relations whose writes run user code (triggers, rules, defaults). */
async function userCode(client: Queryable): Promise<Omit<CatalogGuards, 'systemColumns' | 'protectedOids'>> {
  const system = `('pg_catalog'::pg_catalog.regnamespace, 'information_schema'::pg_catalog.regnamespace)`;
  const ops = await client.query<{ name: string; schema: string }>(
    `SELECT o.oprname::text AS name, n.nspname::text AS schema FROM pg_catalog.pg_operator o
       JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace WHERE o.oprnamespace NOT IN ${system}`);
  const userOperators = new Map<string, Set<string>>();
  for (const r of ops.rows) {
    const name = String(r.name);
    if (!userOperators.has(name)) userOperators.set(name, new Set());
    userOperators.get(name)?.add(String(r.schema));
  }
  const guarded = await client.query<{ oid: string }>(
    `SELECT tgrelid::pg_catalog.int8 AS oid FROM pg_catalog.pg_trigger WHERE NOT tgisinternal
     UNION SELECT ev_class::pg_catalog.int8 FROM pg_catalog.pg_rewrite WHERE rulename <> '_RETURN'
     UNION SELECT d.adrelid::pg_catalog.int8 FROM pg_catalog.pg_attrdef d
       JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND dep.objid = d.oid
        AND dep.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
       JOIN pg_catalog.pg_proc p ON p.oid = dep.refobjid WHERE p.pronamespace NOT IN ${system}`);
  const casts = await client.query<{ type: string; fn: string }>(
    `SELECT t.typname::text AS type, pn.nspname::text || '.' || p.proname::text AS fn
       FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
       JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
      WHERE p.pronamespace NOT IN ${system}
     UNION
     SELECT t.typname::text, pn.nspname::text || '.' || p.proname::text
       FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_type t ON t.oid = con.contypid
       JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = con.oid
        AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
       JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
      WHERE con.contypid <> 0 AND p.pronamespace NOT IN ${system}`);
  const typeFunctions = new Map<string, string[]>();
  for (const r of casts.rows) {
    const type = String(r.type);
    typeFunctions.set(type, [...(typeFunctions.get(type) ?? []), String(r.fn)]);
  }
  // Columns whose values a write could test against other orgs' rows: unique
  // keys (a violation confirms a value exists) and foreign keys (a violation
  // confirms a referenced row does not).
  const unique = await client.query<{ oid: string; col: string }>(
    `SELECT i.indrelid::pg_catalog.int8 AS oid, a.attname::text AS col FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey)
      WHERE i.indisunique
     UNION
     SELECT c.conrelid::pg_catalog.int8, a.attname::text FROM pg_catalog.pg_constraint c
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum OPERATOR(pg_catalog.=) ANY (c.conkey)
      WHERE c.contype = 'f'`);
  const uniqueColumns = new Map<number, Set<string>>();
  for (const r of unique.rows) {
    const oid = Number(r.oid);
    if (!uniqueColumns.has(oid)) uniqueColumns.set(oid, new Set());
    uniqueColumns.get(oid)?.add(String(r.col));
  }
  const referenced = await client.query<{ oid: string }>(`SELECT DISTINCT confrelid::pg_catalog.int8 AS oid FROM pg_catalog.pg_constraint WHERE contype = 'f'`);
  return {
    userOperators, writeGuarded: new Set(guarded.rows.map((r) => Number(r.oid))), typeFunctions, uniqueColumns,
    referencedRelations: new Set(referenced.rows.map((r) => Number(r.oid))),
  };
}
