// Under `workers: 2` only the primary writes the audit file: both workers'
// records land in one hash chain, lockouts are recorded once (by the
// primary), session ids are unique across the workers, and when the audit
// disk is full the primary's blocked state reaches every worker (each
// refuses statements with 58030 until space is freed). A real `pgveil serve`
// child process on a real 64 KiB tmpfs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { startHarness, connectClient, connectError, passwords, writeConfig, type Harness } from '../helpers/harness.js';
import { serveChild, sleep } from '../helpers/run.js';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { readAudit, ofEvent } from './audit-file.js';
import { fillDisk, removeSmallDisks, smallDisk } from '../helpers/small-disk.js';

let h: Harness;
let proxy: ChildProcess;
let port = 0;
let adminPort = 0;
let disk = '';

test.before(async () => {
  h = await startHarness({ tlsMode: 'prefer', lockout: { maxFailures: 3, windowSeconds: 60, lockSeconds: 60 } });
  disk = smallDisk();
  port = await freePort();
  adminPort = await freePort();
  const configFile = writeConfig(h, [
    `listen: { host: 127.0.0.1, port: ${port} }`, 'workers: 2', `admin: { host: 127.0.0.1, port: ${adminPort} }`,
    `audit: { file: ${join(disk, 'audit.jsonl')}, statements: fingerprint, onFailure: block }`,
  ]);
  ({ child: proxy } = await serveChild(configFile, 'pgveil workers listening'));
});

test.after(async () => {
  if (proxy?.exitCode === null) {
    const exited = new Promise((r) => proxy.once('exit', r));
    proxy.kill('SIGKILL');
    await exited;
  }
  await h?.close();
  removeSmallDisks();
});

/** One client on each worker (consecutive connections alternate between them). */
async function clientPerWorker(): Promise<Map<number, pg.Client>> {
  const byWorker = new Map<number, pg.Client>();
  for (let i = 0; i < 10 && byWorker.size < 2; i++) {
    const c = await connectClient(h, port, 'alice@acme.com', { connectionTimeoutMillis: 5000 });
    const worker = (c as unknown as { processID: number }).processID >>> 24;
    if (byWorker.has(worker)) await c.end();
    else byWorker.set(worker, c);
  }
  assert.equal([...byWorker.keys()].sort(), [1, 2]);
  return byWorker;
}

async function readyz(): Promise<number> {
  return (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status;
}

test('both workers\' records land in one chain; a lockout is recorded once; a full disk blocks every worker until space is freed', async () => {
  const clients = await clientPerWorker();
  for (const [worker, c] of clients) assert.is((await c.query(`select ${worker} as w`)).rows[0].w, worker);
  for (let i = 0; i < 4; i++) {
    await connectError(h, port, 'bob@globex.com', { password: 'Wrong-bob-1', connectionTimeoutMillis: 5000 });
  }

  // Fill the audit disk; worker 1 runs statements until a write fails and the primary reports blocked.
  const filler = fillDisk(disk);
  let ran = 0;
  while ((await readyz()) !== 503) {
    assert.ok(ran < 400, 'the audit log never failed on a full disk');
    const refused = await clients.get(1)!.query('select $1::int as n', [ran + 1]).then(() => false, (e: { code?: string }) => {
      if (e.code !== '58030') throw e;
      return true;
    });
    if (!refused) ran++;
  }
  // The blocked state reaches each worker a moment after the primary learns it: wait for each to refuse.
  for (const [worker, c] of clients) {
    let code: string | undefined;
    for (let i = 0; i < 100 && code !== '58030'; i++) {
      code = await c.query('select 1').then(() => undefined, (e: { code?: string }) => e.code);
      if (code !== '58030') await sleep(50);
    }
    assert.is(code, '58030', `worker ${worker} refuses statements while the audit log is blocked`);
  }

  rmSync(filler);
  for (let i = 0; i < 200 && (await readyz()) !== 200; i++) await sleep(50);
  assert.is(await readyz(), 200);
  for (const [worker, c] of clients) {
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = await c.query('select 2 as two').then((r) => r.rows[0].two === 2, () => false);
      if (!ok) await sleep(50);
    }
    assert.ok(ok, `worker ${worker} runs statements again`);
  }
  for (const c of clients.values()) await c.end();

  // Stopping writes the workers' last records, then closes the log.
  const exited = new Promise<number | null>((r) => proxy.once('exit', (code) => r(code)));
  proxy.kill('SIGTERM');
  assert.is(await exited, 0);

  const records = readAudit(join(disk, 'audit.jsonl')); // throws on a broken chain
  const seqs = records.map((r) => r.seq);
  assert.equal(seqs, seqs.map((_, i) => i + 1), 'one writer: one gapless sequence');
  const statements = ofEvent(records, 'statement');
  const workersSeen = new Set(statements.map((r) => String(r.session).split('-')[0]));
  assert.equal([...workersSeen].sort(), ['1', '2'], 'statement records from both workers');
  assert.ok(statements.length >= ran + 2 + 2, 'the first statements, those that filled the disk, and those after it');
  const connects = ofEvent(records, 'connect').map((r) => r.session);
  assert.is(new Set(connects).size, connects.length, 'session ids are unique across the workers');
  const locks = ofEvent(records, 'lockout', { key: 'bob@globex.com' });
  assert.is(locks.length, 1, 'the primary records the lockout once');
  assert.is(ofEvent(records, 'auth', { user: 'bob@globex.com', outcome: 'failure' }).length, 4);
  assert.is(ofEvent(records, 'policy_reload', { outcome: 'applied' }).length, 2, 'each worker records its first load');
  const text = readFileSync(join(disk, 'audit.jsonl'), 'utf8');
  for (const secret of [...Object.values(passwords), 'Wrong-bob-1', h.servicePassword]) assert.not.ok(text.includes(secret));
});

test.run();
