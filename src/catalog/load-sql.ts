// The catalog read as one multi-statement simple Query: one round trip, one
// implicit transaction. The simple protocol has no parameters, so the few
// values sent (role name, protected names) travel as hex digits decoded by
// the server: no quoting rules, no standard_conforming_strings, no injection.
//
// search_path is set to pg_catalog for this transaction only, so that
// format_type() qualifies every type outside pg_catalog (`app."Email"`) and
// the types pgveil later emits in casts cannot be shadowed (threat C5 in docs/threat-model.md). Call
// it outside a transaction block, or the setting lasts until that block ends.

/** A text value as an SQL expression made of hex digits only. */
function textExpr(value: string): string {
  return `pg_catalog.convert_from(pg_catalog.decode('${Buffer.from(value, 'utf8').toString('hex')}', 'hex'), 'UTF8')`;
}

/** Objects created by initdb have OIDs below this (FirstNormalObjectId); user objects are at or above it. */
const FIRST_NORMAL_OID = 16384;

/** Result sets of catalogSql(), in order (the set_config result first). */
export const enum CatalogResult {
  SearchPath = 0,
  Namespaces,
  Relations,
  Inherits,
  Columns,
  Edges,
  Functions,
  LeakproofOperators,
  ColumnTypes,
  Count,
}

export interface CatalogSqlInput {
  serviceRole: string;
  /** Protected relations as exact catalog names [schema, relname]. */
  protectedNames: ReadonlyArray<readonly [string, string]>;
}

export function catalogSql({ serviceRole, protectedNames }: CatalogSqlInput): string {
  // One JSON document rather than an ARRAY of thousands of expressions: planning stays cheap.
  const keys = textExpr(JSON.stringify(protectedNames.map(([s, t]) => ({ s, t }))));
  // Protected relations, their descendants and their ancestors: the relations whose columns are loaded.
  const closure = `WITH RECURSIVE
  keys(s, t) AS (SELECT k.s, k.t FROM pg_catalog.json_to_recordset(${keys}::pg_catalog.json) AS k(s pg_catalog.text, t pg_catalog.text)),
  prot(oid) AS (
    SELECT c.oid FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      JOIN keys k ON n.nspname = k.s AND c.relname = k.t),
  down(oid) AS (SELECT oid FROM prot UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN down d ON i.inhparent = d.oid),
  up(oid) AS (SELECT oid FROM prot UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up u ON i.inhrelid = u.oid),
  rels(oid) AS (SELECT oid FROM down UNION SELECT oid FROM up)`;
  return `SELECT pg_catalog.set_config('search_path', 'pg_catalog', true);

SELECT n.oid, n.nspname,
       n.nspname !~ '^pg_(toast_)?temp_' AND pg_catalog.has_schema_privilege(${textExpr(serviceRole)}, n.oid, 'USAGE') AS usable
  FROM pg_catalog.pg_namespace n;

-- Toast tables only when the role may name them (a superuser): they are a third of pg_class.
SELECT c.oid, c.relnamespace, c.relname, c.relkind, c.reltoastrelid FROM pg_catalog.pg_class c
 WHERE c.relnamespace <> 'pg_toast'::pg_catalog.regnamespace
    OR pg_catalog.has_schema_privilege(${textExpr(serviceRole)}, c.relnamespace, 'USAGE');

SELECT i.inhrelid AS child, i.inhparent AS parent FROM pg_catalog.pg_inherits i ORDER BY i.inhrelid, i.inhseqno;

-- Columns of protected relations, their descendants and their ancestors (unsorted: assembly orders them),
-- followed by one row per distinct (type, typmod) among them (attrelid NULL): domains resolved to their
-- base type, carrying the first typmod met on the way down (as getBaseTypeAndTypmod does). One statement,
-- so the attributes are read once.
${closure},
  cols AS MATERIALIZED (
    SELECT a.attrelid, a.attname, a.attnum, a.atttypid, a.atttypmod, a.attnotnull
      FROM pg_catalog.pg_attribute a JOIN rels r ON a.attrelid = r.oid
     WHERE a.attnum > 0 AND NOT a.attisdropped),
  base(typ, mod, b, bmod) AS (
    SELECT DISTINCT atttypid, atttypmod, atttypid, atttypmod FROM cols
    UNION ALL
    SELECT base.typ, base.mod, t.typbasetype, CASE WHEN base.bmod = -1 THEN t.typtypmod ELSE base.bmod END
      FROM base JOIN pg_catalog.pg_type t ON t.oid = base.b WHERE t.typtype = 'd')
SELECT attrelid, attname, attnum, atttypid, atttypmod, attnotnull,
       NULL::pg_catalog.text AS sql_type, NULL::pg_catalog.name AS base_type, NULL::pg_catalog.char AS category,
       NULL::pg_catalog.text AS base_sql_type
  FROM cols
UNION ALL
SELECT NULL, NULL, NULL, b.typ, b.mod, NULL, pg_catalog.format_type(b.typ, b.mod), bt.typname, bt.typcategory,
       CASE WHEN b.b <> b.typ THEN pg_catalog.format_type(b.b, b.bmod) END
  FROM base b JOIN pg_catalog.pg_type bt ON bt.oid = b.b AND bt.typtype <> 'd';

-- What reads what: rules (views, matviews, rules on tables), BEGIN ATOMIC bodies, sequences of columns.
SELECT DISTINCT false AS reader_fn, r.ev_class AS reader,
       d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AS target_fn, d.refobjid AS target
  FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
 WHERE d.refclassid IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass)
   AND d.refobjid >= ${FIRST_NORMAL_OID} AND d.refobjid <> r.ev_class
UNION
SELECT true, d.objid, d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass, d.refobjid
  FROM pg_catalog.pg_depend d
 WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.deptype = 'n'
   AND d.refclassid IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass)
   AND d.refobjid >= ${FIRST_NORMAL_OID} AND d.refobjid <> d.objid
UNION
SELECT false, d.objid, false, d.refobjid
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND d.deptype IN ('a', 'i')
UNION
SELECT false, d.refobjid, false, ad.adrelid
  FROM pg_catalog.pg_attrdef ad
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid
  JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
 WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass;

SELECT p.oid, p.pronamespace, p.proname, p.proleakproof,
       CASE WHEN n.nspname IN ('pg_catalog', 'information_schema') OR l.lanname IN ('internal', 'c') THEN NULL
            ELSE p.prosrc END AS src
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang;

-- An operator key is leakproof only if every operator with that key is (typnames ignore schemas).
SELECT o.oprname, COALESCE(lt.typname, '') AS lefttype, COALESCE(rt.typname, '') AS righttype
  FROM pg_catalog.pg_operator o
  JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
  LEFT JOIN pg_catalog.pg_type lt ON lt.oid = o.oprleft
  LEFT JOIN pg_catalog.pg_type rt ON rt.oid = o.oprright
 GROUP BY 1, 2, 3
HAVING pg_catalog.bool_and(p.proleakproof);

-- Column types of every table, view and foreign table the service role can reach outside the system schemas:
-- what a condition joining a protected table to one of them compares (src/rewrite/fence.ts). A domain is
-- NULL: an operator defined on the domain itself could be the one PostgreSQL picks.
SELECT a.attrelid, a.attname, CASE WHEN t.typtype = 'd' THEN NULL ELSE t.typname END AS typname
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
 WHERE a.attnum > 0 AND NOT a.attisdropped
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
   AND pg_catalog.has_schema_privilege(${textExpr(serviceRole)}, n.oid, 'USAGE');
`;
}
