// Records the catalog statements real clients send (psql meta-commands and
// TAB completion, pgjdbc DatabaseMetaData, SQLAlchemy's inspector, psqlODBC) by running them
// straight against PostgreSQL with log_statement = all, and writes them to
// test/corpus/client-statements.json for test/clients/corpus.test.ts.
// Run: npm run build:test && node build/bench/collect-corpus.js
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHarness } from '../test/helpers/harness.js';
import { run } from '../test/helpers/run.js';
import { odbcDsn } from '../test/helpers/odbc.js';

let log = '';
const h = await startHarness({ tlsMode: 'disable', postgresSettings: { log_statement: 'all' }, onPostgresLog: (t) => { log += t; } });
log = ''; // pgveil's own catalog reads at start are not a client's
const env = { ...process.env, PGHOST: h.pg.host, PGPORT: String(h.pg.port), PGUSER: 'postgres', PGPASSWORD: h.pg.password, PGDATABASE: 'analytics', PGSSLMODE: 'disable' };
try {
  for (const cmd of ['\\dt', '\\dt+ crm.*', '\\d crm.employees', '\\d+ crm.employees', '\\dn', '\\df', '\\dv', '\\dm', '\\di', '\\dp', '\\du', '\\dx']) {
    await run('psql', ['-X', '-c', cmd], { env });
  }
  const py = join(h.dir, 'inspect.py');
  writeFileSync(py, `from sqlalchemy import create_engine, inspect
e = create_engine('postgresql+psycopg2://')
i = inspect(e)
for s in i.get_schema_names():
    for t in i.get_table_names(schema=s):
        i.get_columns(t, schema=s); i.get_pk_constraint(t, schema=s); i.get_foreign_keys(t, schema=s); i.get_indexes(t, schema=s)
    i.get_view_names(schema=s)
`);
  await run('/usr/bin/python3', [py], { env });
  const java = join(h.dir, 'Meta.java');
  writeFileSync(java, `import java.sql.*;
public class Meta { public static void main(String[] a) throws Exception {
  try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
    DatabaseMetaData m = c.getMetaData();
    for (ResultSet r : new ResultSet[] { m.getTables(null, null, "%", null), m.getColumns(null, "crm", "employees", "%"), m.getPrimaryKeys(null, "crm", "employees"),
        m.getImportedKeys(null, "crm", "employees"), m.getIndexInfo(null, "crm", "employees", false, false), m.getSchemas(), m.getTypeInfo(),
        m.getFunctions(null, "pg_catalog", "lower"), m.getCatalogs(), m.getTableTypes() }) { while (r.next()) {} r.close(); }
    try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("select * from crm.employees")) { r.getMetaData().getColumnCount(); }
  } } }
`);
  await run('java', ['-cp', '/usr/share/java/postgresql.jar', java, `jdbc:postgresql://${h.pg.host}:${h.pg.port}/analytics`, 'postgres', h.pg.password], { timeoutMs: 120_000 });
  // psql's TAB completion (readline needs a terminal: script(1) makes one)
  for (const keys of ['select * from crm.\t\t', 'select * from cr\t', 'select * from crm.employees where s\t\t', '\\d crm.emp\t']) {
    await run('script', ['-q', '-e', '-c', 'psql -X -P pager=off', '/dev/null'], { env: { ...env, TERM: 'dumb' }, input: `${keys}\n\\r\n\\q\n` });
  }
  // psqlODBC (Tableau, Power BI): isql's `help` is SQLTables, `help <table>` SQLColumns
  await run('isql', ['-b', 'direct', 'postgres', h.pg.password], {
    env: odbcDsn(h.dir, 'direct', { Servername: h.pg.host, Port: h.pg.port, Database: 'analytics' }), input: 'help\nhelp employees\nselect * from crm.employees\n', timeoutMs: 30_000,
  });
  await new Promise((r) => setTimeout(r, 500));
} finally {
  await h.close();
}
// Each log entry starts with a timestamp; statements may span lines.
const entries = log.split(/\n(?=\d{4}-\d{2}-\d{2} )/);
const statements = new Set<string>();
for (const e of entries) {
  const m = /LOG:\s+(?:statement|execute [^:]*): ([\s\S]*)$/.exec(e);
  if (!m) continue;
  const sql = m[1].trim();
  if (/^(BEGIN|COMMIT|ROLLBACK|SET |SHOW |select \$1|CREATE |GRANT |INSERT |ALTER |REVOKE |DEALLOCATE )/i.test(sql) || !sql) continue;
  if (/^select 1$/i.test(sql)) continue;
  statements.add(sql);
}
const out = fileURLToPath(new URL('../../test/corpus/client-statements.json', import.meta.url));
writeFileSync(out, JSON.stringify([...statements], null, 1) + '\n');
console.log(`${statements.size} statements written to ${out}`);
