// The service role itself: attributes and memberships that reach past
// every privilege pgveil relies on, and ownership of the tables it guards.
import type pg from 'pg';
import type { Finding } from './finding.js';
import { memberOfCte } from './grants.js';

/** Predefined roles that read every table or reach the server's files and programs. */
const dangerousRoles: ReadonlyMap<string, string> = new Map([
  ['pg_read_all_data', 'it reads every table, view and sequence (and the statistics catalogs) as if granted SELECT on them, whatever the GRANTs say'],
  ['pg_read_server_files', 'it reads any file the server can (COPY FROM a file, pg_read_file): data files and logs included'],
  ['pg_write_server_files', 'it writes any file the server can (COPY TO a file): configuration included'],
  ['pg_execute_server_program', 'it runs programs on the server as the database OS user (COPY … PROGRAM)'],
]);

export interface RoleFacts {
  /** quote_ident of the service role. */
  role: string;
  /** quote_ident of the database checked. */
  database: string;
  superuser: boolean;
  bypassRls: boolean;
}

export async function readRole(client: pg.ClientBase): Promise<RoleFacts> {
  const r = await client.query<{ role: string; database: string; rolsuper: boolean; rolbypassrls: boolean }>(
    `SELECT pg_catalog.quote_ident(rolname) AS role, pg_catalog.quote_ident(pg_catalog.current_database()) AS database, rolsuper, rolbypassrls
       FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER`);
  const row = r.rows[0];
  return { role: row.role, database: row.database, superuser: row.rolsuper, bypassRls: row.rolbypassrls };
}

/** Governed relations with row security enabled: what a superuser or BYPASSRLS service role makes moot. */
export async function rowSecurityTables(client: pg.ClientBase, governedOids: readonly number[]): Promise<string[]> {
  if (!governedOids.length) return [];
  const r = await client.query<{ name: string }>(
    `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = ANY($1::pg_catalog.oid[]) AND c.relrowsecurity ORDER BY 1`, [governedOids]);
  return r.rows.map((row) => row.name);
}

export function attributeFindings(facts: RoleFacts, rowSecurity: readonly string[] = []): Finding[] {
  const out: Finding[] = [];
  // Said only when true: the DBA may count on row security that does not apply to pgveil's role.
  const moot = rowSecurity.length ? `; the row security enabled on ${rowSecurity.join(', ')} does not apply to it` : '';
  if (facts.superuser) {
    out.push({
      check: 'role-superuser', kind: 'upstream',
      subject: `the service role ${facts.role} is a superuser`,
      why: `a superuser passes every privilege check and row security: no REVOKE below protects anything, and a route the rewriter missed (or anyone with the service credentials) can read files, run programs and change any table${moot}`,
      sql: [`ALTER ROLE ${facts.role} NOSUPERUSER;`],
    });
  }
  if (facts.bypassRls) {
    out.push({
      check: 'role-bypassrls', kind: 'upstream',
      subject: `the service role ${facts.role} has BYPASSRLS`,
      why: `row security policies on the upstream tables do not apply to it, so they cannot stand behind pgveil as a second wall${moot}`,
      sql: [`ALTER ROLE ${facts.role} NOBYPASSRLS;`],
    });
  }
  return out;
}

export async function membershipFindings(client: pg.ClientBase, facts: RoleFacts): Promise<Finding[]> {
  const r = await client.query<{ name: string; via: string }>(
    `WITH RECURSIVE ${memberOfCte}
     SELECT g.rolname AS name, pg_catalog.quote_ident(mo.via) AS via FROM member_of mo JOIN pg_catalog.pg_roles g ON g.oid = mo.oid
      WHERE g.rolname = ANY($1) AND mo.via IS NOT NULL ORDER BY 1, 2`, [[...dangerousRoles.keys()]]);
  const byRole = new Map<string, string[]>();
  for (const row of r.rows) byRole.set(row.name, [...(byRole.get(row.name) ?? []), row.via]);
  return [...byRole].map(([name, vias]) => ({
    check: `role-${name.replace(/_/g, '-')}`, kind: 'upstream' as const,
    subject: `the service role ${facts.role} is a member of ${name}${vias.some((v) => v !== facts.role) ? ` (through ${vias.filter((v) => v !== facts.role).join(', ')})` : ''}`,
    why: `${dangerousRoles.get(name)}; pgveil refuses these routes by name, but with the membership revoked a route it missed meets "permission denied" instead`,
    sql: vias.map((via) => `REVOKE ${name} FROM ${via};`),
  }));
}

/** Governed relations (policy tables and their partitions) the service role owns, itself or through a role it is a member of. */
export async function ownershipFindings(client: pg.ClientBase, facts: RoleFacts, governedOids: readonly number[]): Promise<Finding[]> {
  if (!governedOids.length) return [];
  const r = await client.query<{ name: string; kind: string; owner: string; via: string | null; rls: boolean; forced: boolean }>(
    `WITH RECURSIVE ${memberOfCte}
     SELECT DISTINCT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name, c.relkind AS kind,
            pg_catalog.quote_ident(o.rolname) AS owner, pg_catalog.quote_ident(mo.via) AS via,
            c.relrowsecurity AS rls, c.relforcerowsecurity AS forced
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_roles o ON o.oid = c.relowner JOIN member_of mo ON mo.oid = c.relowner
      WHERE c.oid = ANY($1::pg_catalog.oid[]) ORDER BY 1`, [governedOids]);
  return r.rows.map((row) => {
    const direct = row.via === null;
    const keyword = row.kind === 'm' ? 'MATERIALIZED VIEW' : row.kind === 'v' ? 'VIEW' : row.kind === 'f' ? 'FOREIGN TABLE' : 'TABLE';
    const rls = row.rls && !row.forced ? '; its row security policies do not apply to its owner' : '';
    return {
      check: 'role-owns-protected-table', kind: 'upstream' as const,
      subject: direct ? `the service role ${facts.role} owns protected table ${row.name}` : `the service role ${facts.role} owns protected table ${row.name} through membership in ${row.owner}`,
      why: `an owner can ALTER, DROP, TRUNCATE and GRANT the table, disable its triggers and read its extended statistics (pg_stats_ext)${rls}`,
      sql: direct ? [`ALTER ${keyword} ${row.name} OWNER TO <owner>;`, `GRANT SELECT ON TABLE ${row.name} TO ${facts.role};`] : [`REVOKE ${row.owner} FROM ${row.via};`],
      fix: direct ? 'give it to a role the service role is not a member of (<owner>); the GRANT keeps pgveil able to read it' : undefined,
    };
  });
}
