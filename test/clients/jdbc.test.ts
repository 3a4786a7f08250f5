// JDBC through pgveil: Debian's PostgreSQL JDBC driver run by the
// JDK's single-file launcher — DatabaseMetaData as BI tools call it,
// server-side prepared statements past prepareThreshold, setFetchSize
// cursors (portal suspension), and the metadata of masked columns.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, passwords, type Harness } from '../helpers/harness.js';
import { run } from '../helpers/run.js';
import { accountsPolicy, accountsSql } from './accounts-fixture.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({
    extraSql: accountsSql(`
      CREATE INDEX accounts_name ON crm.accounts (name);
      INSERT INTO crm.accounts SELECT g, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END, 1, 'a' || g FROM generate_series(1, 200) g;`),
    policyYaml: accountsPolicy('      salary: { mask: "null" }\n'),
  });
});
test.after(async () => { await h?.close(); });

const program = `
import java.sql.*;
import java.util.*;

public class PgveilJdbc {
  static String q(String s) { return s == null ? "null" : "\\"" + s.replace("\\"", "'") + "\\""; }
  public static void main(String[] a) throws Exception {
    Properties p = new Properties();
    p.setProperty("user", a[1]);
    p.setProperty("password", a[2]);
    p.setProperty("sslmode", "verify-full");
    p.setProperty("sslrootcert", a[3]);
    p.setProperty("prepareThreshold", "3");
    try (Connection c = DriverManager.getConnection(a[0], p)) {
      DatabaseMetaData md = c.getMetaData();
      List<String> tables = new ArrayList<>();
      try (ResultSet r = md.getTables(null, null, "%", new String[] {"TABLE"})) { while (r.next()) tables.add(r.getString("TABLE_SCHEM") + "." + r.getString("TABLE_NAME")); }
      List<String> columns = new ArrayList<>();
      try (ResultSet r = md.getColumns(null, "crm", "employees", "%")) { while (r.next()) columns.add(r.getString("COLUMN_NAME") + ":" + r.getString("TYPE_NAME")); }
      List<String> pk = new ArrayList<>();
      try (ResultSet r = md.getPrimaryKeys(null, "crm", "accounts")) { while (r.next()) pk.add(r.getString("COLUMN_NAME")); }
      List<String> fk = new ArrayList<>();
      try (ResultSet r = md.getImportedKeys(null, "crm", "accounts")) { while (r.next()) fk.add(r.getString("PKTABLE_NAME") + "." + r.getString("PKCOLUMN_NAME")); }
      int indexes = 0;
      try (ResultSet r = md.getIndexInfo(null, "crm", "accounts", false, false)) { while (r.next()) indexes++; }
      int schemas = 0;
      try (ResultSet r = md.getSchemas()) { while (r.next()) schemas++; }
      int types = 0;
      try (ResultSet r = md.getTypeInfo()) { while (r.next()) types++; }
      int functions = 0;
      try (ResultSet r = md.getFunctions(null, "pg_catalog", "lower")) { while (r.next()) functions++; }
      // Server-side prepared statement: executed past prepareThreshold.
      List<String> prepared = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("select name, ssn from crm.employees where id = ?")) {
        for (int i = 0; i < 6; i++) { ps.setInt(1, i % 2 == 0 ? 1 : 2); try (ResultSet r = ps.executeQuery()) { while (r.next()) prepared.add(r.getString(1) + "/" + r.getString(2)); } }
      }
      // setFetchSize: a cursor inside a transaction, fetched 7 rows at a time.
      c.setAutoCommit(false);
      int fetched = 0;
      try (Statement s = c.createStatement()) {
        s.setFetchSize(7);
        try (ResultSet r = s.executeQuery("select id from crm.accounts order by id")) { while (r.next()) fetched++; }
      }
      c.commit();
      // Metadata of masked columns: the table's own types.
      String meta;
      try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("select ssn, salary from crm.employees")) {
        ResultSetMetaData m = r.getMetaData();
        meta = m.getColumnTypeName(1) + "," + m.getColumnTypeName(2);
        r.next();
        meta += "," + r.getString(1) + "," + r.getString(2);
      }
      System.out.println("{\\"tables\\":" + q(String.join(",", tables)) + ",\\"columns\\":" + q(String.join(",", columns))
        + ",\\"pk\\":" + q(String.join(",", pk)) + ",\\"fk\\":" + q(String.join(",", fk)) + ",\\"indexes\\":" + indexes
        + ",\\"schemas\\":" + schemas + ",\\"types\\":" + types + ",\\"functions\\":" + functions
        + ",\\"prepared\\":" + q(String.join(",", prepared)) + ",\\"fetched\\":" + fetched + ",\\"meta\\":" + q(meta) + "}");
    }
  }
}
`;

