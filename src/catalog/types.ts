// The upstream schema as pgveil needs it for rewriting (docs/architecture.md, module map).
// Names are the catalog's own (unquoted, exact case); keys of the form
// "schema.table" use canonicalRelation() from config/identifiers.ts.

import type { SystemView } from './system-views.js';

/** A column whose type pgveil does not name (a domain): no operator on it counts as leakproof. */
export const UNTYPED_COLUMN = '?';

/** columnTypes of a relation whose `columns` pgveil read. A domain column is untyped: an operator defined on the domain itself could be the one PostgreSQL picks. */
export function columnTypesOf(columns: readonly CatalogColumn[]): Map<string, string> {
  return new Map(columns.map((c) => [c.name, c.baseSqlType ? UNTYPED_COLUMN : c.baseType]));
}

export type RelationKind = 'table' | 'partitioned' | 'view' | 'matview' | 'foreign' | 'sequence' | 'other';

export interface CatalogColumn {
  name: string;
  attnum: number;
  typeOid: number;
  typmod: number;
  /** format_type(atttypid, atttypmod), e.g. `character varying(20)`, `numeric(10,2)`, `integer`. */
  sqlType: string;
  /** pg_type.typname of the column's type after resolving domains, e.g. `varchar`, `int4`, `numeric`, `date`. */
  baseType: string;
  /** pg_type.typcategory of the base type: N numeric, S string, D date/time, B boolean, A array, U user … */
  category: string;
  notNull: boolean;
  /** Only for domain columns: format_type of the base type with the domain's typmod, e.g. `character varying(20)`. */
  baseSqlType?: string;
}

export interface CatalogRelation {
  oid: number;
  schema: string;
  name: string;
  kind: RelationKind;
  /** Present for protected relations (every relation named in the policy), their partitions/children at any depth, and their ancestors. */
  columns?: CatalogColumn[];
  /**
   * Column name → typname of its type (UNTYPED_COLUMN for a domain): from `columns` where present, else for every
   * table, view and foreign table outside the system schemas. What src/rewrite/fence.ts types conditions with.
   */
  columnTypes?: ReadonlyMap<string, string>;
  /** The relation this one inherits from or is a partition of. */
  parentOid?: number;
  /** The top-most ancestor (itself when it has none); under multiple inheritance, along the first parent. */
  rootOid: number;
  /** All direct parents in pg_inherits.inhseqno order; only present under multiple inheritance (more than one). */
  parentOids?: number[];
  /**
   * The protected relations whose policy covers this one: itself when it is protected, then every protected
   * ancestor (all parents), nearest first. Absent when none. Unlike rootOid this also catches the children of a
   * protected relation that is itself a partition of an unprotected parent.
   */
  protectedBy?: number[];
}

/**
 * What the rewriter's guards need beyond relations and functions. Like every security-relevant field of the
 * catalog they are required: a catalog built without one is a type error, never a silent allow.
 */
export interface CatalogGuards {
  /** Column names, in order, of the pg_catalog relations pgveil replaces with a guarded subquery (pg_class). */
  systemColumns: Map<string, string[]>;
  /** Every relation governed by the policy (listed ones and their descendants), with their indexes and TOAST: hidden from statistics columns. */
  protectedOids: number[];
  /** Operator name → non-system schemas defining an operator of that name (user-defined operators). */
  userOperators: Map<string, Set<string>>;
  /**
   * Type name → user functions ("schema.name") that a cast to it may run:
   * casts WITH FUNCTION outside pg_catalog, and CHECK constraints of domains
   * calling such functions (threat A5).
   */
  typeFunctions: Map<string, string[]>;
  /** Relation oid → columns in a unique index or a foreign key: a violation on write is an oracle (threat B9). */
  uniqueColumns: Map<number, Set<string>>;
  /** Relations other tables reference by foreign key: deleting from one can fail on another org's row (an oracle). */
  referencedRelations: Set<number>;
  /** Relations whose writes run user code: triggers, rules, or column defaults calling non-system functions. */
  writeGuarded: Set<number>;
}

export interface Catalog extends CatalogGuards {
  /**
   * Every relation (indexes, composite types and toast tables too, as 'other': they share the name space) of
   * every schema the service role has USAGE on, pg_catalog and information_schema included; plus, whatever
   * their schema, every protected relation, its descendants and ancestors, and every relation in `readers`.
   */
  byOid: Map<number, CatalogRelation>;
  /** relname → schema → relation: what search_path resolution needs. */
  byName: Map<string, Map<string, CatalogRelation>>;
  /** Schemas the service role has USAGE on (other sessions' temp schemas excluded): what search_path resolution may use. */
  schemas: Set<string>;
  /**
   * Relations (views, materialized views, sequences) and functions that read a given
   * protected relation, directly or through other views: key = the reader
   * (relation oid as a string, or "schema.function"), value = oids of the protected roots read.
   * "schema.function" is canonicalRelation(schema, proname) (see functionKey() in resolve.ts) and
   * covers every overload of that name. Also listed: rules on any relation, ancestors of a protected
   * relation (reading a parent reads its partitions), and toast tables of protected data.
   * How each is found: load.ts / readers.ts.
   */
  readers: Map<string, number[]>;
  /** Functions marked proleakproof, by "schema.name" (e.g. `pg_catalog.int4eq`); only when every overload of that name is. */
  leakproofFunctions: Set<string>;
  /**
   * Operators whose function is leakproof, as "name(lefttype,righttype)" with typnames, e.g. `=(int4,int4)`;
   * prefix operators as "name(,righttype)". Only when every operator with that key (any schema) is leakproof.
   */
  leakproofOperators: Set<string>;
  /** The service role pgveil connects as (for `$user` in search_path). */
  serviceRole: string;
  /**
   * The upstream's server_version_num (e.g. 140011, 180004): which major's grammar reads the statements
   * (threat A11, rewrite/grammar-drift.ts).
   */
  serverVersionNum: number;
  /** When the catalog was read (ms since epoch). */
  loadedAt: number;
  /** Direct children (pg_inherits) of every parent: parent oid → child oids (descendantsOf() in resolve.ts). */
  children: Map<number, number[]>;
  /**
   * proname → schemas (with USAGE) that hold a function, procedure or aggregate of that name: lets the rewriter tell
   * whether an unqualified call can resolve outside pg_catalog (functionCandidates() in resolve.ts), and refuse a
   * call of a function it does not know.
   */
  functionSchemas: Map<string, Set<string>>;
  /**
   * pg_catalog view name → the functions its definition calls and the ones producing its rows (system-views.ts):
   * a refused view's row-producing functions are refused with it, an allowed view's statistics functions allowed.
   */
  systemViews: Map<string, SystemView>;
}

/** The catalog before its guard facts are read (load.ts, guards.ts). */
export type UnguardedCatalog = Omit<Catalog, keyof CatalogGuards>;
