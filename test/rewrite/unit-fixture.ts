// A hand-built catalog and profile for server-free rewriter tests: the public
// rewriteSql() runs in milliseconds on them, with no PostgreSQL. Every
// optional catalog field is filled, so a field becoming required does not
// break the fixture.
import { columnTypesOf, type Catalog, type CatalogColumn, type CatalogRelation } from '../../src/catalog/types.js';
import type { MaskSpec, Profile, TableProfile } from '../../src/policy/types.js';
import { rewriteSql, type Outcome, type RewriteInput } from '../../src/rewrite/rewrite.js';

const TYPES: Record<string, [number, string, string]> = { // base type → oid, format_type, category
  int4: [23, 'integer', 'N'], text: [25, 'text', 'S'], numeric: [1700, 'numeric', 'N'], date: [1082, 'date', 'D'],
};

function columns(spec: Array<[string, keyof typeof TYPES]>): CatalogColumn[] {
  return spec.map(([name, base], k) => ({
    name, attnum: k + 1, typeOid: TYPES[base][0], typmod: -1, sqlType: TYPES[base][1], baseType: base, category: TYPES[base][2], notNull: false,
  }));
}

function relation(oid: number, schema: string, name: string, cols: Array<[string, keyof typeof TYPES]>, protectedBy: number[] = []): CatalogRelation {
  const list = columns(cols);
  return { oid, schema, name, kind: 'table', rootOid: oid, columns: list, columnTypes: columnTypesOf(list), ...(protectedBy.length ? { protectedBy } : {}) };
}

/** crm.employees and crm.accounts are protected (filtered by org_id); public.lookup and crm.notes are not. */
export const employees = relation(100, 'crm', 'employees', [['id', 'int4'], ['org_id', 'text'], ['name', 'text'], ['ssn', 'text'], ['salary', 'numeric'], ['hired', 'date']], [100]);
export const accounts = relation(101, 'crm', 'accounts', [['id', 'int4'], ['org_id', 'text'], ['owner_id', 'int4'], ['balance', 'numeric']], [101]);
export const lookup = relation(200, 'public', 'lookup', [['code', 'text'], ['label', 'text']]);
export const notes = relation(201, 'crm', 'notes', [['id', 'int4'], ['body', 'text']]);

/** A catalog of the relations above, with `extra` fields overriding the defaults. */
export function makeCatalog(extra: Partial<Catalog> = {}): Catalog {
  const rels = [employees, accounts, lookup, notes];
  const byName = new Map<string, Map<string, CatalogRelation>>();
  for (const r of rels) byName.set(r.name, new Map([...(byName.get(r.name) ?? []), [r.schema, r]]));
  return {
    byOid: new Map(rels.map((r) => [r.oid, r])),
    byName,
    schemas: new Set(['crm', 'public', 'pg_catalog']),
    readers: new Map(),
    leakproofFunctions: new Set(['pg_catalog.int4eq', 'pg_catalog.texteq']),
    leakproofOperators: new Set(['=(int4,int4)', '=(text,text)', '<(int4,int4)', '>(int4,int4)']),
    serviceRole: 'svc',
    systemColumns: new Map(),
    protectedOids: [100, 101],
    userOperators: new Map(),
    typeFunctions: new Map(),
    uniqueColumns: new Map([[100, new Set(['id'])]]),
    referencedRelations: new Set(),
    writeGuarded: new Set(),
    loadedAt: 0,
    serverVersionNum: 180000,
    children: new Map(),
    functionSchemas: new Map(),
    systemViews: new Map(),
    ...extra,
  };
}

const mask = (kind: MaskSpec['kind'], options: Record<string, unknown> = {}): MaskSpec => ({ kind, options });

function table(relation: string, masks: Array<[string, MaskSpec]> = [], access = true): TableProfile {
  return { relation, access, filters: ["org_id = 'acme'"], masks: new Map(masks) };
}

/** Alice of acme: ssn partly masked, salary rounded; `writes` as given. */
export function makeProfile(writes: Profile['writes'] = 'deny', extra: Partial<Profile> = {}): Profile {
  return {
    key: `unit-${writes}`, generation: 1, unlistedRelations: 'allow', writes,
    tables: new Map([
      ['crm.employees', table('crm.employees', [['ssn', mask('partial', { keepLast: 4 })], ['salary', mask('round', { step: 1000 })]])],
      ['crm.accounts', table('crm.accounts')],
    ]),
    ...extra,
  };
}

/** rewriteSql with the fixture's catalog and profile (search_path public, crm unless given). */
export function rewrite(sql: string, input: Partial<RewriteInput> = {}): Outcome {
  return rewriteSql(sql, { profile: makeProfile(), catalog: makeCatalog(), searchPath: ['public', 'crm'], ...input });
}

/** The rewritten SQL, failing with the outcome when the statement was not rewritten. */
export function rewritten(o: Outcome): string {
  if (o.kind !== 'rewrite') throw new Error(`expected a rewrite, got ${o.kind}${o.kind === 'refuse' ? `: ${o.error.code} ${o.error.message}${o.internal ? ` (${o.internal})` : ''}` : ''}`);
  return o.sql;
}

/** The refusal's SQLSTATE and message, failing when the statement was not refused. */
export function refusal(o: Outcome): { code: string; message: string } {
  if (o.kind !== 'refuse') throw new Error(`expected a refusal, got ${o.kind}${o.kind === 'rewrite' ? `: ${o.sql}` : ''}`);
  return { code: o.error.code, message: o.error.message };
}

/** Whether `sql` contains `fragment`, whitespace aside (the splicer's spacing is no contract). */
export const has = (sql: string, fragment: string): boolean => sql.replace(/\s+/g, '').includes(fragment.replace(/\s+/g, ''));
