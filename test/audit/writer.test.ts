// The audit writer on real files: line format and chain, continuing after a
// restart, daily rotation and retention, a torn last line left by a crash, and
// only typed event fields reaching the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, rmSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditConfig } from '../../src/audit/writer.js';
import { GENESIS, lineHash } from '../../src/audit/chain.js';
import { silentLogger } from '../../src/observe/log.js';
import { ProxyMetrics } from '../../src/observe/metrics.js';
import type { AuditEvent } from '../../src/audit/record.js';

const made: string[] = [];
test.after(() => { for (const dir of made) rmSync(dir, { recursive: true, force: true }); });

function workspace(): { dir: string; cfg: AuditConfig } {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-audit-'));
  made.push(dir);
  return { dir, cfg: { file: join(dir, 'logs', 'audit.jsonl'), retentionDays: 30, statements: 'fingerprint', onFailure: 'block', syncMs: 100 } };
}

/** A clock the test moves; each reading advances it by a millisecond so records stay ordered. */
function clock(iso: string) {
  let t = Date.parse(iso);
  return { now: () => new Date(t++), set(next: string) { t = Date.parse(next); } };
}

function lines(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  assert.ok(text.endsWith('\n'), `${path} ends with a newline`);
  return text.slice(0, -1).split('\n');
}

/** Checks prev/seq links through lines; returns the last line's hash and seq. */
function assertChained(all: string[], prev = GENESIS, seq = 0): { prev: string; seq: number } {
  for (const line of all) {
    const r = JSON.parse(line);
    assert.is(r.prev, prev, `prev of seq ${r.seq}`);
    assert.is(r.seq, seq + 1);
    prev = lineHash(line);
    seq = r.seq;
  }
  return { prev, seq };
}

const connect = (n: number): AuditEvent => ({ event: 'connect', session: `s${n}`, address: '127.0.0.1', tls: false });

test('records become chained JSON lines after a start record, in a 0600 file in a created directory', async () => {
  const { cfg } = workspace();
  const metrics = new ProxyMetrics();
  const log = await AuditLog.open(cfg, { logger: silentLogger, metrics, now: clock('2026-12-02T10:00:00Z').now });
  log.record(connect(1));
  log.record({ event: 'auth', session: 's1', user: 'alice@acme.com', address: '127.0.0.1', outcome: 'failure', reason: 'wrong_password' });
  await log.flush();
  await log.close();
  const all = lines(cfg.file);
  assert.is(all.length, 3);
  const start = JSON.parse(all[0]);
  assert.match(start.ts, /^2026-12-02T10:00:00\.\d{3}Z$/);
  assert.equal(start, { ts: start.ts, seq: 1, event: 'audit_file_start', file: 'audit-2026-12-02.jsonl', previousFile: null, prev: GENESIS });
  assert.equal(Object.keys(JSON.parse(all[2])), ['ts', 'seq', 'event', 'session', 'user', 'address', 'outcome', 'reason', 'prev']);
  assertChained(all);
  assert.is(statSync(cfg.file).mode & 0o777, 0o600);
  assert.is((await metrics.auditRecords.get()).values[0].value, 2);
});

test('a restarted writer continues the chain in the same file', async () => {
  const { cfg } = workspace();
  const c = clock('2026-12-02T10:00:00Z');
  const first = await AuditLog.open(cfg, { logger: silentLogger, now: c.now });
  first.record(connect(1));
  await first.close();
  const second = await AuditLog.open(cfg, { logger: silentLogger, now: c.now });
  second.record(connect(2));
  await second.close();
  const all = lines(cfg.file);
  assert.is(all.length, 3);
  assertChained(all);
});

