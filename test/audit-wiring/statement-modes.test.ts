// What statement records carry under each `audit.statements` setting:
// `full` writes the client's own text (an Execute carries its Parse's text)
// and no fingerprint; `none` writes no statement records at all, except
// refusals, which are always recorded (without text or fingerprint).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { startHarness, connectClient, employeesPolicy, writeConfig, type Harness } from '../helpers/harness.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { waitForAudit, ofEvent } from './audit-file.js';

let h: Harness;
test.before(async () => { h = await startHarness({ tlsMode: 'prefer', policyYaml: employeesPolicy }); });
test.after(async () => { await h?.close(); });

/** A pgveil on the harness's upstream whose audit section says `statements: <mode>`; returns it and its audit file. */
async function proxyWith(mode: string): Promise<{ proxy: ProxyHandle; file: string }> {
  const file = join(h.dir, `audit-${mode}.jsonl`);
  const configFile = writeConfig(h, [`audit: { file: ${file}, statements: ${mode} }`]);
  return { proxy: await startProxy({ configFile, logger: silentLogger, watch: false }), file };
}

/** A few statements as alice: two rewritten (one simple, one extended), one forwarded, one refused, one syntax error. */
async function workload(proxy: ProxyHandle): Promise<void> {
  const c = await connectClient(h, proxy.port, 'alice@acme.com');
  await c.query('select name from crm.employees where id = 1');
  await c.query({ text: 'select name from crm.employees where id = $1', values: [1] });
  await c.query('select 7 as seven');
  await c.query('delete from crm.employees').catch(() => undefined);
  await c.query('selec 2').catch(() => undefined);
  await c.end();
}

test('statements: full writes the client\'s text (an Execute its Parse\'s) and no fingerprint', async () => {
  const { proxy, file } = await proxyWith('full');
  try {
    await workload(proxy);
  } finally {
    await proxy.close();
  }
  const statements = ofEvent(await waitForAudit(file, (r) => ofEvent(r, 'statement').length === 5), 'statement');
  assert.equal(statements.map((r) => [r.text, r.decision]), [
    ['select name from crm.employees where id = 1', 'rewritten'],
    ['select name from crm.employees where id = $1', 'rewritten'],
    ['select 7 as seven', 'forwarded'],
    ['delete from crm.employees', 'refused'],
    ['selec 2', 'syntax_error'],
  ]);
  assert.ok(statements.every((r) => r.fingerprint === undefined));
  assert.equal(statements[1].relations, ['crm.employees']);
});

test('statements: none writes only the refusals, without text or fingerprint', async () => {
  const { proxy, file } = await proxyWith('none');
  try {
    await workload(proxy);
  } finally {
    await proxy.close(); // closing writes everything queued
  }
  const records = await waitForAudit(file, (r) => ofEvent(r, 'auth').length === 1);
  const statements = ofEvent(records, 'statement');
  assert.equal(statements.map((r) => [r.decision, r.code, r.reason]), [
    ['refused', '42501', 'permission denied for table employees'],
    ['syntax_error', '42601', 'syntax error at or near "selec"'],
  ]);
  assert.ok(statements.every((r) => r.text === undefined && r.fingerprint === undefined));
  assert.equal(statements[0].relations, ['crm.employees']);
  assert.is(ofEvent(records, 'connect').length, 1, 'sessions are still recorded');
});

test.run();
