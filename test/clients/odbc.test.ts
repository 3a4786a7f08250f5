// ODBC through pgveil (issue 5): unixODBC's isql with the psqlODBC driver —
// the path Tableau and Power BI take — connects over TLS and selects masked,
// filtered rows.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, employeesPolicy, passwords, type Harness } from '../helpers/harness.js';
import { run } from '../helpers/run.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({
    policyYaml: employeesPolicy,
  });
});
test.after(async () => { await h.close(); });

const driver = ['/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so', '/usr/lib/aarch64-linux-gnu/odbc/psqlodbcw.so'].find(existsSync) ?? 'psqlodbcw.so';

test('isql connects through pgveil with sslmode=require and reads masked, filtered rows', async () => {
  writeFileSync(join(h.dir, 'odbcinst.ini'), `[PostgreSQL Unicode]\nDriver = ${driver}\n`);
  writeFileSync(join(h.dir, 'odbc.ini'), `[pgveil]
Driver = PostgreSQL Unicode
Servername = 127.0.0.1
Port = ${h.proxy.port}
Database = analytics
SSLmode = require
`);
  const r = await run('isql', ['-b', '-d,', '-v', 'pgveil', 'alice@acme.com', passwords['alice@acme.com']], {
    env: { ...process.env, ODBCSYSINI: h.dir, ODBCINI: join(h.dir, 'odbc.ini') },
    input: 'select name, ssn from crm.employees order by id\n',
    timeoutMs: 30_000,
  });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /Ann,XXXXXXX3333/);
  assert.not.match(r.stdout, /Gus|444-55-6666|111-22-3333/);
});

test.run();
