// `pgveil audit verify` run as an operator runs it (the real launcher in a child
// process) on files the writer wrote over four days, then tampered with: each
// kind of tampering is named at its first broken line with the right cause.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync, mkdtempSync, readFileSync, renameSync, unlinkSync, writeFileSync, appendFileSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditLog } from '../../src/audit/writer.js';
import { silentLogger } from '../../src/observe/log.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'bin/pgveil.js');
const DAYS = ['2026-11-29', '2026-11-30', '2026-12-01', '2026-12-02'];
const rotated = (day: string) => `audit-${day}.jsonl`;

interface Run { code: number | null; out: string; err: string }
function verify(...args: string[]): Run {
  const r = spawnSync(process.execPath, [bin, 'audit', 'verify', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Four days of records (a start record and five records per file): three rotated files and the active one. */
let fixture: string;
test.before(async () => {
  fixture = mkdtempSync(join(tmpdir(), 'pgveil-verify-fixture-'));
  made.push(fixture);
  let t = Date.parse(`${DAYS[0]}T08:00:00Z`);
  const log = await AuditLog.open({ file: join(fixture, 'audit.jsonl'), retentionDays: 30, statements: 'fingerprint', onFailure: 'block', syncMs: 100 }, {
    logger: silentLogger, now: () => new Date(t++),
  });
  for (const day of DAYS) {
    t = Date.parse(`${day}T09:00:00Z`);
    for (let n = 1; n <= 5; n++) {
      log.record({ event: 'statement', session: `s-${day}`, user: 'alice@acme.com', fingerprint: `fp${n}`, relations: ['public.employees'], decision: 'rewritten', rows: n });
    }
    await log.flush();
  }
  await log.close();
});

/** A copy of the fixture to tamper with. */
const made: string[] = [];
test.after(() => { for (const dir of made) rmSync(dir, { recursive: true, force: true }); });
function copy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-verify-'));
  made.push(dir);
  cpSync(fixture, dir, { recursive: true });
  return dir;
}
const fileLines = (path: string) => readFileSync(path, 'utf8').slice(0, -1).split('\n');
const writeLines = (path: string, lines: string[]) => writeFileSync(path, lines.join('\n') + '\n');

function assertBroken(r: Run, at: string, cause: RegExp): void {
  assert.is(r.code, 1, `exit 1 expected:\n${r.out}${r.err}`);
  const first = r.out.split('\n')[0];
  assert.ok(first.startsWith(`${at}: `), `expected the finding at ${at}, got: ${first}`);
  assert.match(first, cause);
}

test('an untampered directory verifies: exit 0 with files, records and the first and last time', () => {
  const r = verify(fixture);
  assert.is(r.code, 0, r.out + r.err);
  assert.match(r.out, /^chain intact: 4 files, 20 records, 2026-11-29T09:00:00\.000Z to 2026-12-02T09:00:00\.\d{3}Z\n/);
  assert.match(r.out, 'files in chain order (in ');
  assert.match(r.out, ': audit-2026-11-29.jsonl, audit-2026-11-30.jsonl, audit-2026-12-01.jsonl, audit.jsonl\n');
  assert.not.match(r.out, 'note:');
});

test('an edited field is named at the edited line', () => {
  const dir = copy();
  const file = join(dir, rotated('2026-11-30'));
  const lines = fileLines(file);
  lines[2] = lines[2].replace('"rows":2', '"rows":20');
  writeLines(file, lines);
  assertBroken(verify(dir), `${file}:3`, /line 3 was edited/);
});

test('a deleted line is named as a removed record with its seq', () => {
  const dir = copy();
  const file = join(dir, rotated('2026-11-30'));
  const lines = fileLines(file);
  lines.splice(2, 1); // seq 9
  writeLines(file, lines);
  assertBroken(verify(dir), `${file}:3`, /a record was removed before line 3: seq 9 is missing/);
});

test('two swapped lines are named as out of order, pointing at where the missing seq went', () => {
  const dir = copy();
  const file = join(dir, rotated('2026-11-30'));
  const lines = fileLines(file);
  [lines[2], lines[3]] = [lines[3], lines[2]];
  writeLines(file, lines);
  assertBroken(verify(dir), `${file}:3`, /line 3 is out of order: it holds seq 10, but seq 9 .* is at audit-2026-11-30\.jsonl:4/);
});

test('an inserted line is named as inserted', () => {
  const dir = copy();
  const file = join(dir, rotated('2026-12-01'));
  const lines = fileLines(file);
  const forged = JSON.parse(lines[2]);
  forged.user = 'mallory@acme.com';
  forged.prev = 'f'.repeat(64);
  lines.splice(2, 0, JSON.stringify(forged));
  writeLines(file, lines);
  assertBroken(verify(dir), `${file}:3`, /line 3 was inserted: line 4 follows line 2 directly/);
});

test('a file truncated mid-line is named as an incomplete line', () => {
  const dir = copy();
  const file = join(dir, 'audit.jsonl');
  const lines = fileLines(file);
  truncateSync(file, statSync(file).size - 30);
  assertBroken(verify(dir), `${file}:${lines.length}`, /line 6 is incomplete \(no newline at its end\)/);
});

test('a whole middle file removed is named, with the missing file, at the next file\'s start', () => {
  const dir = copy();
  unlinkSync(join(dir, rotated('2026-11-30')));
  assertBroken(verify(dir), `${join(dir, rotated('2026-12-01'))}:1`,
    /a whole file is missing between audit-2026-11-29\.jsonl and audit-2026-12-01\.jsonl: audit-2026-11-30\.jsonl/);
});

test('reordered files (two rotated files swapped by renaming) are named at the first one out of place', () => {
  const dir = copy();
  renameSync(join(dir, rotated('2026-11-30')), join(dir, 'tmp'));
  renameSync(join(dir, rotated('2026-12-01')), join(dir, rotated('2026-11-30')));
  renameSync(join(dir, 'tmp'), join(dir, rotated('2026-12-01')));
  assertBroken(verify(dir), `${join(dir, rotated('2026-11-30'))}:1`, /the start record names this file "audit-2026-12-01\.jsonl": the file was renamed/);
});

test('the last line of a rotated file edited is named through the next file\'s start record', () => {
  const dir = copy();
  const file = join(dir, rotated('2026-11-29'));
  const lines = fileLines(file);
  lines[5] = lines[5].replace('"rows":5', '"rows":6');
  writeLines(file, lines);
  assertBroken(verify(dir), `${join(dir, rotated('2026-11-30'))}:1`,
    /the start record does not match the last line of audit-2026-11-29\.jsonl \(line 6\): that line was edited/);
});

test('lines cut from the end of a rotated file are named as removed from its end', () => {
  const dir = copy();
  const file = join(dir, rotated('2026-11-29'));
  writeLines(file, fileLines(file).slice(0, 4));
  assertBroken(verify(dir), `${join(dir, rotated('2026-11-30'))}:1`, /records were removed from the end of audit-2026-11-29\.jsonl: seq 5 to 6 are missing after its line 4/);
});

test('a removed start record is named at line 1', () => {
  const dir = copy();
  const file = join(dir, rotated('2026-12-01'));
  writeLines(file, fileLines(file).slice(1));
  assertBroken(verify(dir), `${file}:1`, /line 1 is a "statement" record, not the audit_file_start record every file begins with: the start of the file was removed \(seq 13 is missing\)/);
});

test('files deleted by retention at the start are expected: exit 0 with a note; so is one middle file checked alone', () => {
  const dir = copy();
  unlinkSync(join(dir, rotated('2026-11-29')));
  const r = verify(dir);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, 'chain intact: 3 files');
  assert.match(r.out, 'note: the chain starts at audit-2026-11-30.jsonl, after audit-2026-11-29.jsonl, which is not here');
  const one = verify(join(fixture, rotated('2026-12-01')));
  assert.is(one.code, 0, one.out);
  assert.match(one.out, 'chain intact: 1 file');
  assert.match(one.out, '5 records');
});

test('files named one by one are checked in their chain order', () => {
  const r = verify(join(fixture, 'audit.jsonl'), join(fixture, rotated('2026-12-01')));
  assert.is(r.code, 0, r.out);
  assert.match(r.out, 'chain intact: 2 files');
  const gap = verify(join(fixture, 'audit.jsonl'), join(fixture, rotated('2026-11-30')));
  assertBroken(gap, `${join(fixture, 'audit.jsonl')}:1`, /a whole file is missing between audit-2026-11-30\.jsonl and audit\.jsonl: audit-2026-12-01\.jsonl/);
});

test('a torn line the writer recorded at restart verifies, with a note naming it', async () => {
  const dir = copy();
  appendFileSync(join(dir, 'audit.jsonl'), '{"ts":"2026-12-02T09:00:01.000Z","seq":25,"ev');
  const log = await AuditLog.open({ file: join(dir, 'audit.jsonl'), retentionDays: 3650, statements: 'fingerprint', onFailure: 'block', syncMs: 100 }, {
    logger: silentLogger, now: () => new Date('2026-12-02T10:00:00Z'),
  });
  log.record({ event: 'disconnect', session: 's1', reason: 'client', statements: 3, durationMs: 10 });
  await log.close();
  const r = verify(dir);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, '21 records');
  assert.match(r.out, 'note: audit.jsonl:7: a line cut short by a crash (45 bytes), kept and recorded by line 8');
});

test('usage errors and unreadable paths exit 2', () => {
  for (const args of [[], [join(tmpdir(), 'pgveil-no-such-audit-dir')], [mkdtempSync(join(tmpdir(), 'pgveil-empty-'))], [fixture, fixture]]) {
    const r = verify(...args);
    if (args.length === 1 && args[0].includes('pgveil-empty-')) made.push(args[0]);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.out}${r.err}`);
    assert.ok(r.err.length > 0);
  }
  const bare = spawnSync(process.execPath, [bin, 'audit'], { cwd: root, encoding: 'utf8' });
  assert.is(bare.status, 2);
  assert.match(bare.stderr, 'missing subcommand');
});

test.run();
