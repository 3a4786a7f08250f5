// ODBC through pgveil: unixODBC's isql with the psqlODBC driver —
// the path Tableau and Power BI take — connects over TLS and selects masked,
// filtered rows.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHarness, employeesPolicy, passwords, type Harness } from '../helpers/harness.js';
import { run } from '../helpers/run.js';
import { odbcDsn } from '../helpers/odbc.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({
    policyYaml: employeesPolicy,
  });
});
test.after(async () => { await h?.close(); });

test('isql connects through pgveil with sslmode=require and reads masked, filtered rows', async () => {
  const env = odbcDsn(h.dir, 'pgveil', { Servername: '127.0.0.1', Port: h.proxy.port, Database: 'analytics', SSLmode: 'require' });
  const r = await run('isql', ['-b', '-d,', '-v', 'pgveil', 'alice@acme.com', passwords['alice@acme.com']], {
    env,
    input: 'select name, ssn from crm.employees order by id\n',
    timeoutMs: 30_000,
  });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /Ann,XXXXXXX3333/);
  assert.not.match(r.stdout, /Gus|444-55-6666|111-22-3333/);
});

test.run();
