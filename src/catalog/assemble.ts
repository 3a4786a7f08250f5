// Builds the Catalog from the rows of catalogSql(): pure, so the shape rules
// (what is included, how keys are spelled) do not depend on a server.
import { buildForest, coverage, rootAlongFirstParent, type InheritRow } from './inheritance.js';
import { findReaders, type DependencyEdge, type ReaderFunction, type ReaderRelation } from './readers.js';
import { functionKey } from './resolve.js';
import { UNTYPED_COLUMN, columnTypesOf, type CatalogColumn, type CatalogRelation, type RelationKind, type UnguardedCatalog } from './types.js';

export interface NamespaceRow { oid: number; nspname: string; usable: boolean }
export interface RelationRow { oid: number; relnamespace: number; relname: string; relkind: string; reltoastrelid: number }
/** A column (attrelid set, type fields null) or a column type (attrelid null), from one result set. */
export interface ColumnRow {
  attrelid: number | null;
  attname: string | null;
  attnum: number | null;
  atttypid: number;
  atttypmod: number;
  attnotnull: boolean | null;
  sql_type: string | null;
  base_type: string | null;
  category: string | null;
  base_sql_type: string | null;
}
export interface EdgeRow { reader_fn: boolean; reader: number; target_fn: boolean; target: number }
export interface FunctionRow { oid: number; pronamespace: number; proname: string; proleakproof: boolean; src: string | null }
export interface OperatorRow { oprname: string; lefttype: string; righttype: string }
export interface ColumnTypeRow { attrelid: number; attname: string; typname: string | null }

export interface CatalogRows {
  namespaces: NamespaceRow[];
  relations: RelationRow[];
  inherits: InheritRow[];
  columns: ColumnRow[];
  edges: EdgeRow[];
  functions: FunctionRow[];
  leakproofOperators: OperatorRow[];
  /** Column types of the relations outside the policy (absent: none known, so none typed). */
  columnTypes?: ColumnTypeRow[];
}

const kinds: Record<string, RelationKind> = {
  r: 'table', p: 'partitioned', v: 'view', m: 'matview', f: 'foreign', S: 'sequence',
};

const systemSchemas = new Set(['pg_catalog', 'information_schema']);

function sortedNumbers(values: Iterable<number>): number[] {
  return [...values].sort((a, b) => a - b);
}

function columnsByRelation(rows: readonly ColumnRow[]): Map<number, CatalogColumn[]> {
  const types = new Map<string, ColumnRow>();
  for (const r of rows) if (r.attrelid === null) types.set(`${r.atttypid}/${r.atttypmod}`, r);
  const out = new Map<number, CatalogColumn[]>();
  for (const r of rows) {
    if (r.attrelid === null) continue;
    const t = types.get(`${r.atttypid}/${r.atttypmod}`);
    if (!t) throw new Error(`catalog: no type row for column ${r.attname} of relation ${r.attrelid}`);
    const col: CatalogColumn = {
      name: r.attname!,
      attnum: r.attnum!,
      typeOid: r.atttypid,
      typmod: r.atttypmod,
      sqlType: t.sql_type!,
      baseType: t.base_type!,
      category: t.category!,
      notNull: r.attnotnull!,
    };
    if (t.base_sql_type !== null) col.baseSqlType = t.base_sql_type;
    const list = out.get(r.attrelid);
    if (list) list.push(col);
    else out.set(r.attrelid, [col]);
  }
  for (const list of out.values()) list.sort((a, b) => a.attnum - b.attnum);
  return out;
}

/** A (schema, relname) pair as one string; NUL cannot occur in a name. */
function pairKey(schema: string, name: string): string {
  return `${schema}\0${name}`;
}

