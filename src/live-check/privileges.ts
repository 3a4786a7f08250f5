// Privileges that let SQL run around pgveil's rewrite: creating objects
// (a schema's CREATE, the database's TEMP: a user's own function or operator
// runs before the ownership filter), and functions that run SQL given as a
// string (the query_to_xml family, ts_stat, ts_rewrite, dblink*), which
// pgveil cannot parse. Refused by pgveil by name; revoked here too, so a
// route the rewriter missed meets "permission denied".
import type pg from 'pg';
import type { Finding } from './finding.js';
import { describeSources, grantSources, grantSourcesSql, memberOfCte, revokeStatements } from './grants.js';
import type { RoleFacts } from './role.js';
import { refusedFunctions } from '../rewrite/functions.js';

/** The functions pgveil refuses because they run SQL given as a string. */
export const sqlFromStringFunctions: readonly string[] = [...refusedFunctions]
  .filter(([, reason]) => reason === 'it runs SQL given as a string').map(([name]) => name);

/**
 * SQL: whether pg_proc row `p` is one of `names` (a text[] expression, of
 * sqlFromStringFunctions) in an overload that runs SQL. ts_rewrite(tsquery,
 * tsquery, tsquery) rewrites with values; only ts_rewrite(tsquery, text) runs a query.
 */
export function runsSqlFromStringSql(p: string, names: string): string {
  return `${p}.proname = ANY(${names})
        AND NOT (${p}.proname = 'ts_rewrite' AND NOT 'pg_catalog.text'::pg_catalog.regtype::pg_catalog.oid = ANY (${p}.proargtypes::pg_catalog.oid[]))`;
}

export async function schemaCreateFindings(client: pg.ClientBase, facts: RoleFacts): Promise<Finding[]> {
  const r = await client.query<{ name: string; sources: unknown }>(
    `WITH RECURSIVE ${memberOfCte}
     SELECT pg_catalog.quote_ident(n.nspname) AS name, ${grantSourcesSql('n.nspacl', 'n', 'n.nspowner', 'CREATE')} AS sources
       FROM pg_catalog.pg_namespace n
      -- The system schemas belong to the bootstrap superuser: only that role could hold CREATE there (see role-superuser).
      WHERE n.nspname NOT IN ('pg_toast', 'pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast_)?temp_' ORDER BY n.nspname`);
  return r.rows.flatMap((row) => {
    const sources = grantSources(row.sources);
    if (!sources.length) return [];
    return [{
      check: 'privilege-create-schema', kind: 'upstream' as const,
      subject: `the service role ${facts.role} may CREATE in schema ${row.name} (through ${describeSources(sources, facts.role)})`,
      why: 'a function, operator or table created there runs or resolves inside the statements pgveil rewrites: a cheap leaky function sees rows before the ownership filter removes them, and a same-named object can shadow what a filter reads',
      sql: revokeStatements('CREATE', 'SCHEMA', row.name, sources, facts),
    }];
  });
}

export async function databaseTempFindings(client: pg.ClientBase, facts: RoleFacts): Promise<Finding[]> {
  const r = await client.query<{ name: string; sources: unknown }>(
    `WITH RECURSIVE ${memberOfCte}
     SELECT pg_catalog.quote_ident(d.datname) AS name, ${grantSourcesSql('d.datacl', 'd', 'd.datdba', 'TEMPORARY')} AS sources
       FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()`);
  const row = r.rows[0];
  const sources = grantSources(row?.sources);
  if (!row || !sources.length) return [];
  return [{
    check: 'privilege-temp-database', kind: 'upstream',
    subject: `the service role ${facts.role} may create TEMP objects in database ${row.name} (through ${describeSources(sources, facts.role)})`,
    why: 'pg_temp is searched first for relations and may hold functions and operators: a temporary object can run user code before the ownership filter or shadow a table a filter reads. PUBLIC has TEMP on every new database by default',
    sql: revokeStatements('TEMPORARY', 'DATABASE', row.name, sources, facts),
    fix: 'grant TEMPORARY back to the other roles that need it',
  }];
}

export async function sqlExecutingFunctionFindings(client: pg.ClientBase, facts: RoleFacts): Promise<Finding[]> {
  const r = await client.query<{ signature: string; sources: unknown }>(
    `WITH RECURSIVE ${memberOfCte}
     SELECT pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) AS signature,
            ${grantSourcesSql('p.proacl', 'f', 'p.proowner', 'EXECUTE')} AS sources
       FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      WHERE ${runsSqlFromStringSql('p', '$1')}
      ORDER BY 1`, [[...sqlFromStringFunctions]]);
  // One finding, one REVOKE per set of grantees: the family is long and always revoked together.
  const held = r.rows.map((row) => ({ signature: row.signature, sources: grantSources(row.sources) })).filter((f) => f.sources.length);
  if (!held.length) return [];
  const groups = new Map<string, { sources: typeof held[number]['sources']; signatures: string[] }>();
  for (const f of held) {
    const key = JSON.stringify(f.sources.map((s) => [s.grantee, s.owner, s.via]).sort());
    const g = groups.get(key) ?? { sources: f.sources, signatures: [] };
    g.signatures.push(f.signature);
    groups.set(key, g);
  }
  const sql = [...groups.values()].flatMap((g) => g.signatures.flatMap((sig) => revokeStatements('EXECUTE', 'FUNCTION', sig, g.sources, facts)));
  const names = [...new Set(held.map((f) => f.signature.replace(/\(.*$/, '')))];
  return [{
    check: 'privilege-execute-sql-functions', kind: 'upstream',
    subject: `the service role ${facts.role} may EXECUTE ${held.length} function${held.length === 1 ? '' : 's'} that run SQL given as a string: ${names.join(', ')}`,
    why: 'the SQL inside the string is never parsed by pgveil, so it reads protected tables raw (every org\'s rows, unmasked). pgveil refuses these functions by name; with EXECUTE revoked a route it missed fails too. PUBLIC may execute them by default',
    sql,
    fix: 'grant EXECUTE back only to roles that need these functions',
  }];
}