test('the first record after UTC midnight rotates the file to its day, and the new file starts from the old one\'s last line', async () => {
  const { dir, cfg } = workspace();
  const c = clock('2026-12-01T23:59:59Z');
  const log = await AuditLog.open(cfg, { logger: silentLogger, now: c.now });
  log.record(connect(1));
  c.set('2026-12-02T00:00:01Z');
  log.record(connect(2));
  await log.flush();
  await log.close();
  assert.equal(readdirSync(join(dir, 'logs')).sort(), ['audit-2026-12-01.jsonl', 'audit.jsonl']);
  const old = lines(join(dir, 'logs', 'audit-2026-12-01.jsonl'));
  const now = lines(cfg.file);
  const end = assertChained(old);
  assertChained(now, end.prev, end.seq);
  assert.equal(JSON.parse(now[0]).previousFile, 'audit-2026-12-01.jsonl');
  assert.is(JSON.parse(now[0]).file, 'audit-2026-12-02.jsonl');
  assert.is(JSON.parse(now[1]).session, 's2');
});

test('at open an active file from an earlier day is rotated and rotated files past retention are deleted', async () => {
  const { dir, cfg } = workspace();
  const c = clock('2026-11-01T12:00:00Z');
  const old = await AuditLog.open(cfg, { logger: silentLogger, now: c.now });
  old.record(connect(1));
  await old.close();
  c.set('2026-11-20T12:00:00Z');
  const mid = await AuditLog.open(cfg, { logger: silentLogger, now: c.now });
  mid.record(connect(2));
  await mid.close();
  assert.equal(readdirSync(join(dir, 'logs')).sort(), ['audit-2026-11-01.jsonl', 'audit.jsonl']);
  c.set('2026-12-02T12:00:00Z'); // 11-01 ended more than 30 days ago, 11-20 did not
  const log = await AuditLog.open(cfg, { logger: silentLogger, now: c.now });
  await log.close();
  assert.equal(readdirSync(join(dir, 'logs')).sort(), ['audit-2026-11-20.jsonl', 'audit.jsonl']);
  const start = JSON.parse(lines(cfg.file)[0]);
  assert.is(start.previousFile, 'audit-2026-11-20.jsonl');
  assert.is(start.prev, lineHash(lines(join(dir, 'logs', 'audit-2026-11-20.jsonl')).at(-1)!));
});

test('a torn last line from a crash is kept, terminated and named by the next record, which chains to the last complete line', async () => {
  const { cfg } = workspace();
  const c = clock('2026-12-02T10:00:00Z');
  const first = await AuditLog.open(cfg, { logger: silentLogger, now: c.now });
  first.record(connect(1));
  await first.close();
  const complete = lines(cfg.file);
  appendFileSync(cfg.file, '{"ts":"2026-12-02T10:00:01.000Z","seq":3,"event":"conn');
  const second = await AuditLog.open(cfg, { logger: silentLogger, now: c.now });
  second.record(connect(2));
  await second.close();
  const all = lines(cfg.file);
  assert.is(all.length, 5);
  assert.is(all[2], '{"ts":"2026-12-02T10:00:01.000Z","seq":3,"event":"conn');
  const torn = JSON.parse(all[3]);
  assert.is(torn.event, 'audit_torn_line');
  assert.is(torn.bytes, Buffer.byteLength(all[2]));
  assert.is(torn.sha256, lineHash(all[2]));
  assert.is(torn.prev, lineHash(complete[1]));
  assert.is(torn.seq, 3);
  assertChained([all[3], all[4]], lineHash(complete[1]), 2);
});

test('only the typed fields of an event are written, whatever else the object carries', async () => {
  const { cfg } = workspace();
  const log = await AuditLog.open(cfg, { logger: silentLogger });
  const event = { event: 'password_change', user: 'alice@acme.com', via: 'psql', password: 'Hunter2-secret', verifier: 'SCRAM-SHA-256$4096:…' };
  log.record(event as AuditEvent);
  log.record({ event: 'connect', session: { secret: 'x' }, address: '10.0.0.1', tls: true } as unknown as AuditEvent);
  await log.close();
  const text = readFileSync(cfg.file, 'utf8');
  assert.not.match(text, 'Hunter2');
  assert.not.match(text, 'SCRAM');
  assert.not.match(text, 'secret');
  const [, change, conn] = lines(cfg.file).map((l) => JSON.parse(l));
  assert.equal(Object.keys(change), ['ts', 'seq', 'event', 'user', 'via', 'prev']);
  assert.equal(Object.keys(conn), ['ts', 'seq', 'event', 'address', 'tls', 'prev']);
});