test('JDBC: metadata lists only permitted tables, prepared statements and fetch-size cursors work, masked columns keep their types', async () => {
  const file = join(h.dir, 'PgveilJdbc.java');
  writeFileSync(file, program);
  const url = `jdbc:postgresql://localhost:${h.proxy.port}/analytics`;
  const r = await run('java', ['-cp', '/usr/share/java/postgresql.jar', file, url, 'alice@acme.com', passwords['alice@acme.com'], h.caFile], { timeoutMs: 120_000 });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, string | number>;
  assert.is(out.tables, 'crm.accounts,crm.employees');
  assert.is(out.columns, 'id:int4,org_id:text,name:text,ssn:text,salary:numeric');
  assert.is(out.pk, 'id');
  assert.is(out.fk, 'employees.id');
  assert.ok((out.indexes as number) >= 2);
  assert.ok((out.schemas as number) >= 2 && (out.types as number) > 10 && (out.functions as number) >= 1);
  assert.is(out.prepared, 'Ann/XXXXXXX3333,Ann/XXXXXXX3333,Ann/XXXXXXX3333');
  assert.is(out.fetched, 100);
  assert.is(out.meta, 'text,numeric,XXXXXXX3333,null');
});

const schemaProgram = `
import java.sql.*;
import java.util.*;

public class PgveilJdbcSchema {
  public static void main(String[] a) throws Exception {
    Properties p = new Properties();
    p.setProperty("user", a[1]);
    p.setProperty("password", a[2]);
    p.setProperty("sslmode", "verify-full");
    p.setProperty("sslrootcert", a[3]);
    p.setProperty("prepareThreshold", "2");
    List<String> out = new ArrayList<>();
    try (Connection c = DriverManager.getConnection(a[0], p)) {
      c.setSchema("crm"); // what DBeaver's active schema does
      out.add("schema=" + c.getSchema());
      c.setAutoCommit(false);
      try (PreparedStatement ps = c.prepareStatement("select name, ssn from employees order by id")) {
        for (int i = 0; i < 4; i++) try (ResultSet r = ps.executeQuery()) { StringBuilder b = new StringBuilder(); while (r.next()) b.append(r.getString(1)).append('/').append(r.getString(2)).append(';'); out.add(b.toString()); }
      }
      c.commit();
      try (Statement s = c.createStatement()) { s.execute("select 1/0"); } catch (SQLException e) { out.add("error=" + e.getSQLState()); }
      c.rollback();
      c.setAutoCommit(true);
      c.setSchema("public");
      try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("select name from employees")) { r.next(); } catch (SQLException e) { out.add("unqualified-after-public=" + e.getSQLState()); }
    }
    System.out.println(String.join("|", out));
  }
}
`;

test('A2 JDBC setSchema (DBeaver\'s active schema), server-side prepared statements under it, commit() and rollback() work on this PostgreSQL version', async () => {
  const file = join(h.dir, 'PgveilJdbcSchema.java');
  writeFileSync(file, schemaProgram);
  const url = `jdbc:postgresql://localhost:${h.proxy.port}/analytics`;
  const r = await run('java', ['-cp', '/usr/share/java/postgresql.jar', file, url, 'alice@acme.com', passwords['alice@acme.com'], h.caFile], { timeoutMs: 120_000 });
  assert.is(r.status, 0, r.stderr);
  const out = (r.stdout.trim().split('\n').pop() as string).split('|');
  assert.is(out[0], 'schema=crm');
  for (const rows of out.slice(1, 5)) assert.is(rows, 'Ann/XXXXXXX3333;', 'only acme rows, masked, at every execution');
  assert.is(out[5], 'error=22012');
  assert.is(out.length, 7, out.join('|'));
  assert.is(out[out.length - 1], 'unqualified-after-public=42P01', 'after setSchema("public") the name resolves under the new path (no public.employees here)');
});

test.run();
