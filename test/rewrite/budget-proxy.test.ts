// Threat E2 in docs/threat-model.md through the proxy: the statement of the finding (15,000
// references to a protected table, ~800 kB) is refused at once with one
// clear error, nothing is logged as an analyzer gap, and the session (and
// every other one) goes on working.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { createLogger } from '../../src/observe/log.js';
import { MAX_NESTING, MAX_STATEMENT_CHARS } from '../../src/rewrite/budget.js';

let h: Harness;
let proxy: ProxyHandle;
const logLines: string[] = [];
test.before(async () => {
  h = await startHarness();
  // A second proxy on the harness's config whose log the test reads.
  proxy = await startProxy({ configFile: h.configFile, logger: createLogger({ level: 'info', write: (line) => logLines.push(line) }) });
});
test.after(async () => { await proxy.close(); await h.close(); });

const connect = async () => {
  const c = new pg.Client({ ...clientConfig(h, 'alice@acme.com'), port: proxy.port });
  await c.connect();
  return c;
};

async function errorOf(c: pg.Client, sql: string): Promise<{ code?: string; message: string; hint?: string }> {
  try {
    await c.query(sql);
  } catch (err) {
    return err as { code?: string; message: string; hint?: string };
  }
  throw new Error('the statement was not refused');
}

test('E2 the oversized statement is refused at once; the session and another one stay usable; no analyzer gap is logged', async () => {
  const a = await connect();
  const b = await connect();
  try {
    const huge = Array.from({ length: 15000 }, (_, i) => `(select count(*) from crm.employees where id = ${i})`).join('+');
    assert.ok(huge.length > MAX_STATEMENT_CHARS);
    const [err, other] = await Promise.all([errorOf(a, `select ${huge}`), b.query('select 1 AS one')]);
    assert.is(err.code, '54000');
    assert.match(err.message, `pgveil analyses at most ${MAX_STATEMENT_CHARS}`);
    assert.match(err.hint ?? '', /Split the statement/);
    assert.is(other.rows[0].one, 1);
    // Deep sub-selects: one clear 54001, again no analyzer gap.
    const deep = 'select ' + '(select id from crm.employees where id = '.repeat(MAX_NESTING) + '1' + ')'.repeat(MAX_NESTING);
    const deepErr = await errorOf(a, deep);
    assert.is(deepErr.code, '54001');
    // The same session goes on: a statement over the protected table is rewritten and filtered.
    const rows = await a.query('select name from crm.employees order by id');
    assert.equal(rows.rows.map((r) => r.name), ['Ann']);
    assert.ok(!logLines.some((l) => /analyzer gap/.test(l)), logLines.join('\n'));
  } finally {
    await a.end();
    await b.end();
  }
});

test.run();
