// The upstream schema as pgveil needs it for rewriting (DESIGN §2 catalog/).
// Names are the catalog's own (unquoted, exact case); keys of the form
// "schema.table" use canonicalRelation() from config/identifiers.ts.

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
}

export interface CatalogRelation {
  oid: number;
  schema: string;
  name: string;
  kind: RelationKind;
  /** Present for protected relations, their partitions/children, and relations named in the policy. */
  columns?: CatalogColumn[];
  /** The relation this one inherits from or is a partition of. */
  parentOid?: number;
  /** The top-most ancestor (itself when it has none). */
  rootOid: number;
}

export interface Catalog {
  /** Every relation of every schema the service role can see, pg_catalog and information_schema included. */
  byOid: Map<number, CatalogRelation>;
  /** relname → schema → relation: what search_path resolution needs. */
  byName: Map<string, Map<string, CatalogRelation>>;
  schemas: Set<string>;
  /**
   * Relations (views, materialized views, sequences) and functions that read a given
   * protected relation, directly or through other views: key = the reader
   * (relation oid as a string, or "schema.function"), value = oids of the protected roots read.
   */
  readers: Map<string, number[]>;
  /** Functions marked proleakproof, by "schema.name" (e.g. `pg_catalog.int4eq`). */
  leakproofFunctions: Set<string>;
  /** Operators whose function is leakproof, as "name(lefttype,righttype)" with typnames, e.g. `=(int4,int4)`. */
  leakproofOperators: Set<string>;
  /** The service role pgveil connects as (for `$user` in search_path). */
  serviceRole: string;
  /** When the catalog was read (ms since epoch). */
  loadedAt: number;
}
