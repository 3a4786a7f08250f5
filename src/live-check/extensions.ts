// Extensions that undo what pgveil hides: pg_stat_statements keeps the text
// of every statement pgveil sends (its rewrites carry other users' filter
// literals), and dblink runs SQL given as a string, over a new connection.
import type pg from 'pg';
import type { Finding } from './finding.js';

const risky: ReadonlyMap<string, { why: string; fix?: string }> = new Map([
  ['pg_stat_statements', {
    why: 'it keeps the text of the statements pgveil sends upstream, which carry the literals of every user\'s ownership filter; every pgveil session runs as the service role, so that role reads all of them. pgveil refuses the view, but anyone with the service credentials reads it',
    fix: 'also remove pg_stat_statements from shared_preload_libraries (a restart), or keep it and never let the service role read it',
  }],
  ['dblink', {
    why: 'dblink runs SQL given as a string over a new connection, out of pgveil\'s sight: the string reads protected tables raw. pgveil refuses dblink* by name; without the extension a route it missed finds nothing to call',
  }],
]);

export async function extensionFindings(client: pg.ClientBase): Promise<Finding[]> {
  const r = await client.query<{ name: string; quoted: string; schema: string }>(
    `SELECT e.extname AS name, pg_catalog.quote_ident(e.extname) AS quoted, n.nspname AS schema
       FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
      WHERE e.extname = ANY($1) ORDER BY 1`, [[...risky.keys()]]);
  return r.rows.map((row) => {
    const known = risky.get(row.name)!;
    return {
      check: `extension-${row.name.replace(/_/g, '-')}`, kind: 'upstream' as const,
      subject: `extension ${row.name} is installed in the upstream database (schema ${row.schema})`,
      why: known.why,
      sql: [`DROP EXTENSION ${row.quoted};`],
      fix: known.fix,
    };
  });
}
