// The audit log on a really full disk (a 64 KiB tmpfs filled up):
// `onFailure: block` refuses every new statement (simple and extended) with
// 58030 before analysis and sends nothing upstream, /readyz answers 503 and
// pgveil_audit_blocked is 1, until space is freed; then statements run again
// and every record queued meanwhile lands in one unbroken chain.
// `onFailure: continue` serves on and counts the failed writes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { startHarness, connectClient, writeConfig, type Harness } from '../helpers/harness.js';
import { UpstreamLog } from '../helpers/upstream-log.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { silentLogger } from '../../src/observe/log.js';
import { readAudit, waitForAudit, ofEvent } from './audit-file.js';
import { fillDisk, removeSmallDisks, smallDisk } from '../helpers/small-disk.js';

let h: Harness;
/** The harness's audit disk. */
let disk: string;
const upstreamLog = new UpstreamLog();
/** Everything the upstream server logged (log_statement = all). */
let upstreamText = '';

const auditYaml = (dir: string, onFailure: string) => `audit: { file: ${join(dir, 'audit.jsonl')}, statements: fingerprint, onFailure: ${onFailure} }`;

test.before(async () => {
  h = await startHarness({
    tlsMode: 'prefer', admin: true, postgresSettings: upstreamLog.settings,
    onPostgresLog: (text) => { upstreamText += text; upstreamLog.onLog(text); },
    extraConfig: auditYaml(disk = smallDisk(), 'block'),
  });
});

test.after(async () => {
  await h?.close();
  removeSmallDisks();
});

async function admin(proxy: ProxyHandle, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}${path}`);
  return { status: res.status, text: await res.text() };
}

async function metric(proxy: ProxyHandle, name: string): Promise<number> {
  const line = (await admin(proxy, '/metrics')).text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : NaN;
}

/**
 * Runs statements until the audit log reports itself blocked (each record
 * needs room on the disk), or a statement is refused because it is; returns
 * how many statements ran.
 */
async function runUntil(proxy: ProxyHandle, c: pg.Client, blocked: (p: ProxyHandle) => Promise<boolean>): Promise<number> {
  for (let i = 1; i <= 400; i++) {
    const refused = await c.query('select $1::int as n', [i]).then(() => false, (e: { code?: string }) => {
      if (e.code !== '58030') throw e;
      return true;
    });
    if (refused) return i - 1;
    if (await blocked(proxy)) return i;
  }
  throw new Error('the audit log never failed on a full disk');
}

test('onFailure: block refuses new statements with 58030 while the audit disk is full, sends nothing upstream, and recovers with every record', async () => {
  const auditFile = join(disk, 'audit.jsonl');
  const c = await connectClient(h, h.proxy.port, 'alice@acme.com');
  await c.query('select 1');
  const filler = fillDisk(disk);
  const ran = await runUntil(h.proxy, c, async (p) => (await metric(p, 'pgveil_audit_blocked')) === 1);

  upstreamLog.clear();
  const simple = await c.query("select 'blocked-marker-1' as m").then(() => undefined, (e: { code?: string; message: string; hint?: string }) => e);
  assert.is(simple?.code, '58030');
  assert.match(String(simple?.message), /cannot write its audit log/);
  assert.match(String(simple?.hint), /free space/);
  const extended = await c.query("select $1::text || 'blocked-marker-2' as m", ['x']).then(() => undefined, (e: { code?: string }) => e);
  assert.is(extended?.code, '58030', 'the extended protocol is refused too');
  const ready = await admin(h.proxy, '/readyz');
  assert.is(ready.status, 503);
  assert.is(ready.text, 'not ready: audit log cannot be written\n');
  assert.ok((await metric(h.proxy, 'pgveil_audit_write_failures_total')) >= 1);

  rmSync(filler);
  for (let i = 0; i < 200 && (await metric(h.proxy, 'pgveil_audit_blocked')) !== 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.is(await metric(h.proxy, 'pgveil_audit_blocked'), 0, 'writing recovers once there is space');
  assert.is((await c.query("select 'after-marker' as m")).rows[0].m, 'after-marker');
  assert.is((await admin(h.proxy, '/readyz')).status, 200);
  await upstreamLog.last('after-marker');
  assert.not.ok(upstreamText.includes('blocked-marker'), 'no refused statement reached upstream');
  await c.end();

  // Every statement that ran has its record, in order, in one chain (readAudit checks it).
  const records = await waitForAudit(auditFile, (r) => ofEvent(r, 'statement').length >= ran + 2);
  const statements = ofEvent(records, 'statement');
  assert.is(statements.length, ran + 2, 'select 1, the statements that filled the disk and the one after: all recorded');
  assert.ok(statements.every((r) => r.decision === 'forwarded'), 'the refusals while blocked are not queued for the log');
  const seqs = records.map((r) => r.seq);
  assert.equal(seqs, seqs.map((_, i) => seqs[0] + i), 'no sequence number missing');
});

test('onFailure: continue serves statements on a full audit disk and counts the failed writes', async () => {
  const dir = smallDisk();
  const configFile = writeConfig(h, [auditYaml(dir, 'continue')]);
  const proxy = await startProxy({ configFile, logger: silentLogger, watch: false });
  try {
    const c = await connectClient(h, proxy.port, 'alice@acme.com');
    const filler = fillDisk(dir);
    await runUntil(proxy, c, async (p) => (await metric(p, 'pgveil_audit_write_failures_total')) >= 1);
    for (let i = 0; i < 5; i++) assert.is((await c.query('select $1::int as n', [i])).rows[0].n, i);
    assert.is(await metric(proxy, 'pgveil_audit_blocked'), 0);
    assert.is((await admin(proxy, '/readyz')).status, 200);
    await c.end();
    rmSync(filler);
  } finally {
    await proxy.close();
  }
  // Read once the proxy has closed: it flushed the queue, and no retry is writing while the file is read.
  assert.ok(readAudit(join(dir, 'audit.jsonl')).length > 0);
});

test.run();
