// Views, materialized views, functions, sequences and parent tables that
// read a protected table (the catalog's `readers`: rules, BEGIN ATOMIC and
// other function bodies, owned sequences, partition and inheritance
// parents) without a policy entry of their own. pgveil refuses them to its
// users; while the service role may still read them, a route the rewriter
// missed (or anyone with the service credentials) reads the protected rows
// through them, unfiltered and unmasked.
import type pg from 'pg';
import type { Catalog, CatalogRelation } from '../catalog/types.js';
import { canonicalRelation } from '../config/identifiers.js';
import { functionKey } from '../catalog/resolve.js';
import type { Finding } from './finding.js';
import { describeSources, grantSources, grantSourcesSql, memberOfCte, revokeStatements, type GrantSource } from './grants.js';
import type { RoleFacts } from './role.js';

const kindWords: Record<string, { word: string; keyword: string }> = {
  v: { word: 'view', keyword: 'TABLE' },
  m: { word: 'materialized view', keyword: 'TABLE' },
  S: { word: 'sequence', keyword: 'SEQUENCE' },
  p: { word: 'partitioned table (a parent)', keyword: 'TABLE' },
  r: { word: 'table (a parent, or one with a rule)', keyword: 'TABLE' },
  f: { word: 'foreign table', keyword: 'TABLE' },
};

export interface DependentInputs {
  catalog: Catalog;
  /** policy.functions.allow: a function listed exactly is one the DBA let pgveil's users call. */
  allowedFunctions: readonly string[];
  /** Members of pg_read_all_data read everything whatever the ACLs say (reported on its own). */
  readsAllData: boolean;
}

function protectedNames(catalog: Catalog, oids: readonly number[]): string {
  return oids.map((oid) => catalog.byOid.get(oid)).filter((r): r is CatalogRelation => !!r)
    .map((r) => canonicalRelation(r.schema, r.name)).join(', ');
}

export async function dependentFindings(client: pg.ClientBase, facts: RoleFacts, input: DependentInputs): Promise<Finding[]> {
  const { catalog } = input;
  const relationReads = new Map<number, number[]>();
  const functionReads = new Map<string, number[]>();
  for (const [key, read] of catalog.readers) {
    if (!read.length) continue;
    if (/^\d+$/.test(key)) relationReads.set(Number(key), read);
    else functionReads.set(key, read);
  }
  // protectedBy holds a listed relation itself, and every relation a listed one covers.
  const uncovered = [...relationReads.keys()].filter((oid) => !catalog.byOid.get(oid)?.protectedBy?.length);
  const out: Finding[] = [];
  const note = input.readsAllData ? '; as a member of pg_read_all_data the service role reads it whatever the GRANTs say (see role-pg-read-all-data)' : '';
  if (uncovered.length) {
    const r = await client.query<{ oid: string; name: string; kind: string; sel: unknown; seq: unknown }>(
      `WITH RECURSIVE ${memberOfCte}
       SELECT c.oid::pg_catalog.int8::pg_catalog.text AS oid, pg_catalog.format('%I.%I', n.nspname, c.relname) AS name, c.relkind AS kind,
              ${grantSourcesSql('c.relacl', `(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::pg_catalog."char"`, 'c.relowner', 'SELECT')} AS sel,
              ${grantSourcesSql('c.relacl', 's', 'c.relowner', 'USAGE')} AS seq
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = ANY($1::pg_catalog.oid[]) AND c.relkind IN ('v', 'm', 'S', 'p', 'r', 'f') ORDER BY 2`, [uncovered]);
    for (const row of r.rows) {
      const sources = mergeSources(grantSources(row.sel), row.kind === 'S' ? grantSources(row.seq) : []);
      if (!sources.length && !input.readsAllData) continue;
      const kind = kindWords[row.kind];
      out.push({
        check: 'dependent-reads-protected', kind: 'upstream',
        subject: `${kind.word} ${row.name} reads protected ${protectedNames(catalog, relationReads.get(Number(row.oid)) ?? [])} and has no policy entry; the service role ${facts.role} may read it${sources.length ? ` (through ${describeSources(sources, facts.role)})` : ''}`,
        why: row.kind === 'S'
          ? 'pgveil refuses it to its users, but its values count the protected table\'s rows, every org\'s: a route the rewriter missed, or anyone with the service credentials, reads them'
          : 'pgveil refuses it to its users, but what it returns is the protected rows unfiltered and unmasked: a route the rewriter missed, or anyone with the service credentials, reads them through it',
        sql: revokeStatements('ALL', kind.keyword, row.name, sources, facts),
        fix: `or give it a policy entry under tables: in the policy file (pgveil then applies that entry's rules to it)${note}`,
      });
    }
  }
  const allowed = new Set(input.allowedFunctions);
  const wanted = [...functionReads.keys()];
  if (wanted.length) {
    const r = await client.query<{ schema: string; name: string; signature: string; sources: unknown }>(
      `WITH RECURSIVE ${memberOfCte}
       SELECT n.nspname AS schema, p.proname AS name,
              pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) AS signature,
              ${grantSourcesSql('p.proacl', 'f', 'p.proowner', 'EXECUTE')} AS sources
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prokind IN ('f', 'p', 'a', 'w') ORDER BY 3`);
    for (const row of r.rows) {
      const read = functionReads.get(functionKey(row.schema, row.name));
      if (!read || allowed.has(`${row.schema}.${row.name}`)) continue;
      const sources = grantSources(row.sources);
      if (!sources.length) continue;
      out.push({
        check: 'dependent-reads-protected', kind: 'upstream',
        subject: `function ${row.signature} reads (or names) protected ${protectedNames(catalog, read)}; the service role ${facts.role} may execute it (through ${describeSources(sources, facts.role)})`,
        why: 'pgveil refuses it to its users (it is not listed exactly under functions.allow), but its body reads with no ownership filter and no mask: a route the rewriter missed runs it',
        sql: revokeStatements('EXECUTE', 'FUNCTION', row.signature, sources, facts),
        fix: 'PUBLIC may execute new functions by default: ALTER DEFAULT PRIVILEGES … REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC keeps future ones closed',
      });
    }
  }
  return out;
}

/** SELECT and USAGE sources of a sequence, one per grantee. */
function mergeSources(a: GrantSource[], b: GrantSource[]): GrantSource[] {
  const seen = new Map<string, GrantSource>();
  for (const s of [...a, ...b]) seen.set(`${s.grantee}/${s.owner}`, s);
  return [...seen.values()];
}
