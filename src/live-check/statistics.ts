// Planner statistics of protected tables: pg_stats.most_common_vals and
// histogram_bounds hold raw column values sampled from every org's rows.
// pgveil refuses pg_stats, pg_statistic and the rest to its users, but the
// service role itself may read them: pg_stats shows a table's statistics to
// any role that may SELECT its columns (the service role must) unless row
// security applies to that role on the table. pg_statistic and
// pg_statistic_ext_data are readable only by superusers, members of
// pg_read_all_data, or by grant; pg_stats_ext shows only the reader's own
// tables (see role-owns-protected-table).
import type pg from 'pg';
import type { Finding } from './finding.js';
import { describeSources, grantSources, grantSourcesSql, memberOfCte, revokeStatements } from './grants.js';
import type { RoleFacts } from './role.js';

export async function statisticsFindings(client: pg.ClientBase, facts: RoleFacts, governedOids: readonly number[]): Promise<Finding[]> {
  const out: Finding[] = [];
  if (governedOids.length) {
    const exposed = await client.query<{ name: string }>(
      `WITH RECURSIVE ${memberOfCte},
         me AS (SELECT rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER)
       SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, me
        WHERE c.oid = ANY($1::pg_catalog.oid[]) AND c.relkind IN ('r', 'p', 'm', 'f')
          AND pg_catalog.has_any_column_privilege(c.oid, 'SELECT')
          -- row security applies to the role (as row_security_active() would say for it): then pg_stats hides the table
          AND NOT (c.relrowsecurity AND NOT me.rolsuper AND NOT me.rolbypassrls
                   AND (c.relforcerowsecurity OR c.relowner NOT IN (SELECT oid FROM member_of)))
        ORDER BY 1`, [governedOids]);
    const view = await client.query<{ readable: boolean; sources: unknown }>(
      `WITH RECURSIVE ${memberOfCte}
       SELECT pg_catalog.has_table_privilege('pg_catalog.pg_stats', 'SELECT') AS readable,
              ${grantSourcesSql('c.relacl', 'r', 'c.relowner', 'SELECT')} AS sources
         FROM pg_catalog.pg_class c WHERE c.oid = 'pg_catalog.pg_stats'::pg_catalog.regclass`);
    const sources = grantSources(view.rows[0]?.sources);
    const names = exposed.rows.map((r) => r.name);
    if (names.length && (view.rows[0]?.readable || sources.length)) {
      out.push({
        check: 'statistics-readable', kind: 'upstream',
        subject: `the service role ${facts.role} can read the planner statistics (pg_catalog.pg_stats) of protected ${names.join(', ')}${sources.length ? ` (through ${describeSources(sources, facts.role)})` : ''}`,
        why: 'most_common_vals and histogram_bounds list raw values of every org\'s rows. pgveil refuses pg_stats to its users, but anyone with the service credentials, or a route the rewriter missed, reads them: pg_stats shows every table the role may SELECT unless row security applies to the role on it',
        sql: sources.length ? revokeStatements('SELECT', 'TABLE', 'pg_catalog.pg_stats', sources, facts) : [],
        fix: `${sources.length ? '' : 'it reads pg_stats as a superuser or pg_read_all_data member (see those findings); '}the planner keeps using the statistics. Instead of revoking pg_stats for everyone, a table can be hidden by making row security apply to the service role on it (ALTER TABLE … ENABLE ROW LEVEL SECURITY; CREATE POLICY … TO ${facts.role} USING (true)), which also needs policies for every other role reading the table`,
      });
    }
  }
  const catalogs = await client.query<{ name: string; sources: unknown }>(
    `WITH RECURSIVE ${memberOfCte}
     SELECT pg_catalog.format('%I.%I', 'pg_catalog', c.relname) AS name, ${grantSourcesSql('c.relacl', 'r', 'c.relowner', 'SELECT')} AS sources
       FROM pg_catalog.pg_class c
      WHERE c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace AND c.relname IN ('pg_statistic', 'pg_statistic_ext_data')
        AND pg_catalog.has_table_privilege(c.oid, 'SELECT') ORDER BY 1`);
  for (const row of catalogs.rows) {
    const sources = grantSources(row.sources);
    out.push({
      check: 'statistics-catalog-readable', kind: 'upstream',
      subject: `the service role ${facts.role} can read ${row.name}${sources.length ? ` (through ${describeSources(sources, facts.role)})` : ' (as a superuser or pg_read_all_data member)'}`,
      why: 'the statistics catalogs hold sampled raw values of every table, protected ones included, with no per-table filter',
      sql: revokeStatements('SELECT', 'TABLE', row.name, sources, facts),
      fix: sources.length ? undefined : 'see role-superuser and role-pg-read-all-data',
    });
  }
  return out;
}