test('statement text is written only under statements: full, a fingerprint not under none, whatever the caller passes', async () => {
  const stmt: AuditEvent = { event: 'statement', session: 's1', user: 'alice@acme.com', fingerprint: 'fp1', text: "select secret_literal('x')", relations: [], decision: 'refused', code: '42501' };
  const shadow: AuditEvent = { event: 'shadow_difference', session: 's1', user: 'alice@acme.com', fingerprint: 'fp1', text: "select secret_literal('x')", active: 'forwarded', candidate: 'refused', kind: 'newly_refused' };
  const written = async (statements: AuditConfig['statements']) => {
    const { cfg } = workspace();
    const log = await AuditLog.open({ ...cfg, statements }, { logger: silentLogger });
    log.record(stmt);
    log.record(shadow);
    await log.close();
    return lines(cfg.file).slice(1).map((l) => JSON.parse(l)).map((r) => [r.event, r.fingerprint, r.text, r.code]);
  };
  const text = "select secret_literal('x')";
  assert.equal(await written('full'), [['statement', 'fp1', text, '42501'], ['shadow_difference', 'fp1', text, undefined]]);
  assert.equal(await written('fingerprint'), [['statement', 'fp1', undefined, '42501'], ['shadow_difference', 'fp1', undefined, undefined]]);
  assert.equal(await written('none'), [['statement', undefined, undefined, '42501'], ['shadow_difference', undefined, undefined, undefined]]);
});

test('each line is laid out exactly as JSON.stringify lays out its fields: escapes, a shared frozen list written twice, non-plain values left out', async () => {
  const { cfg } = workspace();
  const log = await AuditLog.open({ ...cfg, statements: 'full' }, { logger: silentLogger });
  const shared = Object.freeze(['public.orders', 'sales."Q\\1"']);
  const open = ['public.t', { no: 1 }, 7, Number.NaN] as unknown as string[];
  const stmt = (relations: readonly string[], extra: Partial<Extract<AuditEvent, { event: 'statement' }>>): AuditEvent => ({
    event: 'statement', session: '0-1', user: 'zoë "q"@acme.com', org: 'acme', text: 'select 1\n\t-- ☃', relations, decision: 'rewritten', ...extra,
  });
  log.record(stmt(shared, { durationMs: 1.25, rows: 3 }));
  log.record(stmt(shared, { durationMs: Number.POSITIVE_INFINITY, rows: Number.NaN }));
  log.record(stmt(open, { decision: 'refused', code: '42501', reason: 'permission denied for table "t"' }));
  await log.close();
  const written = lines(cfg.file);
  for (const line of written) assert.is(JSON.stringify(JSON.parse(line)), line);
  const [, first, second, third] = written.map((l) => JSON.parse(l));
  assert.equal(first.relations, ['public.orders', 'sales."Q\\1"']);
  assert.equal(second.relations, first.relations);
  assert.is(first.user, 'zoë "q"@acme.com');
  assert.is(first.text, 'select 1\n\t-- ☃');
  assert.equal([first.durationMs, first.rows], [1.25, 3]);
  assert.ok(!('durationMs' in second) && !('rows' in second));
  assert.equal(third.relations, ['public.t', 7]);
  assert.equal(Object.keys(third), ['ts', 'seq', 'event', 'session', 'user', 'org', 'text', 'relations', 'decision', 'code', 'reason', 'prev']);
});

test('an existing active file whose first line is not a start record is refused at open, not overwritten', async () => {
  const { dir, cfg } = workspace();
  const c = clock('2026-12-02T10:00:00Z');
  const log = await AuditLog.open(cfg, { logger: silentLogger, now: c.now });
  await log.close();
  writeFileSync(cfg.file, 'not an audit file\n');
  try {
    await AuditLog.open(cfg, { logger: silentLogger, now: c.now });
    assert.unreachable('open should refuse');
  } catch (err) {
    assert.match((err as Error).message, 'first line is not an audit_file_start record');
  }
  assert.is(readFileSync(cfg.file, 'utf8'), 'not an audit file\n');
  assert.equal(readdirSync(join(dir, 'logs')), ['audit.jsonl']);
});

test.run();