/** `protectedNames` are exact catalog names [schema, relname]; those that name no relation are ignored. */
export function assembleCatalog(
  rows: CatalogRows,
  protectedNames: ReadonlyArray<readonly [string, string]>,
  serviceRole: string,
): Omit<UnguardedCatalog, 'serverVersionNum' | 'systemViews'> {
  const protectedPairs = new Set(protectedNames.map(([s, t]) => pairKey(s, t)));
  const namespaces = new Map(rows.namespaces.map((n) => [n.oid, n]));
  const schemaOf = (nsOid: number): string => namespaces.get(nsOid)?.nspname ?? '';

  // Toast tables hold raw values but only a role with USAGE on pg_toast (a superuser) can name them.
  const toastVisible = rows.namespaces.some((n) => n.nspname === 'pg_toast' && n.usable);
  const protectedOids = new Set<number>();
  const readerRelations = new Map<number, ReaderRelation>();
  for (const r of rows.relations) {
    readerRelations.set(r.oid, { name: r.relname, toastOid: toastVisible ? r.reltoastrelid : 0 });
    if (protectedPairs.has(pairKey(schemaOf(r.relnamespace), r.relname))) protectedOids.add(r.oid);
  }

  const forest = buildForest(rows.inherits);
  const covered = coverage(forest, protectedOids);
  const functions: ReaderFunction[] = rows.functions.map((f) => {
    const schema = schemaOf(f.pronamespace);
    return { oid: f.oid, key: functionKey(schema, f.proname), name: f.proname, system: systemSchemas.has(schema), src: f.src };
  });
  const edges: DependencyEdge[] = rows.edges.map((e) => ({
    reader: { fn: e.reader_fn, oid: e.reader },
    target: { fn: e.target_fn, oid: e.target },
  }));
  const found = findReaders({ relations: readerRelations, functions, edges, forest, coverage: covered });

  const columns = columnsByRelation(rows.columns);
  const columnTypes = new Map<number, Map<string, string>>();
  for (const c of rows.columnTypes ?? []) {
    let types = columnTypes.get(c.attrelid);
    if (!types) columnTypes.set(c.attrelid, (types = new Map()));
    types.set(c.attname, c.typname ?? UNTYPED_COLUMN);
  }
  const byOid = new Map<number, CatalogRelation>();
  const byName = new Map<string, Map<string, CatalogRelation>>();
  for (const r of rows.relations) {
    const ns = namespaces.get(r.relnamespace);
    if (!ns || !(ns.usable || covered.has(r.oid) || found.relations.has(r.oid))) continue;
    const parents = forest.parents.get(r.oid);
    const rel: CatalogRelation = { oid: r.oid, schema: ns.nspname, name: r.relname, kind: kinds[r.relkind] ?? 'other', rootOid: parents ? rootAlongFirstParent(forest, r.oid) : r.oid };
    if (parents) rel.parentOid = parents[0];
    if (parents && parents.length > 1) rel.parentOids = [...parents];
    const by = covered.get(r.oid);
    if (by) rel.protectedBy = [...by];
    const cols = columns.get(r.oid);
    if (cols) rel.columns = cols;
    const types = cols ? columnTypesOf(cols) : columnTypes.get(r.oid);
    if (types) rel.columnTypes = types;
    byOid.set(r.oid, rel);
    let bySchema = byName.get(r.relname);
    if (!bySchema) byName.set(r.relname, (bySchema = new Map()));
    bySchema.set(ns.nspname, rel);
  }

  const readers = new Map<string, number[]>();
  for (const [oid, read] of found.relations) readers.set(String(oid), sortedNumbers(read));
  const functionReads = new Map<string, Set<number>>();
  for (const fn of functions) {
    const read = found.functions.get(fn.oid);
    if (!read || fn.system) continue;
    const set = functionReads.get(fn.key) ?? new Set<number>();
    for (const v of read) set.add(v);
    functionReads.set(fn.key, set);
  }
  for (const [key, read] of functionReads) readers.set(key, sortedNumbers(read));

  // A function key is leakproof only when every overload behind it is.
  const leakproofByKey = new Map<string, boolean>();
  const functionSchemas = new Map<string, Set<string>>();
  rows.functions.forEach((f, i) => {
    const key = functions[i].key;
    leakproofByKey.set(key, (leakproofByKey.get(key) ?? true) && f.proleakproof);
    const ns = namespaces.get(f.pronamespace);
    if (!ns || !ns.usable) return;
    let schemas = functionSchemas.get(f.proname);
    if (!schemas) functionSchemas.set(f.proname, (schemas = new Set()));
    schemas.add(ns.nspname);
  });

  return {
    byOid,
    byName,
    schemas: new Set(rows.namespaces.filter((n) => n.usable).map((n) => n.nspname)),
    readers,
    leakproofFunctions: new Set([...leakproofByKey].filter(([, lp]) => lp).map(([k]) => k)),
    leakproofOperators: new Set(rows.leakproofOperators.map((o) => `${o.oprname}(${o.lefttype},${o.righttype})`)),
    serviceRole,
    loadedAt: Date.now(),
    children: forest.children,
    functionSchemas,
  };
}
