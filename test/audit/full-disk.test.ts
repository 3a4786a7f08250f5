// Audit writes on a really full disk: a 64 kB tmpfs filled to the last byte.
// Under onFailure: block the log reports itself blocked until space is freed,
// under continue it serves on; either way every accepted record lands in order
// once writing recovers, and the queue bound drops (and counts) the excess.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog, type AuditConfig } from '../../src/audit/writer.js';
import { verifyPath } from '../../src/audit/verify.js';
import { createLogger } from '../../src/observe/log.js';
import { ProxyMetrics } from '../../src/observe/metrics.js';
import { fillDisk, removeSmallDisks, smallDisk } from '../helpers/small-disk.js';

test.after(removeSmallDisks);

function capture() {
  const logged: { level: string; msg: string; [k: string]: unknown }[] = [];
  return { logged, logger: createLogger({ level: 'debug', write: (line) => logged.push(JSON.parse(line)) }) };
}

const statement = (n: number) => ({
  event: 'statement' as const, session: 's1', user: 'alice@acme.com', fingerprint: `fp${String(n).padStart(6, '0')}`,
  relations: ['public.employees'], decision: 'rewritten' as const, durationMs: 1, rows: n,
});

function configIn(dir: string, onFailure: AuditConfig['onFailure']): AuditConfig {
  return { file: join(dir, 'audit.jsonl'), retentionDays: 30, statements: 'fingerprint', onFailure, syncMs: 100 };
}

async function counter(metric: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await metric.get()).values[0]?.value ?? 0;
}

test('onFailure block: a full disk blocks until space is freed, then every queued record lands in order with a valid chain', async () => {
  const dir = smallDisk();
  const metrics = new ProxyMetrics();
  const { logged, logger } = capture();
  const log = await AuditLog.open(configIn(dir, 'block'), { logger, metrics, retryMs: 20 });
  const changes: boolean[] = [];
  const unblocked = new Promise<void>((resolve) => log.onBlockedChange((b) => { changes.push(b); if (!b) resolve(); }));
  const filler = fillDisk(dir);

  for (let n = 1; n <= 120; n++) log.record(statement(n));
  const flushed = await log.flush().then(() => null, (err: NodeJS.ErrnoException) => err);
  assert.is(flushed?.code, 'ENOSPC');
  assert.ok(log.blocked());
  assert.is(await counter(metrics.auditBlocked), 1);
  assert.ok(await counter(metrics.auditWriteFailures) >= 1);
  assert.is(await counter(metrics.auditRecords), 0);
  // Records accepted while blocked are kept too.
  for (let n = 121; n <= 130; n++) log.record(statement(n));

  unlinkSync(filler);
  await unblocked;
  await log.flush();
  assert.not.ok(log.blocked());
  assert.equal(changes, [true, false]);
  assert.is(await counter(metrics.auditBlocked), 0);
  assert.is(await counter(metrics.auditRecords), 130);
  await log.close();

  const records = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.equal(records.slice(1).map((r) => r.rows), Array.from({ length: 130 }, (_, i) => i + 1));
  const verdict = await verifyPath(join(dir, 'audit.jsonl'));
  assert.is(verdict.ok, true, JSON.stringify(verdict));
  const failures = logged.filter((l) => l.msg === 'audit write failed');
  assert.is(failures.length, 1, 'one failure log line per episode');
  assert.match(String(failures[0].error), 'ENOSPC');
  assert.is(logged.filter((l) => l.msg === 'audit writes recovered').length, 1);
});

test('onFailure continue: a full disk does not block, failures are counted, and the records land after recovery', async () => {
  const dir = smallDisk();
  const metrics = new ProxyMetrics();
  const { logged, logger } = capture();
  const log = await AuditLog.open(configIn(dir, 'continue'), { logger, metrics, retryMs: 20 });
  const changes: boolean[] = [];
  log.onBlockedChange((b) => changes.push(b));
  const filler = fillDisk(dir);
  for (let n = 1; n <= 120; n++) log.record(statement(n));
  assert.is((await log.flush().then(() => null, (err: NodeJS.ErrnoException) => err))?.code, 'ENOSPC');
  assert.not.ok(log.blocked());
  assert.is(await counter(metrics.auditBlocked), 0);
  assert.ok(await counter(metrics.auditWriteFailures) >= 1);
  unlinkSync(filler);
  const recovered = new Promise<void>((resolve) => {
    const poll = () => (logged.some((l) => l.msg === 'audit writes recovered') ? resolve() : setTimeout(poll, 10));
    poll();
  });
  await recovered;
  await log.close();
  assert.equal(changes, []);
  assert.is(await counter(metrics.auditRecords), 120);
  assert.is((await verifyPath(join(dir, 'audit.jsonl'))).ok, true);
});

test('while writes fail the queue is bounded: the excess is dropped, counted as write failures and logged once', async () => {
  const dir = smallDisk();
  const metrics = new ProxyMetrics();
  const { logged, logger } = capture();
  const log = await AuditLog.open(configIn(dir, 'block'), { logger, metrics, retryMs: 60_000, maxQueue: 100 });
  const filler = fillDisk(dir);
  for (let n = 1; n <= 100; n++) log.record(statement(n));
  await log.flush().catch(() => {});
  const failuresBefore = await counter(metrics.auditWriteFailures);
  for (let n = 101; n <= 150; n++) log.record(statement(n));
  assert.is(await counter(metrics.auditWriteFailures), failuresBefore + 50);
  assert.is(logged.filter((l) => l.msg.startsWith('audit queue full')).length, 1);
  unlinkSync(filler);
  await log.flush();
  await log.close();
  const records = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.equal(records.slice(1).map((r) => r.rows), Array.from({ length: 100 }, (_, i) => i + 1));
  const recovered = logged.find((l) => l.msg === 'audit writes recovered');
  assert.is(recovered?.dropped, 50);
});

test.run();
